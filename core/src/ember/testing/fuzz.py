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

``python -m ember.testing.fuzz --count 100000`` runs every target in worker processes (a crash,
SIGSEGV or SIGABRT, kills only the worker: it is counted and its input saved) and prints the
counts. ``tests/test_fuzz.py`` runs a bounded number of inputs per target in ``make test`` and
replays the corpus (``tests/fuzz_corpus``) of inputs that once broke a parser.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import EmberError
from ember.testing import forge

SLOW_SECONDS = 5.0
KEY = "fuzz-signing-key"
OUTCOMES = ("accepted", "refused", "escaped", "wrong", "slow", "crashed")


@dataclass
class Target:
    """One format: ``forge(rng)`` makes an input, ``check(data)`` reads it; the check raises an
    EmberError to refuse, returns "accepted" or "wrong"."""

    name: str
    forge: Callable[[random.Random], bytes]
    check: Callable[[bytes], str]


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
    from ember import checksum

    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{checksum.hexdigest(data)[:16]}.bin"
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


# -- the targets ---------------------------------------------------------------------------------


class Fixtures:
    """Valid inputs made once per process: compiled models, entries, a tar, a manifest."""

    def __init__(self, work: Path) -> None:
        import ember
        from ember.signing import Signer
        from ember.testing.models import cnn, mlp

        self.work = work
        self.core = ember.Core()
        self.signer = Signer(KEY)
        self.other_signer = Signer("not-" + KEY)
        self.models: dict[str, bytes] = {}
        self.blobs: dict[str, bytes] = {}
        self.compiled: dict[str, Any] = {}
        for device in ("TEMPLATE", "CPU"):
            for name, proto in (("mlp", mlp(features=8, hidden=8, classes=3)),
                                ("cnn", cnn(channels=2, size=6, classes=3))):
                compiled = self.core.compile_model(proto.SerializeToString(), device)
                self.blobs[f"{device}/{name}"] = compiled.export_model()
                self.compiled[f"{device}/{name}"] = compiled
        self.cache_dir = work / "cache"
        self.entry_key, self.entry = self._cache_entry(signed=True)

    def _cache_entry(self, *, signed: bool) -> tuple[str, bytes]:
        """A signed TEMPLATE cache entry, as compile_model writes it."""
        from ember.testing.models import mlp

        path = self.work / "model.onnx"
        path.write_bytes(mlp(features=8, hidden=8, classes=3).SerializeToString())
        config = {"CACHE_DIR": str(self.cache_dir)}
        if signed:
            config["CACHE_SIGNING_KEY"] = KEY
        for _ in range(2):
            self.core.compile_model(path, "TEMPLATE", config)
        (entry,) = (self.cache_dir / "blobs").glob("*.blob")
        return entry.stem, entry.read_bytes()


def _inputs_for(compiled: Any) -> list[np.ndarray] | None:
    arrays = []
    for port in compiled.inputs:
        if not port.is_static or math.prod(port.shape) > 1 << 16:
            return None
        arrays.append(np.ones(port.shape, port.dtype))
    return arrays


def _use(compiled: Any) -> str:
    inputs = _inputs_for(compiled)
    if inputs is not None:
        compiled(inputs)
    return "accepted"


def _forge_blob(rng: random.Random, data: bytes, *, payload_json: bool) -> bytes:
    """A forged blob: its header, its payload's JSON or its bytes changed, checksums redone."""
    fields, payload = forge.split(data)
    choice = rng.random()
    if choice < 0.3:
        return forge.reframe(forge.mutate_json(rng, fields), payload)
    if choice < 0.6 and payload_json:
        return forge.reframe(fields, _mutate_payload_json(rng, payload))
    if choice < 0.9:
        return forge.reframe(fields, forge.mutate_bytes(rng, payload))
    return forge.mutate_bytes(rng, data)  # raw damage, checksums not redone


def _mutate_payload_json(rng: random.Random, payload: bytes) -> bytes:
    """Change the JSON inside a TEMPLATE plan or a CPU payload, keeping its framing valid."""
    import struct

    if payload.startswith(b"EMTPLAN\0"):
        _magic, version, flags, size = struct.unpack_from("<8sIII", payload)
        document = json.loads(payload[20:20 + size])
        text = forge.mutate_json(rng, document)
        data_start = 20 + size + (-(20 + size) % 64)
        padding = b"\0" * (-(20 + len(text)) % 64)
        return (struct.pack("<8sIII", b"EMTPLAN\0", version, flags, len(text)) + text
                + padding + payload[data_start:])
    _magic, version, flags = struct.unpack_from("<8sII", payload)
    (size,) = struct.unpack_from("<I", payload, 16)
    document = json.loads(payload[20:20 + size])
    text = forge.mutate_json(rng, document)
    return payload[:16] + struct.pack("<I", len(text)) + text + payload[20 + size:]


def targets(work: Path, *, redis_url: str | None = None) -> list[Target]:
    """Every fuzz target, built in ``work``."""
    fx = Fixtures(work)
    found = []
    for device in ("TEMPLATE", "CPU"):
        seeds = [fx.blobs[f"{device}/{name}"] for name in ("mlp", "cnn")]

        def forge_payload(rng: random.Random, seeds: list[bytes] = seeds) -> bytes:
            return _forge_blob(rng, rng.choice(seeds), payload_json=True)

        def check_payload(data: bytes, device: str = device) -> str:
            return _use(fx.core.import_model(data, device))

        found.append(Target(f"{device.lower()}-payload", forge_payload, check_payload))
    found.append(_container_target(fx))
    found.append(_signed_entry_target(fx))
    found.append(_kernel_entry_target(fx))
    found.append(_bundle_target(fx))
    found.append(_manifest_target(fx, redis_url))
    found.append(_store_json_target(fx))
    return found


def _container_target(fx: Fixtures) -> Target:
    from ember import blob
    from ember.cache import ModelCache

    seeds = [*fx.blobs.values(), fx.entry]
    listing = fx.work / "listing"
    (listing / "blobs").mkdir(parents=True)

    def check(data: bytes) -> str:
        header, _payload = blob.unpack(data)
        # what the listings and a miss's explanation do with a header
        entry = listing / "blobs" / (("0" * 64) + ".blob")
        entry.write_bytes(data)
        ModelCache(listing).entries()
        from ember.cache.key import explain_difference

        explain_difference({"model": "m", "properties": {}}, header.key_parts)
        return "accepted"

    return Target("container", lambda rng: _forge_blob(rng, rng.choice(seeds),
                                                       payload_json=False), check)


def _signed_entry_target(fx: Fixtures) -> Target:
    """A signed cache: forged entries (another model's payload under this key, changed fields,
    signed with another key or not at all) must never be read as a hit."""
    from ember.cache import ModelCache
    from ember.cache.key import CacheKey

    cache = ModelCache(fx.cache_dir)
    key = CacheKey({}, fx.entry_key)
    others = [d for name, d in fx.blobs.items() if name.startswith("TEMPLATE")]

    def forge_entry(rng: random.Random) -> bytes:
        fields, payload = forge.split(fx.entry)
        choice = rng.random()
        if choice < 0.3:  # another model's payload, under this model's key
            payload = forge.split(rng.choice(others))[1]
        elif choice < 0.6:
            return forge.reframe(forge.mutate_json(rng, fields), payload,
                                 signer=rng.choice((None, fx.other_signer)), key=fx.entry_key)
        else:
            payload = forge.mutate_bytes(rng, payload)
        return forge.reframe(fields, payload, signer=rng.choice((None, fx.other_signer)),
                             key=fx.entry_key)

    def check(data: bytes) -> str:
        path = cache.blob_path(fx.entry_key)
        path.write_bytes(data)
        try:
            header, _payload = cache.read(key, signer=fx.signer)
        finally:
            path.write_bytes(fx.entry)
        if header is None:
            raise EmberError("refused")
        return "accepted" if data == fx.entry else "wrong"

    return Target("signed-entry", forge_entry, check)


def _kernel_entry_target(fx: Fixtures) -> Target:
    """GPU kernel entries (``.cl_cache``): with a key, a forged one never reaches the plugin."""
    from ember.cache import KernelCache, ModelCache

    cache = ModelCache(fx.work / "kernels")
    kernels = KernelCache(cache, plugin="ember-gpu", plugin_version="0", device="GPU.0",
                          signer=fx.signer)
    key = kernels.key({"source": "kernel"})
    binary = b"EMBERCL\x01" + bytes(range(256)) * 8
    kernels.put(key, binary, name="k")
    entry = cache.blob_path(key.digest, ".cl_cache").read_bytes()

    def forge_entry(rng: random.Random) -> bytes:
        fields, payload = forge.split(entry)
        header: dict[str, Any] | bytes = fields
        if rng.random() < 0.5:
            payload = payload[:rng.randrange(len(payload))]  # a truncated binary
        else:
            header = forge.mutate_json(rng, fields) if rng.random() < 0.5 else fields
            payload = forge.mutate_bytes(rng, payload)
        return forge.reframe(header, payload, signer=rng.choice((None, fx.other_signer)),
                             key=key.digest)

    def check(data: bytes) -> str:
        path = cache.blob_path(key.digest, ".cl_cache")
        path.write_bytes(data)
        try:
            payload = kernels.get(key)
        finally:
            path.write_bytes(entry)
            kernels.problems.clear()
        if payload is None:
            raise EmberError("refused")
        return "accepted" if bytes(payload) == binary else "wrong"

    return Target("kernel-entry", forge_entry, check)


def _bundle_target(fx: Fixtures) -> Target:
    from ember.cli.bundle import import_bundle

    members = [(f"{fx.entry_key}.blob", fx.entry)]
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    seed = plain.getvalue()
    bundle = fx.work / "bundle.tar"
    counter = iter(range(1 << 62))

    def forge_bundle(rng: random.Random) -> bytes:
        choice = rng.random()
        if choice < 0.4:  # a forged member inside a well-formed tar
            fields, payload = forge.split(fx.entry)
            if rng.random() < 0.5:
                payload = forge.mutate_bytes(rng, payload)
            else:
                fields = {**fields, "model_name": "forged"}
            member = forge.reframe(fields, payload, signer=rng.choice((None, fx.other_signer)),
                                   key=fx.entry_key)
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode="w") as tar:
                info = tarfile.TarInfo(f"{fx.entry_key}.blob")
                info.size = len(member)
                tar.addfile(info, io.BytesIO(member))
            return out.getvalue()
        return forge.mutate_bytes(rng, seed)  # the tar's own headers (sizes, types, names)

    def check(data: bytes) -> str:
        bundle.write_bytes(data)
        target = fx.work / f"imported-{next(counter) % 4}"
        shutil.rmtree(target, ignore_errors=True)
        report = import_bundle(target, bundle, signer=fx.signer, max_size=64 << 20)
        placed = [p.read_bytes() for p in (target / "blobs").glob("*.blob")]
        if report.added and any(p != fx.entry for p in placed):
            return "wrong"
        return "accepted"

    return Target("bundle", forge_bundle, check)


def _manifest_target(fx: Fixtures, redis_url: str | None) -> Target:
    """Redis manifests: parsed directly, and through a real server when ``redis_url`` is given
    (then a start must never fail: the tier answers with a problem, never an exception)."""
    from ember.cache.remote import RemoteSettings, RemoteTier, _manifest_fields

    manifest = {"v": 2, "upload": "0" * 32, "chunks": 1, "size": len(fx.entry),
                "chunk_size": 4 << 20, "created": 1.0, "signature": fx.entry[-32:].hex()}
    tier = (RemoteTier(RemoteSettings.parse(f"{redis_url}?prefix=fuzz&timeout=5", KEY))
            if redis_url else None)
    if tier is not None:
        tier.client.set(f"fuzz:chunk:{fx.entry_key}:{'0' * 32}:0", fx.entry)

    def forge_manifest(rng: random.Random) -> bytes:
        if rng.random() < 0.8:
            return forge.mutate_json(rng, manifest)
        return forge.mutate_bytes(rng, json.dumps(manifest).encode())

    def check(data: bytes) -> str:
        _manifest_fields(data, signed=False)
        fields = _manifest_fields(data, signed=True)
        if tier is not None:
            tier.client.set(f"fuzz:manifest:{fx.entry_key}", data)
            entry, problem = tier.get(fx.entry_key)
            if entry is None:
                raise EmberError(problem or "absent")
            return "accepted" if bytes(entry) == fx.entry else "wrong"
        return "accepted" if fields else "refused"

    return Target("manifest", forge_manifest, check)


def _store_json_target(fx: Fixtures) -> Target:
    """The store's .locations.json, remembered file digests and events.log lines."""
    from ember.cache import ModelCache
    from ember.cache.file_digest import _read_memo
    from ember.store import LOCATIONS_FILE, _read_locations

    store = fx.work / "store"
    store.mkdir()
    events_cache = ModelCache(fx.work / "events")
    events_cache.root.mkdir()
    seeds = [
        json.dumps({"version": 1, "locations": {"ppocr": "/models/ppocr.onnx"}}).encode(),
        json.dumps({"path": "/m.onnx", "identity": [1, 2, 3, 4, 5], "external": [],
                    "digest": "0" * 64}).encode(),
        json.dumps({"event": "hit", "key": "0" * 64, "time": 1.0, "bytes": 10,
                    "saved": 0.5}).encode(),
        json.dumps({"event": "summary", "hits": 3, "bytes_read": 30}).encode(),
    ]

    def forge_json(rng: random.Random) -> bytes:
        seed = rng.choice(seeds)
        if rng.random() < 0.7:
            return forge.mutate_json(rng, json.loads(seed))
        return forge.mutate_bytes(rng, seed)

    def check(data: bytes) -> str:
        (store / LOCATIONS_FILE).write_bytes(data)
        memo = fx.work / "memo.json"
        memo.write_bytes(data)
        _read_memo(memo)
        events_cache._events.write_bytes(data + b"\n" + data)
        events_cache.stats()
        _read_locations(store)
        return "accepted"

    return Target("store-json", forge_json, check)


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
                command = [sys.executable, "-m", "ember.testing.fuzz", "--worker",
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
