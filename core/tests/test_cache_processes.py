"""The model cache under real concurrency and real failures: real processes, nothing mocked.

Children are ``sys.executable -c CODE ARGS_JSON``; CODE starts with :data:`CHILD_PRELUDE` (the
helpers below, shared with the parent) and each child prints one ``RESULT`` JSON line. The
failures are real ones: SIGKILL at points of a compile, a lock whose holder died, a read-only
mount, a file size limit, a full tmpfs, a parent directory that is a file, a model file edited
behind the cache's back. Root ignores file permissions, so as root the read-only and full
directories are mounts in a private mount namespace (``unshare --mount``); otherwise chmod and a
user namespace.

Whatever fails, a compile must give one CacheWarning, outputs equal (bit for bit) to an uncached
compile, no exception, and never a blob that is not whole and verified.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import filelock
import numpy as np
import onnx
import pytest

import ember
import ember.cache
from ember.errors import CacheWarning
from ember.store import blob
from ember.store.atomic import background
from ember.testing.models import dense_stack

TEMPLATE = "TEMPLATE"
TEMP_PREFIX = ".tmp-"  # what a blob is written as before its rename
LOCK_TIMEOUT_ENV = "EMBER_CACHE_LOCK_TIMEOUT"
#: About 38 MB of float32 weights: TEMPLATE compiles it in ~0.3 s, long enough for real races.
BIG = {"layers": 4, "dim": 1536}
#: About 0.5 MB of weights: quick, and still well above the size limits used below.
MEDIUM = {"layers": 2, "dim": 256}
PROCESSES = 8
THREADS = 8
FSIZE_LIMIT = 128 * 1024
TINY_TMPFS = "64k"
RESULT = "RESULT "


# -- helpers shared with the children (their source is copied into CHILD_PRELUDE) --------------


def checksum(compiled: ember.CompiledModel, x: np.ndarray) -> str:
    """SHA-256 over every output of one inference: equal checksums mean bit-identical outputs."""
    outputs = compiled({"x": x}).to_tuple()
    return hashlib.sha256(b"".join(np.ascontiguousarray(o).tobytes() for o in outputs)).hexdigest()


def compile_and_report(core: ember.Core, model: str, cache_dir: str, x: np.ndarray) -> dict:
    """Compile with CACHE_DIR; say whether it was a hit, what it computes, and what it warned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = core.compile_model(str(model), TEMPLATE, {"CACHE_DIR": str(cache_dir)})
    return {
        "loaded_from_cache": compiled.get_property("LOADED_FROM_CACHE"),
        "checksum": checksum(compiled, x),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, CacheWarning)],
    }


def listing(directory: str) -> list[str]:
    """Every file under ``directory`` as a relative path ([] when it does not exist)."""
    root = Path(directory)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


CHILD_PRELUDE = "\n".join([
    "import hashlib, json, os, sys, time, warnings",
    "from pathlib import Path",
    "import numpy as np",
    "import ember",
    "from ember.errors import CacheWarning",
    f"TEMPLATE = {TEMPLATE!r}",
    f"RESULT = {RESULT!r}",
    "ARGS = json.loads(sys.argv[1])",
    "def report(result):",
    "    print(RESULT + json.dumps(result), flush=True)",
    *(inspect.getsource(f) for f in (checksum, compile_and_report, listing)),
    "",
])

# Compiles each [model, input, cache_dir] of ARGS["compiles"], optionally under a file size limit.
COMPILE_CHILD = """
core = ember.Core()
compiles = [(model, np.load(inputs), cache) for model, inputs, cache in ARGS["compiles"]]
if ARGS.get("fsize_limit"):  # after the imports: a .pyc written now must not hit the limit
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (ARGS["fsize_limit"], ARGS["fsize_limit"]))
results = [compile_and_report(core, model, cache, x) for model, x, cache in compiles]
from ember.store.atomic import background
background.wait()  # what the background worker writes (file digests' memos) is done
report({"compiles": results, "files": listing(ARGS["list"])})
"""

# Waits for ARGS["go"] like a runner at the line, then compiles; says whether it saw a blob first.
RACE_CHILD = """
core = ember.Core()
x = np.load(ARGS["input"])
Path(ARGS["ready"]).touch()
while not os.path.exists(ARGS["go"]):
    time.sleep(0.002)
result = {"blob_existed_at_start": any(Path(ARGS["cache"]).glob("blobs/*.blob"))}
result.update(compile_and_report(core, ARGS["model"], ARGS["cache"], x))
report(result)
"""

# Compiles once; the parent kills it somewhere on the way.
VICTIM_CHILD = """
core = ember.Core()
Path(ARGS["ready"]).touch()
compiled = core.compile_model(ARGS["model"], TEMPLATE, {"CACHE_DIR": ARGS["cache"]})
report({"loaded_from_cache": compiled.get_property("LOADED_FROM_CACHE")})
"""

# Takes a key's lock with the cache's own API and keeps it until killed.
LOCK_HOLDER_CHILD = """
from ember.cache import ModelCache
with ModelCache(ARGS["cache"]).lock(ARGS["key"], 30) as locked:
    ready = Path(ARGS["ready"] + ".tmp")  # renamed into place: never seen half written
    ready.write_text(json.dumps(locked))
    ready.replace(ARGS["ready"])
    time.sleep(600)
"""

# A warm compile of a path with every way of parsing ONNX replaced by an error.
NO_PARSE_CHILD = """
import onnx
import ember.runtime.core, ember.model.model
core = ember.Core()
x = np.load(ARGS["input"])

class Parsed(Exception):
    pass

def refuse(*args, **kwargs):
    raise Parsed("the ONNX file was parsed")

for module, name in [(onnx, "load"), (onnx, "load_model"), (onnx, "load_from_string"),
                     (onnx, "load_model_from_string"), (ember.model.model, "read_model"),
                     (ember.runtime.core, "read_model")]:
    setattr(module, name, refuse)
warm = compile_and_report(core, ARGS["model"], ARGS["cache"], x)
try:  # the control: a compile that has to read the model does trip the trap
    core.compile_model(ARGS["model"], TEMPLATE, {"CACHE_DIR": ""})
    control = "compiled without parsing?"
except Parsed:
    control = "refused"
report({"warm": warm, "control": control})
"""


# -- running children ------------------------------------------------------------------------


def start_child(code: str, args: dict, *, env: dict[str, str] | None = None,
                wrapper: Sequence[str] = ()) -> subprocess.Popen[str]:
    """Start ``python -c CHILD_PRELUDE+code ARGS_JSON``, with the EMBER_CACHE_* variables of
    this environment removed (plus ``env``), optionally under a ``wrapper`` command."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_CACHE")}
    child_env.update(env or {})
    command = [*wrapper, sys.executable, "-c", CHILD_PRELUDE + code, json.dumps(args)]
    return subprocess.Popen(command, env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_child(proc: subprocess.Popen[str], timeout: float = 120) -> dict:
    """Wait for a child; it must exit 0 and have reported exactly one result."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"child exited with {proc.returncode}:\n{err}"
    results = [line[len(RESULT):] for line in out.splitlines() if line.startswith(RESULT)]
    assert len(results) == 1, f"child printed {out!r}\n{err}"
    return json.loads(results[0])


def run_child(code: str, args: dict, *, wrapper: Sequence[str] = ()) -> dict:
    return finish_child(start_child(code, args, wrapper=wrapper))


def in_mount_namespace(directory: Path, mount: str) -> list[str]:
    """A wrapper running a command where ``{mount} DIRECTORY`` has been done, in a private mount
    namespace: the mount is real for the child and gone when it exits."""
    unshare = ["unshare", "--mount"]
    if os.geteuid() != 0:
        unshare.insert(1, "--map-root-user")  # a user namespace, where we may mount
    return [*unshare, "sh", "-c", f'{mount} "$0" && exec "$@"', str(directory)]


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[list[str]]:
    """Make ``directory`` unwritable for a child, root included; yields the child's wrapper."""
    if os.geteuid() == 0:  # root writes through any mode bits: only a read-only mount stops it
        yield in_mount_namespace(directory, 'mount --bind "$0" "$0" && mount -o remount,bind,ro')
        return
    directories = [directory, *(p for p in directory.rglob("*") if p.is_dir())]
    modes = {p: p.stat().st_mode for p in directories}
    for path in directories:
        path.chmod(0o555)
    try:
        yield []
    finally:
        for path in directories:
            path.chmod(modes[path])


def wait_until(condition: Callable[[], object], proc: subprocess.Popen[str] | None = None,
               timeout: float = 60, interval: float = 0.001) -> None:
    """Poll ``condition``; fail if ``proc`` exits first or nothing happens for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"child exited with {proc.returncode} too early: "
                                 f"{proc.communicate()[1]}")
        assert time.monotonic() < deadline, "the child never got there (hung?)"
        time.sleep(interval)


# -- models and cache directories ------------------------------------------------------------


def gemm_stack(layers: int, dim: int, seed: int) -> onnx.ModelProto:
    return dense_stack(layers, dim, seed)


@dataclass(frozen=True)
class ModelFile:
    path: Path
    input_path: Path  # x, saved with np.save for the children
    x: np.ndarray
    expected: str  # checksum of an uncached compile's outputs


def uncached_checksum(model: str | bytes, x: np.ndarray) -> str:
    return checksum(ember.Core().compile_model(model, TEMPLATE, {"CACHE_DIR": ""}), x)


def write_model(directory: Path, name: str, proto: onnx.ModelProto) -> ModelFile:
    """Save a model (made a minute old, so the cache may remember its digest) and its input."""
    path = directory / f"{name}.onnx"
    onnx.save(proto, str(path))
    old = time.time() - 60
    os.utime(path, (old, old))
    dim = proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    x = np.random.default_rng(7).standard_normal((2, dim)).astype(np.float32)
    np.save(directory / f"{name}.npy", x)
    return ModelFile(path, directory / f"{name}.npy", x, uncached_checksum(str(path), x))


@pytest.fixture(autouse=True)
def no_cache_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's compiles see only the CACHE_DIR and lock timeout the tests give."""
    for name in [n for n in os.environ if n.startswith("EMBER_CACHE")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> ModelFile:
    return write_model(tmp_path_factory.mktemp("models"), "big", gemm_stack(**BIG, seed=0))


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> ModelFile:
    return write_model(tmp_path_factory.mktemp("models"), "medium", gemm_stack(**MEDIUM, seed=1))


@pytest.fixture(scope="module")
def medium2(tmp_path_factory: pytest.TempPathFactory) -> ModelFile:
    return write_model(tmp_path_factory.mktemp("models"), "medium2", gemm_stack(**MEDIUM, seed=2))


def blob_names(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "blobs").glob("*.blob"))


def blobs_dir_names(cache: Path) -> set[str]:
    """Every name in blobs/, blobs and temporary files alike."""
    try:
        return set(os.listdir(cache / "blobs"))
    except FileNotFoundError:
        return set()


def temp_files(cache: Path) -> set[str]:
    return {n for n in blobs_dir_names(cache) if n.startswith(TEMP_PREFIX)}


def lock_is_held(lock_path: Path) -> bool:
    """Whether some process holds this lock file now (probed without waiting)."""
    probe = filelock.FileLock(str(lock_path))
    try:
        probe.acquire(timeout=0)
    except filelock.Timeout:
        return True
    probe.release()
    return False


def assert_only_whole_entries(cache: Path) -> list[str]:
    """blobs/ holds verified blobs and at most temporary files, which are never entries."""
    names = blobs_dir_names(cache)
    blobs = sorted(n for n in names if n.endswith(".blob"))
    assert all(n.startswith(TEMP_PREFIX) for n in names if n not in blobs), names
    assert ember.cache.verify(cache) == []
    for name in blobs:
        header, _payload = blob.unpack((cache / "blobs" / name).read_bytes())
        assert f"{header.key}.blob" == name
    assert sorted(e.path.name for e in ember.cache.entries(cache)) == blobs
    assert ember.cache.stats(cache).entries == len(blobs)
    return blobs


# -- 1, 2: many compiles of one model at once --------------------------------------------------


def test_racing_processes_compile_once_and_all_import(tmp_path, big):
    cache = tmp_path / "cache"
    go = tmp_path / "go"
    procs = []
    for i in range(PROCESSES):
        args = {"model": str(big.path), "input": str(big.input_path), "cache": str(cache),
                "ready": str(tmp_path / f"ready-{i}"), "go": str(go)}
        procs.append(start_child(RACE_CHILD, args))
    for i, proc in enumerate(procs):
        wait_until((tmp_path / f"ready-{i}").exists, proc)
    go.touch()  # all are imported and waiting: the compiles start together
    results = [finish_child(proc) for proc in procs]

    # The race is real: every process started before any blob existed, so seven of them found
    # the key locked by the compiling one (or the entry missing) and waited.
    assert [r["blob_existed_at_start"] for r in results] == [False] * PROCESSES
    assert sum(not r["loaded_from_cache"] for r in results) == 1, results
    assert {r["checksum"] for r in results} == {big.expected}
    assert [r["warnings"] for r in results] == [[]] * PROCESSES
    assert len(assert_only_whole_entries(cache)) == 1
    assert temp_files(cache) == set()
    stats = ember.cache.stats(cache)
    assert (stats.writes, stats.misses, stats.hits) == (1, 1, PROCESSES - 1)


@pytest.mark.parametrize("cores", ["one shared Core", "a Core per thread"])
def test_racing_threads_compile_once(tmp_path, big, cores):
    cache = tmp_path / "cache"
    shared = ember.Core()
    thread_cores = [shared if cores == "one shared Core" else ember.Core() for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    results: list[tuple[bool, bool, str] | BaseException | None] = [None] * THREADS

    def compile_in_thread(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            existed = any((cache / "blobs").glob("*.blob"))
            compiled = thread_cores[i].compile_model(str(big.path), TEMPLATE,
                                                     {"CACHE_DIR": str(cache)})
            results[i] = (existed, compiled.get_property("LOADED_FROM_CACHE"),
                          checksum(compiled, big.x))
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=compile_in_thread, args=(i,)) for i in range(THREADS)]
    with warnings.catch_warnings(record=True) as caught:  # not thread-safe: set once, out here
        warnings.simplefilter("always")
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(isinstance(r, BaseException) for r in results), results
    assert all(isinstance(r, tuple) for r in results), results
    assert [r[0] for r in results] == [False] * THREADS  # all started before the blob existed
    assert [r[1] for r in results].count(False) == 1, results
    assert {r[2] for r in results} == {big.expected}
    assert [w for w in caught if issubclass(w.category, CacheWarning)] == []
    assert len(assert_only_whole_entries(cache)) == 1
    stats = ember.cache.stats(cache)
    assert (stats.writes, stats.misses, stats.hits) == (1, 1, THREADS - 1)


# -- 3, 4: writers and lock holders killed with SIGKILL ----------------------------------------

#: Where, as fractions of the write window (temporary file created -> blob published), the
#: delayed kills land; 0.0 to 1.0 is mid-write. The compile before the window is covered too.
WRITE_WINDOW_POINTS = (0.25, 0.5, 0.75)
COMPILE_POINTS = (0.0, 0.3, 0.6, 0.9)  # fractions of the time before the temporary file
MID_WRITE_ATTEMPTS = 4


def start_victim(tmp_path: Path, model: ModelFile, cache: Path) -> subprocess.Popen[str]:
    """A child compiling ``model``, returned once it is about to call compile_model."""
    ready = tmp_path / "ready"
    ready.unlink(missing_ok=True)
    proc = start_child(VICTIM_CHILD, {"model": str(model.path), "cache": str(cache),
                                      "ready": str(ready)})
    wait_until(ready.exists, proc)
    return proc


def write_window(tmp_path: Path, model: ModelFile, cache: Path) -> tuple[float, float]:
    """Time an undisturbed compile in a child, from its start to the moment its temporary file
    appears and to the moment its blob does (then remove that blob)."""
    proc = start_victim(tmp_path, model, cache)
    start, before = time.monotonic(), blobs_dir_names(cache)
    temp_seen = blob_seen = None
    while blob_seen is None:
        exited = proc.poll() is not None  # before listing: a blob may appear just after it
        new, now = blobs_dir_names(cache) - before, time.monotonic() - start
        if temp_seen is None and any(n.startswith(TEMP_PREFIX) for n in new):
            temp_seen = now
        if any(n.endswith(".blob") for n in new):
            blob_seen = now
        elif exited:
            raise AssertionError(f"the child wrote no blob: {proc.communicate()}")
        time.sleep(0.0002)
    assert finish_child(proc) == {"loaded_from_cache": False}
    remove_blobs(cache)
    return (blob_seen if temp_seen is None else temp_seen), blob_seen


def kill_victim(tmp_path: Path, model: ModelFile, cache: Path, *, delay: float | None) -> str:
    """Start a child compiling ``model`` and SIGKILL it ``delay`` s after it starts compiling, or
    (``delay`` None) as soon as it has created any file in blobs/. Return what the kill hit."""
    before = blobs_dir_names(cache)
    proc = start_victim(tmp_path, model, cache)
    if delay is None:
        wait_until(lambda: blobs_dir_names(cache) - before or proc.poll() is not None,
                   interval=0.0002)
    else:
        time.sleep(delay)
    proc.kill()
    _out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        return "after the compile had finished"
    assert proc.returncode == -9, err  # killed, and by us: nothing else went wrong
    left = blobs_dir_names(cache) - before
    if any(n.startswith(TEMP_PREFIX) for n in left):
        return "while writing the blob"
    return "after publishing the blob" if left else "before writing"


def remove_blobs(cache: Path) -> None:
    """Remove the blobs (not the temporary files) so that the next victim compiles again."""
    for name in blob_names(cache):
        (cache / "blobs" / name).unlink()


def test_sigkill_during_compile_export_and_write(tmp_path, big):
    cache = tmp_path / "cache"  # shared by every kill: temporary files left behind pile up
    core = ember.Core()
    temp_at, blob_at = write_window(tmp_path, big, cache)
    delays = [temp_at * f for f in COMPILE_POINTS]
    delays += [temp_at + (blob_at - temp_at) * f for f in WRITE_WINDOW_POINTS]
    log = []

    def kill_and_check(delay: float | None) -> None:
        what = kill_victim(tmp_path, big, cache, delay=delay)
        blobs = assert_only_whole_entries(cache)
        # Temporary files are never read as entries: with no blob this must be a plain miss.
        result = compile_and_report(core, str(big.path), str(cache), big.x)
        log.append((delay, what, result["loaded_from_cache"], sorted(temp_files(cache))))
        assert result == {"loaded_from_cache": bool(blobs), "checksum": big.expected,
                          "warnings": []}, log
        assert len(assert_only_whole_entries(cache)) == 1
        remove_blobs(cache)

    for delay in delays:
        kill_and_check(delay)
    for _attempt in range(MID_WRITE_ATTEMPTS):  # poll for the temporary file, then kill
        kill_and_check(None)
        if log[-1][1] == "while writing the blob":
            break
    assert log[-1][1] == "while writing the blob", log
    assert log[-1][2] is False, "the fresh compile after a killed write must be a miss"
    assert log[-1][3], "a writer killed mid-write leaves its temporary file behind"
    assert ember.cache.entries(cache) == []  # ... which is never listed as an entry


def test_lock_of_a_compiler_killed_mid_compile_does_not_block(tmp_path, big, monkeypatch):
    cache = tmp_path / "cache"
    proc = start_victim(tmp_path, big, cache)

    def compiling_with_the_lock() -> bool:
        locks = [p for p in (cache / "locks").glob("*.lock") if p.name != "events.lock"]
        return bool(locks) and not temp_files(cache) and lock_is_held(locks[0])

    wait_until(compiling_with_the_lock, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    assert blob_names(cache) == [] and temp_files(cache) == set()  # killed before writing
    assert [p.name for p in (cache / "locks").glob("*.lock")]  # its lock file is still there

    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "60")  # a lock left held would make us wait 60 s
    start = time.monotonic()
    result = compile_and_report(ember.Core(), str(big.path), str(cache), big.x)
    elapsed = time.monotonic() - start
    assert result == {"loaded_from_cache": False, "checksum": big.expected, "warnings": []}
    assert elapsed < 45, "waited for a lock whose holder was dead"  # sanity bound only
    assert len(assert_only_whole_entries(cache)) == 1


def key_of(model: ModelFile, scratch: Path) -> str:
    """The cache key Core uses for ``model`` on TEMPLATE: the name of the blob it writes."""
    result = compile_and_report(ember.Core(), str(model.path), str(scratch), model.x)
    assert result["loaded_from_cache"] is False
    (name,) = blob_names(scratch)
    return name.removesuffix(".blob")


@pytest.mark.parametrize("holder", ["killed", "alive"])
def test_lock_held_through_the_cache_api(tmp_path, medium, monkeypatch, holder):
    key = key_of(medium, tmp_path / "scratch")
    cache = tmp_path / "cache"
    ready = tmp_path / "ready"
    proc = start_child(LOCK_HOLDER_CHILD, {"cache": str(cache), "key": key, "ready": str(ready)})
    try:
        wait_until(ready.exists, proc)
        assert json.loads(ready.read_text()) is True
        assert lock_is_held(cache / "locks" / f"{key}.lock")
        if holder == "killed":
            proc.kill()
            proc.wait(timeout=60)
        # Waiting for a live holder ends in one warning; for a dead one it must not start.
        monkeypatch.setenv(LOCK_TIMEOUT_ENV, "60" if holder == "killed" else "0.5")
        result = compile_and_report(ember.Core(), str(medium.path), str(cache), medium.x)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert result["loaded_from_cache"] is False
    assert result["checksum"] == medium.expected
    if holder == "killed":
        assert result["warnings"] == []
    else:
        assert len(result["warnings"]) == 1 and "waited" in result["warnings"][0]
    assert assert_only_whole_entries(cache) == [f"{key}.blob"]


# -- 5, 6, 7: directories the cache cannot write to --------------------------------------------


def assert_compiled_uncached_with_one_warning(result: dict, model: ModelFile) -> None:
    assert result["loaded_from_cache"] is False
    assert result["checksum"] == model.expected
    assert len(result["warnings"]) == 1, result["warnings"]


def test_read_only_empty_cache_directory(tmp_path, medium):
    cache = tmp_path / "cache"
    cache.mkdir()
    compiles = [[str(medium.path), str(medium.input_path), str(cache)],
                [str(medium.path), str(medium.input_path), str(cache / "sub")]]
    with read_only(cache) as wrapper:
        result = run_child(COMPILE_CHILD, {"compiles": compiles, "list": str(cache)},
                           wrapper=wrapper)
    for compiled in result["compiles"]:  # the directory exists; a subdirectory cannot be made
        assert_compiled_uncached_with_one_warning(compiled, medium)
    assert result["files"] == []  # as the child saw it, from inside the read-only mount
    assert listing(str(cache)) == []


def test_read_only_populated_cache_still_serves_hits(tmp_path, medium, medium2):
    cache = tmp_path / "cache"
    first = compile_and_report(ember.Core(), str(medium.path), str(cache), medium.x)
    assert first == {"loaded_from_cache": False, "checksum": medium.expected, "warnings": []}
    background.wait()  # the file digest's memo, written by the background worker
    before = listing(str(cache))
    compiles = [[str(medium.path), str(medium.input_path), str(cache)],
                [str(medium2.path), str(medium2.input_path), str(cache)]]
    with read_only(cache) as wrapper:
        result = run_child(COMPILE_CHILD, {"compiles": compiles, "list": str(cache)},
                           wrapper=wrapper)
    hit, miss = result["compiles"]
    assert hit == {"loaded_from_cache": True, "checksum": medium.expected, "warnings": []}
    assert_compiled_uncached_with_one_warning(miss, medium2)
    assert result["files"] == before == listing(str(cache))
    assert len(assert_only_whole_entries(cache)) == 1


def test_read_only_cache_with_a_damaged_entry_warns_once(tmp_path, medium):
    """Two failures in one compile (a damaged entry it cannot replace) are still one warning."""
    cache = tmp_path / "cache"
    first = compile_and_report(ember.Core(), str(medium.path), str(cache), medium.x)
    assert first["loaded_from_cache"] is False
    (name,) = blob_names(cache)
    damaged = bytearray((cache / "blobs" / name).read_bytes())
    damaged[-5] ^= 0x01  # one flipped payload bit
    (cache / "blobs" / name).write_bytes(damaged)
    compiles = [[str(medium.path), str(medium.input_path), str(cache)]]
    with read_only(cache) as wrapper:
        result = run_child(COMPILE_CHILD, {"compiles": compiles, "list": str(cache)},
                           wrapper=wrapper)
    (compiled,) = result["compiles"]
    assert (cache / "blobs" / name).read_bytes() == damaged  # nothing could replace it
    assert_compiled_uncached_with_one_warning(compiled, medium)


def test_file_size_limit_below_the_blob(tmp_path, medium):
    cache = tmp_path / "cache"
    result = run_child(COMPILE_CHILD, {
        "compiles": [[str(medium.path), str(medium.input_path), str(cache)]],
        "fsize_limit": FSIZE_LIMIT, "list": str(cache),
    })
    (compiled,) = result["compiles"]
    assert_compiled_uncached_with_one_warning(compiled, medium)
    assert "File too large" in compiled["warnings"][0]  # EFBIG: the limit, not something else
    assert blob_names(cache) == [] and temp_files(cache) == set()
    assert not any(Path(f).name.startswith(TEMP_PREFIX) for f in listing(str(cache)))
    # The control: without the limit the same compile is cached, in a blob above the limit.
    again = compile_and_report(ember.Core(), str(medium.path), str(cache), medium.x)
    assert again == {"loaded_from_cache": False, "checksum": medium.expected, "warnings": []}
    (name,) = assert_only_whole_entries(cache)
    assert (cache / "blobs" / name).stat().st_size > FSIZE_LIMIT


def test_full_disk(tmp_path, medium):
    cache = tmp_path / "cache"
    cache.mkdir()
    # mode 0700: a tmpfs is world-writable (1777) by default, which an unsigned cache warns about
    wrapper = in_mount_namespace(cache, f"mount -t tmpfs -o size={TINY_TMPFS},mode=0700 tmpfs")
    result = run_child(COMPILE_CHILD, {
        "compiles": [[str(medium.path), str(medium.input_path), str(cache)]] * 2,
        "list": str(cache),
    }, wrapper=wrapper)
    for compiled in result["compiles"]:  # and a second time, on the same full disk
        assert_compiled_uncached_with_one_warning(compiled, medium)
        assert "No space left on device" in compiled["warnings"][0]  # ENOSPC, really
    files = result["files"]  # what the tmpfs held when the child was done
    assert not [f for f in files if f.endswith(".blob") or Path(f).name.startswith(TEMP_PREFIX)]
    assert listing(str(cache)) == []  # the tmpfs was the child's alone


def test_missing_parents_are_created_private_as_openvino_does(tmp_path, medium):
    cache = tmp_path / "missing" / "deeper" / "cache"
    core = ember.Core()
    first = compile_and_report(core, str(medium.path), str(cache), medium.x)
    assert first["warnings"] == [] and first["checksum"] == medium.expected
    second = compile_and_report(ember.Core(), str(medium.path), str(cache), medium.x)
    assert second["loaded_from_cache"] and second["checksum"] == medium.expected
    for made in (tmp_path / "missing", tmp_path / "missing" / "deeper", cache):
        assert made.stat().st_mode & 0o777 == 0o700, made


def test_a_parent_that_is_a_file_warns_and_compiles(tmp_path, medium):
    (tmp_path / "file").write_text("not a directory")
    cache = tmp_path / "file" / "cache"
    core = ember.Core()
    for _ in range(2):
        result = compile_and_report(core, str(medium.path), str(cache), medium.x)
        assert_compiled_uncached_with_one_warning(result, medium)
    assert (tmp_path / "file").read_text() == "not a directory"


# -- 8: model files edited behind the cache's back ---------------------------------------------


def test_same_size_edit_with_restored_mtime_is_a_miss(tmp_path, medium, monkeypatch):
    # A digest is remembered only for a file unchanged (mtime and ctime) for RACY_SECONDS; ctime
    # cannot be set back, so rather than sleep, this test remembers digests at once.
    from ember.cache import file_digest

    monkeypatch.setattr(file_digest, "RACY_SECONDS", 0.0)
    model_b = gemm_stack(**MEDIUM, seed=99)  # same graph and size, other weights
    data_b = model_b.SerializeToString()
    assert len(data_b) == medium.path.stat().st_size
    expected_b = uncached_checksum(data_b, medium.x)
    assert expected_b != medium.expected

    path = tmp_path / "model.onnx"
    path.write_bytes(medium.path.read_bytes())
    old = time.time_ns() - 60 * 10**9  # older than RACY_SECONDS: its digest gets remembered
    os.utime(path, ns=(old, old))
    cache = tmp_path / "cache"
    core = ember.Core()
    first = compile_and_report(core, str(path), str(cache), medium.x)
    assert first == {"loaded_from_cache": False, "checksum": medium.expected, "warnings": []}
    background.wait()  # the memo is written by the background worker
    assert list((cache / "files").glob("*.json")), "the digest was not remembered"
    warm = compile_and_report(core, str(path), str(cache), medium.x)
    assert warm == {"loaded_from_cache": True, "checksum": medium.expected, "warnings": []}

    before = path.stat()
    with path.open("r+b") as model_file:  # in place: same inode, same size
        model_file.write(data_b)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)

    edited = compile_and_report(core, str(path), str(cache), medium.x)
    assert edited == {"loaded_from_cache": False, "checksum": expected_b, "warnings": []}
    untouched = compile_and_report(core, str(path), str(cache), medium.x)
    assert untouched == {"loaded_from_cache": True, "checksum": expected_b, "warnings": []}

    # A hit on an untouched path does not parse the ONNX file (in a child: onnx is booby-trapped).
    result = run_child(NO_PARSE_CHILD, {"model": str(path), "input": str(medium.input_path),
                                        "cache": str(cache)})
    assert result["control"] == "refused"
    assert result["warm"] == {"loaded_from_cache": True, "checksum": expected_b, "warnings": []}
