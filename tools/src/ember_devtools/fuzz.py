"""A seeded mutation fuzzer over every format Ember reads back from a disk, a bundle or a server.

Each target builds valid inputs once (real models compiled by the real plugins, a real tar, real
manifests), then forges inputs from them with :mod:`ember.testing.forge`, every checksum
recomputed (and the signature, for the targets where the forger holds the key), and runs each
through the reader. An outcome is one of:

- ``accepted``: the reader returned a valid object, which was then used (a model run on inputs);
- ``refused``: an Ember error (``ember.errors.EmberError``), as the contract says;
- ``escaped``: any other exception, a bug; the input is saved in the corpus directory;
- ``wrong``: with a signing key, a forged entry was accepted (it must never be);
- ``slow``: one input took more than ``SLOW_SECONDS`` (a hang, short of being killed).

``python -m ember_devtools.fuzz --count 100000`` runs every target in worker processes (a crash,
SIGSEGV or SIGABRT, kills only the worker: it is counted and its input saved) and prints the
counts. ``tests/test_fuzz.py`` runs a bounded number of inputs per target in ``make test`` and
replays the corpus (``tests/fuzz_corpus``) of inputs that once broke a parser.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ember.plugin import EmberError
from ember.testing.fuzz_targets import KEY, Target, targets

__all__ = ["KEY", "OUTCOMES", "Counts", "Target", "fuzz", "main", "run_one", "save", "targets"]

SLOW_SECONDS = 5.0
OUTCOMES = ("accepted", "refused", "escaped", "wrong", "slow", "crashed")


@dataclass
class Counts:
    by_target: dict[str, collections.Counter[str]] = field(default_factory=dict)

    def add(self, target: str, outcome: str, amount: int = 1) -> None:
        self.by_target.setdefault(target, collections.Counter())[outcome] += amount

    def total(self, outcome: str) -> int:
        return sum(counter[outcome] for counter in self.by_target.values())

    def report(self) -> str:
        lines = [f"{'target':<18}" + "".join(f"{o:>10}" for o in ("inputs", *OUTCOMES))]
        for name, counter in sorted(self.by_target.items()):
            lines.append(f"{name:<18}{sum(counter.values()):>10}"
                         + "".join(f"{counter[o]:>10}" for o in OUTCOMES))
        lines.append(f"{'all':<18}{sum(self.total(o) for o in OUTCOMES):>10}"
                     + "".join(f"{self.total(o):>10}" for o in OUTCOMES))
        return "\n".join(lines)


def run_one(target: Target, data: bytes, corpus: Path | None) -> str:
    """One input through one target; the outcome (an escaped input is saved in ``corpus``)."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome = target.check(data)
    except EmberError:
        outcome = "refused"
    except Exception as exc:  # the contract is broken: keep the input
        outcome = "escaped"
        if corpus is not None:
            save(corpus, target.name, data, f"{type(exc).__name__}: {exc}")
    if time.perf_counter() - start > SLOW_SECONDS:
        if corpus is not None:
            save(corpus, target.name, data, "slow")
        return "slow"
    return outcome


def save(corpus: Path, target: str, data: bytes, why: str) -> Path:
    from ember.plugin import hexdigest

    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hexdigest(data)[:16]}.bin"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(why[:500] + "\n")
    return path


def fuzz(targets: list[Target], count: int, seed: int, corpus: Path | None = None,
         counts: Counts | None = None, on_input: Callable[[str, bytes], None] | None = None
         ) -> Counts:
    """``count`` forged inputs per target, seeded."""
    counts = counts or Counts()
    for target in targets:
        rng = random.Random(f"{seed}:{target.name}")
        for _ in range(count):
            data = target.forge(rng)
            if on_input is not None:
                on_input(target.name, data)
            counts.add(target.name, run_one(target, data, corpus))
    return counts


# -- the long run ----------------------------------------------------------------------------------


def _worker(args: argparse.Namespace) -> int:
    """One chunk of inputs for one target, in this process; counts to stdout as JSON."""
    work = Path(args.work)
    current = work / "current.bin"
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        chosen = [t for t in targets(Path(scratch), redis_url=args.redis)
                  if t.name == args.target]

        def remember(_name: str, data: bytes) -> None:
            current.write_bytes(data)

        counts = fuzz(chosen, args.count, args.seed, Path(args.corpus), on_input=remember)
    print(json.dumps(dict(counts.by_target.get(args.target, {}))))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="inputs in all")
    parser.add_argument("--chunk", type=int, default=2000, help="inputs per worker process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", default="fuzz-findings")
    parser.add_argument("--redis", default=None, help="a redis:// URL for the manifest target")
    parser.add_argument("--target", default=None)
    parser.add_argument("--work", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    names = [args.target] if args.target else [
        "template-payload", "cpu-payload", "container", "signed-entry", "kernel-entry",
        "bundle", "manifest", "store-json"]
    per_target = max(args.count // len(names), 1)
    counts = Counts()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            done, chunk_seed = 0, 0
            while done < per_target:
                size = min(args.chunk, per_target - done)
                command = [sys.executable, "-m", "ember_devtools.fuzz", "--worker",
                           "--target", name, "--count", str(size),
                           "--seed", f"{args.seed}{chunk_seed:06d}", "--corpus", args.corpus,
                           "--work", work] + (["--redis", args.redis] if args.redis else [])
                result = subprocess.run(command, capture_output=True, text=True, check=False)
                if result.returncode == 0:
                    for outcome, amount in json.loads(result.stdout.splitlines()[-1]).items():
                        counts.add(name, outcome, amount)
                else:  # a crash: the worker died on its current input
                    counts.add(name, "crashed")
                    with contextlib.suppress(OSError):
                        save(Path(args.corpus), name, (Path(work) / "current.bin").read_bytes(),
                             f"worker exited {result.returncode}: {result.stderr[-300:]}")
                done += size
                chunk_seed += 1
            print(f"{name}: done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(counts.report())
    bad = sum(counts.total(o) for o in ("escaped", "wrong", "slow", "crashed"))
    print(f"{bad or 'zero'} escapes, wrong outputs, hangs and crashes "
          f"in {sum(counts.total(o) for o in OUTCOMES)} forged inputs; seed {args.seed}; "
          f"{time.monotonic() - started:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    raise SystemExit(main())
