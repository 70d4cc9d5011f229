"""A fixed sample of plausible one-line bugs in the code that decides whether a cached model is the
right one, each of which a test must catch: ``python -m ember_devtools.planted_bugs [NAME...]``.

Each bug is planted in the working tree, the test files named for it are run (the first failure
stops them), and the file is restored, whatever happens. A bug the tests let through is a
*survivor*: the run lists it and exits with status 1. These are the mutants a review once found
surviving; ``make mutation`` (docs/testing.md) is the tool-driven, exhaustive counterpart.

Run it from the repository's root, in a tree with no uncommitted change to the files it plants
bugs in.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple


class Bug(NamedTuple):
    name: str
    path: str
    correct: str
    planted: str
    tests: tuple[str, ...]


CORE = "core/src/ember/"
KEY_TESTS = ("core/tests/test_cache_key.py",)
INTEGRITY = ("core/tests/test_cache_integrity.py",)
BOUNDS = ("core/tests/test_bounds.py",)

BUGS = [
    Bug("key without plugin_version", CORE + "cache/key.py",
        '        "plugin_version": plugin_version,\n', "", KEY_TESTS),
    Bug("key without architecture", CORE + "cache/key.py",
        '        "architecture": architecture,\n', "", KEY_TESTS),
    Bug("entry key without ember_version", CORE + "cache/key.py",
        '"schema": KEY_SCHEMA, "ember_version": __version__,', '"schema": KEY_SCHEMA,',
        KEY_TESTS),
    Bug("key flags without encrypted", CORE + "runtime/core.py",
        'flags = ("encrypted",) * encrypted + ("weightless",)', 'flags = ("weightless",)',
        ("tests/test_encryption.py",)),
    Bug("key flags without weightless", CORE + "runtime/core.py",
        '("encrypted",) * encrypted + ("weightless",) * (weights_path is not None)',
        '("encrypted",) * encrypted', ("tests/test_weightless.py",)),
    Bug("a verified path is never checked again", CORE + "cache/local.py",
        "if self._verified.get(path) != identity(stat):", "if path not in self._verified:",
        INTEGRITY),
    Bug("read_file ignores the trailer's length", CORE + "store/blob.py",
        "or len(trailer) != (TAG_SIZE if is_signed(prefix) else 0)", "or False", BOUNDS),
    Bug("open_blob ignores the header's key", CORE + "store/signing.py",
        "    if header.key != key:\n        raise BlobFormatError(f\"entry holds key",
        "    if False:\n        raise BlobFormatError(f\"entry holds key", BOUNDS + INTEGRITY),
    Bug("import_model ignores plugin_version", CORE + "runtime/core.py",
        'for field in ("plugin", "plugin_version", "device_architecture"):',
        'for field in ("plugin", "device_architecture"):', INTEGRITY),
    Bug("a hit does not refresh last use", CORE + "cache/local.py",
        "                        os.utime(fd)  # last use",
        "                        pass  # last use",
        ("core/tests/test_cache.py::test_least_recently_used_entries_are_evicted",)),
    Bug("size bound off by one", CORE + "cache/local.py",
        "if total <= max_size:", "if total < max_size:", INTEGRITY),
    Bug("only BlobFormatError from an import is recovered", CORE + "cache/cached_compile.py",
        "except Exception as exc:  # a plugin that cannot read its payload",
        "except BlobFormatError as exc:  # a plugin that cannot read its payload", INTEGRITY),
    Bug("safe_json without the integer lower bound", CORE + "common/safe_json.py",
        "    if not -MAX_INT <= value <= MAX_INT:\n        raise ValueError",
        "    if not value <= MAX_INT:\n        raise ValueError", BOUNDS),
    Bug("safe_json depth bound off by one", CORE + "common/safe_json.py",
        "if depth >= max_depth:", "if depth > max_depth:", BOUNDS),
    Bug("parse_size refuses 2GiB", CORE + "common/sizes.py",
        '.upper().removesuffix("IB").removesuffix("B")', '.upper().removesuffix("B")', BOUNDS),
    Bug("parse_size refuses 500MB", CORE + "common/sizes.py",
        '.upper().removesuffix("IB").removesuffix("B")', '.upper().removesuffix("IB")', BOUNDS),
    Bug("plugin index trusts another Ember's index", CORE + "contract/plugin_index.py",
        'or document.get("ember") != __version__ ', "",
        ("core/tests/test_plugin_loading.py::test_a_forged_or_foreign_index_is_ignored",)),
    Bug("CPU check_ports ignores shapes", "plugins/cpu/src/ember_cpu/compiler.py",
        "if not _same_shape(port.shape, shapes[port.name]):", "if False:",
        ("plugins/cpu/tests/test_cpu_payload.py",)),
    Bug("CPU payload accepts duplicate port names", "plugins/cpu/src/ember_cpu/payload.py",
        "if len({port.name for port in ports}) != len(ports):", "if False:",
        ("plugins/cpu/tests/test_cpu_payload.py",)),
    Bug("the damaged-entry warning repeats its problem", CORE + "cache/cached_compile.py",
        "del self.problems[seen:]", "pass", INTEGRITY),
]


def plant(bug: Bug, root: Path) -> bool:
    """Plant ``bug``, run its tests, restore the file; True when a test caught it."""
    path = root / bug.path
    original = path.read_text()
    if original.count(bug.correct) != 1:
        raise SystemExit(f"{bug.name}: the code to change is not in {bug.path} exactly once "
                         "(the code moved: update ember_devtools.planted_bugs)")
    try:
        path.write_text(original.replace(bug.correct, bug.planted))
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             "-p", "no:randomly", *bug.tests], cwd=root, capture_output=True, text=True,
            check=False)
    finally:
        path.write_text(original)
    return result.returncode == 1  # tests failed (2+ would be an error running them)


def main(argv: list[str]) -> int:
    root = Path.cwd()
    chosen = [b for b in BUGS if not argv or b.name in argv]
    survivors = []
    for bug in chosen:
        start = time.monotonic()
        caught = plant(bug, root)
        print(f"{'caught  ' if caught else 'SURVIVED'} {bug.name} "
              f"({time.monotonic() - start:.1f} s)", flush=True)
        if not caught:
            survivors.append(bug.name)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} planted bugs caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
