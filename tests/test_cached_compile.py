"""``compile_with_cache`` step by step, with a real cache directory and a real Redis server on
127.0.0.1 as the remote tier: each path (a local or remote hit, a wait for another process or
host, admission, a failing export or write, the remote put) and what it records and warns.

The "model" here is a plain object and its "payload" a few bytes: what is tested is the
sequence around a compile, not a device."""

import gc
import logging
import re
import threading
import time
import warnings
from collections import Counter
from typing import Any

import pytest

from ember.cache import cached_compile
from ember.cache.cached_compile import ADMIT_ALL_ENV, LOCK_TIMEOUT_ENV, compile_with_cache
from ember.cache.key import make_key
from ember.cache.local import ModelCache
from ember.cache.remote import RemoteSettings, RemoteTier
from ember.errors import BlobFormatError, CacheWarning, NotSupportedError
from ember.store.atomic import background
from ember.store.signing import signer as make_signer

SIGNING_KEY = "tiers-signing-key"
PAYLOAD = b"compiled model payload"
HEADER = {"ember_version": "9.9", "plugin": "toy-tiers", "plugin_version": "1",
          "device": "TOY.0", "device_architecture": "toy", "model_name": "tiny"}


def key_of(model: str = "m" * 64, level: int = 1):
    return make_key(model_digest=model, device_kind="TOY", architecture="toy", plugin="toy",
                    plugin_version="1", properties={"LEVEL": level})


class Model:
    """What a compile or an import returns: where it came from."""

    def __init__(self, origin: str, payload: bytes = PAYLOAD) -> None:
        self.origin, self.payload = origin, bytes(payload)


class Device:
    """The three callables a compile through the cache is given, counting their calls."""

    def __init__(self, compile_seconds: float = 0.0, export_cpu: float = 0.0,
                 fail_import: Exception | None = None, fail_export: Exception | None = None,
                 during_compile=None) -> None:
        self.calls: Counter[str] = Counter()
        self.compile_seconds, self.export_cpu = compile_seconds, export_cpu
        self.fail_import, self.fail_export = fail_import, fail_export
        self.during_compile = during_compile
        self.gc_during_export: list[bool] = []

    def compile_model(self) -> Model:
        self.calls["compile"] += 1
        if self.during_compile:
            self.during_compile()
        time.sleep(self.compile_seconds)
        return Model("compiled")

    def export_model(self, model: Model) -> bytes:
        self.calls["export"] += 1
        self.gc_during_export.append(gc.isenabled())
        if self.fail_export:
            raise self.fail_export
        end = time.thread_time() + self.export_cpu
        while time.thread_time() < end:  # CPU work: what admission measures
            pass
        return model.payload

    def import_model(self, payload) -> Model:
        self.calls["import"] += 1
        if self.fail_import:
            raise self.fail_import
        return Model("imported", payload)


def run(cache: ModelCache, device: Device, key=None, **kwargs: Any):
    """(model, hit, the CacheWarnings' texts) of one compile through the cache."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, hit = compile_with_cache(
            cache, key or key_of(), compile_model=device.compile_model,
            export_model=device.export_model, import_model=device.import_model,
            header_fields=dict(HEADER), **kwargs)
    return model, hit, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def events(cache: ModelCache) -> list[dict[str, Any]]:
    cache.stats()  # flushes the deferred events
    return list(cache._read_events())


@pytest.fixture
def admit_all(monkeypatch):
    monkeypatch.setenv(ADMIT_ALL_ENV, "1")


@pytest.fixture
def remote(redis_url):
    return RemoteTier(RemoteSettings.parse(redis_url + "?wait=2", SIGNING_KEY))


SIGNER = make_signer(SIGNING_KEY)


# -- local ---------------------------------------------------------------------------------------

def test_a_miss_compiles_and_stores_and_the_next_compile_is_a_hit(tmp_path, admit_all):
    cache = ModelCache(tmp_path)
    device = Device(compile_seconds=0.01)
    model, hit, problems = run(cache, device)
    assert (model.origin, hit, problems) == ("compiled", False, [])
    header, payload = cache.read(key_of())
    assert bytes(payload) == PAYLOAD
    assert header.key == key_of().digest and header.key_parts == key_of().parts
    assert header.model_name == "tiny" and header.plugin == "toy-tiers"
    assert 0.01 <= header.compile_seconds < 5 and abs(header.created - time.time()) < 60
    model, hit, problems = run(cache, device)
    assert (model.origin, bytes(model.payload), hit, problems) == ("imported", PAYLOAD, True, [])
    assert device.calls == Counter({"compile": 1, "export": 1, "import": 1})
    stats = cache.stats()
    assert (stats.misses, stats.writes, stats.hits, stats.entries) == (1, 1, 1, 1)
    # the hit saved what compiling took, less the import: between 0 and the compile's time
    assert 0 < stats.compile_seconds_saved <= header.compile_seconds
    (hit_event,) = [e for e in events(cache) if e["event"] == "hit"]
    assert hit_event["bytes"] == len(PAYLOAD) and hit_event["key"] == key_of().digest


def test_a_hit_is_recorded_after_the_start_not_during_it(tmp_path, admit_all):
    """A warm start does not wait for the event log: its hit is written later (at exit, or
    when statistics are read)."""
    cache = ModelCache(tmp_path)
    run(cache, Device())
    assert run(cache, Device())[1] is True
    assert '"event": "hit"' not in (tmp_path / "events.log").read_text()
    assert cache.stats().hits == 1
    assert '"event": "hit"' in (tmp_path / "events.log").read_text()


def test_a_hit_records_no_negative_saving(tmp_path, admit_all):
    """An import slower than the compile it replaces saved nothing, not less than nothing."""
    cache = ModelCache(tmp_path)
    run(cache, Device())
    slow = Device()
    slow.import_model = lambda payload: time.sleep(0.05) or Model("imported")
    assert run(cache, slow)[1] is True
    (hit_event,) = [e for e in events(cache) if e["event"] == "hit"]
    assert hit_event["saved"] == 0.0


def test_an_entry_the_plugin_cannot_import_is_replaced_with_one_warning(tmp_path, admit_all):
    cache = ModelCache(tmp_path)
    run(cache, Device())
    model, hit, problems = run(cache, Device(fail_import=BlobFormatError("bad payload")))
    assert (model.origin, hit) == ("compiled", False)
    (problem,) = problems
    digest = key_of().digest
    assert problem == (f"cache entry {digest[:12]} for tiny could not be imported "
                       "(BlobFormatError: bad payload); compiled instead; the entry was replaced")
    assert cache.stats().damaged == 1  # once, though the look under the lock meets it again
    assert run(cache, Device())[1] is True  # the replacement is a hit


def test_a_cache_that_cannot_be_written_is_one_warning_and_no_entry(tmp_path, admit_all):
    (tmp_path / "blobs").write_text("a file where the entries' folder should be")
    cache = ModelCache(tmp_path)
    model, hit, problems = run(cache, Device(), max_size=1)
    assert (model.origin, hit) == ("compiled", False)
    (problem,) = problems  # reading it failed too: one warning says both
    assert problem.endswith(f"; the model cache {tmp_path} cannot be written (Not a directory)"
                            ": tiny was compiled but is not cached")


def test_a_failing_export_keeps_the_compile_and_says_so(tmp_path, admit_all):
    cache = ModelCache(tmp_path)
    model, hit, problems = run(cache, Device(fail_export=NotSupportedError("no export")))
    assert (model.origin, hit) == ("compiled", False)
    assert problems == ["exporting tiny for the cache failed (NotSupportedError: no export); "
                        "it is not cached"]
    assert cache.entries() == []


def test_the_size_bound_evicts_after_a_write(tmp_path, admit_all):
    cache = ModelCache(tmp_path)
    run(cache, Device(), key_of(level=1))
    (first,) = cache.entries()
    run(cache, Device(), key_of(level=2), max_size=first.size)
    (kept,) = cache.entries()
    assert kept.key == key_of(level=2).digest
    assert cache.stats().evictions == 1


def test_the_lock_timeout_setting(monkeypatch):
    monkeypatch.delenv(LOCK_TIMEOUT_ENV, raising=False)
    assert cached_compile.lock_timeout() == 300.0
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "2.5")
    assert cached_compile.lock_timeout() == 2.5
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "soon")
    assert cached_compile.lock_timeout() == 300.0


def hold_lock(cache: ModelCache, digest: str, then=None):
    """A thread holding ``digest``'s lock, as another process compiling it would, until
    ``release`` is set; it runs ``then`` just before releasing."""
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with ModelCache(cache.root).lock(digest, 5) as locked:
            assert locked
            held.set()
            release.wait(10)
            if then:
                then()

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    return thread, release


def test_a_lock_that_never_comes_costs_a_warning_and_a_compile(tmp_path, admit_all, monkeypatch):
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "0.2")
    cache = ModelCache(tmp_path)
    thread, release = hold_lock(cache, key_of().digest)
    try:
        model, hit, problems = run(cache, Device())
    finally:
        release.set()
        thread.join()
    assert (model.origin, hit) == ("compiled", False)
    (problem,) = problems
    assert problem.startswith("waited 0.2 s for another process compiling tiny; "
                              "compiled it here too")


def test_an_entry_published_while_waiting_for_the_lock_is_a_hit(tmp_path, admit_all):
    cache = ModelCache(tmp_path)
    other = ModelCache(tmp_path)

    def publish() -> None:
        assert other.write(key_of(), dict(HEADER, compile_seconds=1.0), b"theirs") is None

    thread, release = hold_lock(cache, key_of().digest, then=publish)
    device = Device()
    threading.Timer(0.2, release.set).start()
    try:
        model, hit, problems = run(cache, device)
    finally:
        release.set()
        thread.join()
    assert (model.origin, model.payload, hit, problems) == ("imported", b"theirs", True, [])
    assert device.calls["compile"] == 0


# -- admission -----------------------------------------------------------------------------------

def test_admit_all_setting(monkeypatch):
    for value, admitted in (("", False), ("0", False), ("1", True), ("yes", True)):
        monkeypatch.setenv(ADMIT_ALL_ENV, value)
        assert cached_compile._admit_all() is admitted, value
    monkeypatch.delenv(ADMIT_ALL_ENV)
    assert cached_compile._admit_all() is False


def test_a_compile_cheaper_than_its_export_is_not_stored(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(ADMIT_ALL_ENV, raising=False)
    cache = ModelCache(tmp_path)
    device = Device(compile_seconds=0.01, export_cpu=0.1)
    with caplog.at_level(logging.INFO, logger="ember.cache"):
        model, hit, problems = run(cache, device)
    assert (model.origin, hit, problems) == ("compiled", False, [])
    assert cache.entries() == []
    assert device.calls["export"] == 2  # the refusal was measured a second time, not more
    (message,) = [r.getMessage() for r in caplog.records if "not caching" in r.getMessage()]
    compiled, imported = map(float, re.fullmatch(
        r"not caching tiny: compiling \(([\d.]+) ms\) is cheaper than importing "
        r"\(~([\d.]+) ms\)", message).groups())
    assert 9 <= compiled < imported and 95 <= imported < 10_000
    (event,) = [e for e in events(cache) if e["event"] == "not_admitted"]
    assert 0.009 <= event["compile_seconds"] < event["export_seconds"]
    assert 0.095 <= event["export_seconds"] < 10
    # the line shows the measured times, in milliseconds
    assert compiled == round(event["compile_seconds"] * 1000, 1)
    assert imported == round(event["export_seconds"] * 1000, 1)
    assert cache.stats().not_admitted == 1 and cache.stats().misses == 1


def test_admit_all_stores_a_cheap_compile_after_one_export(tmp_path, monkeypatch):
    monkeypatch.setenv(ADMIT_ALL_ENV, "1")
    cache = ModelCache(tmp_path)
    device = Device(export_cpu=0.03)
    assert run(cache, device)[1:] == (False, [])
    assert len(cache.entries()) == 1 and device.calls["export"] == 1


def test_a_compile_dearer_than_its_export_is_stored_after_one_export(tmp_path, monkeypatch):
    monkeypatch.delenv(ADMIT_ALL_ENV, raising=False)
    cache = ModelCache(tmp_path)
    device = Device(compile_seconds=0.05)
    assert run(cache, device)[1:] == (False, [])
    assert len(cache.entries()) == 1 and device.calls["export"] == 1


def test_a_one_time_cost_of_the_first_export_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.delenv(ADMIT_ALL_ENV, raising=False)
    cache = ModelCache(tmp_path)
    device = Device(compile_seconds=0.02)
    exports = iter([0.1, 0.0])  # the first export pays an import of its modules, say
    plain_export = device.export_model

    def export(model):
        device.export_cpu = next(exports)
        return plain_export(model)

    device.export_model = export
    assert run(cache, device)[1:] == (False, [])
    assert len(cache.entries()) == 1 and device.calls["export"] == 2


def test_the_export_is_timed_with_the_collector_held_off(tmp_path, admit_all):
    assert gc.isenabled()
    device = Device()
    run(ModelCache(tmp_path), device)
    assert device.gc_during_export == [False] and gc.isenabled()
    gc.disable()
    try:
        run(ModelCache(tmp_path / "other"), device)
        assert not gc.isenabled()  # an application's choice is left as it was
    finally:
        gc.enable()
    assert device.gc_during_export == [False, False]


def test_a_miss_next_to_an_entry_of_the_same_model_says_what_differs(tmp_path, admit_all,
                                                                    caplog):
    cache = ModelCache(tmp_path)
    run(cache, Device(), key_of(level=1))
    with caplog.at_level(logging.INFO, logger="ember.cache"):
        run(cache, Device(), key_of(level=2))
    (message,) = [r.getMessage() for r in caplog.records if "cache miss" in r.getMessage()]
    assert message.startswith("cache miss for tiny on TOY.0: an entry for the same model "
                              "differs: ")
    assert "LEVEL" in message


# -- the remote tier -----------------------------------------------------------------------------

def publish_remote(remote: RemoteTier, key, payload: bytes = b"theirs") -> None:
    """An entry published by another host: signed, on the server only."""
    cache = ModelCache.encode(key, dict(HEADER, compile_seconds=2.0), payload, SIGNER)
    assert remote.put(key.digest, b"".join(bytes(c) for c in cache)) is None


def test_a_remote_hit_is_written_back_and_recorded(tmp_path, admit_all, remote):
    publish_remote(remote, key_of())
    cache = ModelCache(tmp_path)
    device = Device()
    model, hit, problems = run(cache, device, remote=remote, signer=SIGNER)
    assert (model.origin, model.payload, hit, problems) == ("imported", b"theirs", True, [])
    assert device.calls["compile"] == 0
    background.wait()
    _, payload = cache.read(key_of(), signer=SIGNER)
    assert bytes(payload) == b"theirs"
    stats = cache.stats()
    assert (stats.remote_hits, stats.hits, stats.misses) == (1, 0, 0)
    assert stats.compile_seconds_saved == 2.0
    assert stats.bytes_read == len(b"theirs")
    # the next start is local
    assert run(cache, Device(), remote=remote, signer=SIGNER)[1] is True
    assert cache.stats().hits == 1


def test_a_write_back_that_fails_is_logged_and_the_hit_still_counts(tmp_path, admit_all, remote,
                                                                   caplog):
    publish_remote(remote, key_of())
    (tmp_path / "blobs").write_text("a file where the entries' folder should be")
    cache = ModelCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ember.cache"):
        model, hit, _ = run(cache, Device(), remote=remote, signer=SIGNER)
        background.wait()
    assert (model.payload, hit) == (b"theirs", True)
    (message,) = [r.getMessage() for r in caplog.records if "without a local copy" in
                  r.getMessage()]
    assert message.startswith(f"the model cache {tmp_path} cannot be written")
    assert message.endswith(": a remote entry was used without a local copy")
    assert cache.stats().remote_hits == 1


def test_a_remote_entry_the_plugin_cannot_import_is_not_written_back(tmp_path, admit_all,
                                                                    remote):
    publish_remote(remote, key_of())
    cache = ModelCache(tmp_path)
    model, hit, problems = run(cache, Device(fail_import=BlobFormatError("x")), remote=remote,
                               signer=SIGNER)
    assert (model.origin, hit) == ("compiled", False)
    assert "could not be imported (BlobFormatError" in problems[0]
    background.wait()
    stats = cache.stats()
    assert stats.remote_hits == 0 and stats.damaged == 1


def test_a_miss_on_both_tiers_is_put_on_the_remote(tmp_path, admit_all, remote, redis_server):
    cache = ModelCache(tmp_path)
    model, hit, problems = run(cache, Device(), remote=remote, signer=SIGNER)
    assert (model.origin, hit, problems) == ("compiled", False, [])
    data, problem = remote.get(key_of().digest)
    assert problem is None and bytes(data) == cache.blob_path(key_of().digest).read_bytes()
    stats = cache.stats()
    assert stats.remote_writes == 1
    (event,) = [e for e in events(cache) if e["event"] == "remote_write"]
    assert event["bytes"] == len(data)
    # the fleet lock was released
    assert redis_server.client().keys("ember:lock:*") == []
    # another host's start is a remote hit
    other = ModelCache(tmp_path / "other")
    assert run(other, Device(), remote=remote, signer=SIGNER)[1] is True


def test_a_host_waits_for_the_one_holding_the_fleet_lock(tmp_path, admit_all, remote,
                                                        redis_server):
    digest = key_of().digest
    client = redis_server.client()
    assert client.set(f"ember:lock:{digest}", "another-host", nx=True, px=10_000)
    threading.Timer(0.3, publish_remote, (remote, key_of())).start()
    device = Device()
    start = time.monotonic()
    model, hit, problems = run(ModelCache(tmp_path), device, remote=remote, signer=SIGNER)
    assert (model.origin, model.payload, hit, problems) == ("imported", b"theirs", True, [])
    assert device.calls["compile"] == 0 and time.monotonic() - start >= 0.25


def test_a_wait_for_another_host_that_runs_out_compiles_here(tmp_path, admit_all, redis_url,
                                                            redis_server):
    remote = RemoteTier(RemoteSettings.parse(redis_url + "?wait=0.3", SIGNING_KEY))
    digest = key_of().digest
    assert redis_server.client().set(f"ember:lock:{digest}", "another-host", px=10_000)
    model, hit, problems = run(ModelCache(tmp_path), Device(), remote=remote, signer=SIGNER)
    assert (model.origin, hit) == ("compiled", False)
    (problem,) = problems
    assert problem.startswith(f"waited 0.3 s for another host to compile {digest[:12]}; "
                              "compiling here")
    assert problem.count("waited") == 1  # the first look, before the fleet lock, did not wait


def test_an_entry_another_host_published_before_the_fleet_lock_is_a_hit(tmp_path, admit_all,
                                                                       remote):
    """Between this host's first look and its fleet lock (here: while it waited for the local
    lock), another host publishes: the second look finds it, and nothing is compiled."""
    cache = ModelCache(tmp_path)
    thread, release = hold_lock(cache, key_of().digest, then=lambda: publish_remote(
        remote, key_of()))
    threading.Timer(0.2, release.set).start()
    device = Device()
    try:
        model, hit, problems = run(cache, device, remote=remote, signer=SIGNER)
    finally:
        release.set()
        thread.join()
    assert (model.origin, model.payload, hit, problems) == ("imported", b"theirs", True, [])
    assert device.calls["compile"] == 0


def test_a_failing_remote_put_is_one_warning_and_the_local_entry_stays(tmp_path, admit_all,
                                                                      own_redis_server):
    """The server refuses writes once the compile has started (out of memory): the lock was
    taken, the put fails, the local entry is written all the same."""
    remote = RemoteTier(RemoteSettings.parse(own_redis_server.url, SIGNING_KEY))
    client = own_redis_server.client()
    device = Device(during_compile=lambda: client.config_set("maxmemory", 1))
    cache = ModelCache(tmp_path)
    model, hit, problems = run(cache, device, remote=remote, signer=SIGNER)
    assert (model.origin, hit) == ("compiled", False)
    (problem,) = problems
    assert problem.startswith(f"the remote cache {own_redis_server.url} failed while writing")
    assert len(cache.entries()) == 1 and cache.stats().remote_writes == 0


def test_a_fleet_lock_taken_after_the_first_look_is_waited_for(tmp_path, admit_all, remote,
                                                               redis_server):
    """The first look at the remote tier does not wait; finding the fleet lock held by another
    host (which took it while this one waited for its local lock) does, for that host's
    entry."""
    digest = key_of().digest

    def another_host_starts_compiling() -> None:
        assert redis_server.client().set(f"ember:lock:{digest}", "another-host", px=10_000)
        threading.Timer(0.3, publish_remote, (remote, key_of())).start()

    cache = ModelCache(tmp_path)
    thread, release = hold_lock(cache, digest, then=another_host_starts_compiling)
    threading.Timer(0.1, release.set).start()
    device = Device()
    try:
        model, hit, problems = run(cache, device, remote=remote, signer=SIGNER)
    finally:
        release.set()
        thread.join()
    assert (model.origin, model.payload, hit, problems) == ("imported", b"theirs", True, [])
    assert device.calls["compile"] == 0
