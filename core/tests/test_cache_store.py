"""A cache directory's bookkeeping, with the toy plugin (fast): statistics read from an event log
anyone may have appended to, listings of unreadable entries, last use, pruning and clearing."""

import json
import os
import time
import warnings

import pytest

import ember
import ember.cache
from ember.cache import local as store
from ember.cache.cached_compile import ADMIT_ALL_ENV
from ember.errors import CacheWarning
from ember.testing.toy import ToyPlugin, identity_model_bytes


@pytest.fixture(autouse=True)
def admit_every_compile(monkeypatch):
    monkeypatch.setenv(ADMIT_ALL_ENV, "1")


def compile_toy(cache_dir, **config):
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(ToyPlugin("TOY", 1), "toy")
    return core.compile_model(identity_model_bytes(), "TOY.0",
                              {"CACHE_DIR": str(cache_dir), **config})


def test_statistics_count_each_event_once(tmp_path):
    for _ in range(3):
        compile_toy(tmp_path / "c")
    stats = store.ModelCache(tmp_path / "c").stats()
    (entry,) = (tmp_path / "c" / "blobs").glob("*.blob")
    assert (stats.hits, stats.misses, stats.writes, stats.entries) == (2, 1, 1, 1)
    assert stats.bytes_written == stats.size == entry.stat().st_size
    assert stats.bytes_read == 2 * len(b"add-one")  # a hit reads the payload
    assert (stats.damaged, stats.evictions, stats.not_admitted, stats.remote_hits) == (0,) * 4


def test_statistics_survive_a_forged_event_log(tmp_path):
    cache = store.ModelCache(tmp_path)
    lines = [
        {"event": "hit", "key": "k", "bytes": 10, "saved": 1.5},
        {"event": "remote_hit", "key": "k", "bytes": 5, "saved": 0.5},
        {"event": "write", "key": "k", "bytes": 7},
        {"event": "hit", "key": "k", "bytes": -100, "saved": "lots"},  # counted, values not
        {"event": "hit", "key": "k", "bytes": True},  # a boolean is not a count
        {"event": 5}, {"event": "unknown"}, ["not", "an", "object"],
        {"event": "summary", "hits": 4, "misses": 2, "bytes_read": 100, "writes": -3},
        {"event": "evict", "key": "k"}, {"event": "damaged", "key": "k"},
        {"event": "not_admitted", "key": "k"}, {"event": "remote_write", "key": "k"},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n{not json\n" + "[" * 50 + "\n"
    (tmp_path / "events.log").write_text(text)
    stats = cache.stats()
    assert stats.hits == 3 + 4 and stats.remote_hits == 1 and stats.misses == 2
    assert stats.writes == 1 and stats.bytes_written == 7
    assert stats.bytes_read == 10 + 5 + 100
    assert stats.compile_seconds_saved == 2.0
    assert (stats.evictions, stats.damaged, stats.not_admitted, stats.remote_writes) == (1,) * 4


def test_an_unreadable_entry_is_listed_and_verified_as_damaged(tmp_path):
    compile_toy(tmp_path / "c")
    junk = tmp_path / "c" / "blobs" / ("f" * 64 + ".blob")
    junk.write_bytes(b"not a blob")
    (tmp_path / "c" / "blobs" / "notes.txt").write_text("someone else's")
    cache = store.ModelCache(tmp_path / "c")
    listed = {e.key: e for e in cache.entries()}
    assert len(listed) == 2 and listed["f" * 64].model_name == "?"
    assert listed["f" * 64].size == len(b"not a blob")
    assert listed["f" * 64].compile_seconds == 0.0
    good = next(e for k, e in listed.items() if k != "f" * 64)
    assert (good.model_name, good.device, good.plugin) == ("model", "TOY.0", "toy")
    assert [path for path, _ in cache.verify()] == [junk]
    cache.prune(1 << 30)  # damaged entries go, intact ones stay
    assert [e.key for e in cache.entries()] == [good.key]


def test_a_hit_brings_last_use_forward_only_past_the_resolution(tmp_path):
    compile_toy(tmp_path / "c")
    (entry,) = (tmp_path / "c" / "blobs").glob("*.blob")
    recent = time.time() - store.LAST_USE_RESOLUTION / 2
    os.utime(entry, (recent, recent))
    compile_toy(tmp_path / "c")
    assert entry.stat().st_mtime == pytest.approx(recent, abs=1)  # recent enough: not written
    old = time.time() - store.LAST_USE_RESOLUTION - 5
    os.utime(entry, (old, old))
    compile_toy(tmp_path / "c")
    assert entry.stat().st_mtime > time.time() - 5


def test_prune_removes_stale_temporary_files_only(tmp_path):
    compile_toy(tmp_path / "c")
    blobs = tmp_path / "c" / "blobs"
    stale, fresh = blobs / ".tmp-stale", blobs / ".tmp-fresh"
    for path in (stale, fresh):
        path.write_bytes(b"partial")
    old = time.time() - store.STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    store.ModelCache(tmp_path / "c").prune(1 << 30)
    assert not stale.exists() and fresh.exists()
    assert len(list(blobs.glob("*.blob"))) == 1


def test_clear_removes_ember_files_and_nothing_else(tmp_path):
    compile_toy(tmp_path / "c")
    (tmp_path / "c" / "mine.txt").write_text("kept")
    store.ModelCache(tmp_path / "c").clear()
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["mine.txt"]
    assert store.ModelCache(tmp_path / "c").stats().misses == 0


def test_explain_miss_names_the_entry_of_the_same_model(tmp_path):
    compile_toy(tmp_path / "c")
    cache = store.ModelCache(tmp_path / "c")
    (entry,) = cache.entries()
    header_parts = json.loads(json.dumps(
        store._read_header(entry.path).key_parts))  # what the entry was made with
    other = ember.cache.make_key(
        model_digest=header_parts["model"], device_kind="TOY", architecture="toy-1",
        plugin="toy", plugin_version="", properties={"TOY_LEVEL": 2})
    assert cache.explain_miss(other) == "property TOY_LEVEL 1 cached, 2 now"
    unrelated = other._replace(parts={**other.parts, "model": "0" * 64})
    assert cache.explain_miss(unrelated) is None


class SlowCompile(ToyPlugin):
    @ember.hookimpl
    def compile(self, model, device_name, config):
        end = time.perf_counter() + 0.05  # a compile worth caching
        while time.perf_counter() < end:
            pass
        return super().compile(model, device_name, config)


def test_a_hit_records_the_compile_time_it_saved(tmp_path):
    def compile_slow():
        core = ember.Core(load_installed_plugins=False)
        core.register_plugin(SlowCompile("TOY", 1), "toy")
        return core.compile_model(identity_model_bytes(), "TOY.0",
                                  {"CACHE_DIR": str(tmp_path / "c")})

    compile_slow()
    (entry,) = store.ModelCache(tmp_path / "c").entries()
    assert 0.05 <= entry.compile_seconds < 5
    assert compile_slow().get_property("LOADED_FROM_CACHE") is True
    stats = store.ModelCache(tmp_path / "c").stats()
    # what the compile took, less what the import took (a toy import is nearly free)
    assert 0.04 < stats.compile_seconds_saved <= entry.compile_seconds


def test_the_garbage_collector_is_left_as_it_was(tmp_path):
    import gc

    assert gc.isenabled()
    compile_toy(tmp_path / "c")  # an export is timed with the collector held off
    assert gc.isenabled()
    gc.disable()
    try:
        compile_toy(tmp_path / "d")
        assert not gc.isenabled()
    finally:
        gc.enable()


def three_entries_by_age(cache_dir):
    """Three entries of one model (TOY_LEVEL 1, 2, 3), last used in that order: paths, oldest
    first."""
    paths = []
    for age, level in zip((300, 200, 100), (1, 2, 3), strict=True):
        compile_toy(cache_dir, TOY_LEVEL=level)
        (path,) = set((cache_dir / "blobs").glob("*.blob")) - set(paths)
        when = time.time() - age
        os.utime(path, (when, when))
        paths.append(path)
    return paths


def test_eviction_removes_the_least_recently_used_until_the_bound_holds(tmp_path):
    oldest, middle, newest = three_entries_by_age(tmp_path / "c")
    cache = store.ModelCache(tmp_path / "c")
    assert [e.path for e in cache.entries()] == [oldest, middle, newest]
    sizes = {p: p.stat().st_size for p in (oldest, middle, newest)}
    removed = cache.evict(sizes[newest] + sizes[middle])
    assert [e.path for e in removed] == [oldest] and not oldest.exists()
    removed = cache.evict(sizes[newest])
    assert [e.path for e in removed] == [middle] and newest.exists()
    assert cache.evict(0) and not list((tmp_path / "c" / "blobs").glob("*.blob"))
    stats = cache.stats()
    assert (stats.evictions, stats.entries, stats.size) == (3, 0, 0)


def test_a_hit_makes_an_entry_the_last_to_be_evicted(tmp_path):
    oldest, middle, newest = three_entries_by_age(tmp_path / "c")
    compile_toy(tmp_path / "c", TOY_LEVEL=1)  # a hit on the oldest: now the most recent
    cache = store.ModelCache(tmp_path / "c")
    assert [e.path for e in cache.entries()] == [middle, newest, oldest]
    # two to remove: the loop goes on past the first
    assert [e.path for e in cache.evict(oldest.stat().st_size)] == [middle, newest]
    assert oldest.exists()


def test_a_large_event_log_is_folded_into_one_summary(tmp_path, monkeypatch):
    compile_toy(tmp_path / "c")
    compile_toy(tmp_path / "c")
    events = tmp_path / "c" / "events.log"
    store.flush_deferred_events()
    before = store.ModelCache(tmp_path / "c").stats()
    padding = json.dumps({"event": "padding", "key": "k", "text": "x" * 1000}) + "\n"
    with events.open("a") as log_file:
        log_file.write(padding * ((1 << 20) // len(padding) - 1))
    last = (1 << 20) - 1 - events.stat().st_size
    with events.open("a") as log_file:
        log_file.write(json.dumps({"event": "padding", "text": ""}).replace(
            '""', '"' + "x" * (last - 1 - len('{"event": "padding", "text": ""}')) + '"') + "\n")
    assert events.stat().st_size == (1 << 20) - 1
    store.ModelCache(tmp_path / "c").compact_events()
    assert events.stat().st_size == (1 << 20) - 1  # one byte under the bound: left as it is
    with events.open("a") as log_file:
        log_file.write("\n")  # exactly at the bound
    store.ModelCache(tmp_path / "c").compact_events()
    (line,) = events.read_text().splitlines()
    assert json.loads(line)["event"] == "summary"
    after = store.ModelCache(tmp_path / "c").stats()
    assert (after.hits, after.misses, after.writes, after.bytes_read, after.bytes_written) == (
        before.hits, before.misses, before.writes, before.bytes_read, before.bytes_written)


def test_deferred_events_are_appended_in_the_order_they_happened(tmp_path):
    cache = store.ModelCache(tmp_path)
    store.flush_deferred_events()
    for key in ("first", "second", "third"):
        cache.record("hit", key, later=True)
    assert not (tmp_path / "events.log").exists()  # deferred: nothing written yet
    store.flush_deferred_events()
    lines = (tmp_path / "events.log").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["first", "second", "third"]


def test_a_listing_goes_on_past_an_entry_that_vanished(tmp_path):
    paths = three_entries_by_age(tmp_path / "c")
    blobs = tmp_path / "c" / "blobs"
    for number in range(20):  # links to nothing: listed, but neither readable nor stat-able
        (blobs / f"{number:064x}.blob").symlink_to(tmp_path / "nowhere")
    with pytest.warns(CacheWarning, match="symbolic link"):  # each warned about, once
        listed = store.ModelCache(tmp_path / "c").entries()
    assert [e.path for e in listed] == paths


def test_event_lines_are_bounded_at_their_edges(tmp_path):
    def hit(**fields):
        return json.dumps({"event": "hit", "key": "k", **fields})

    lines = [hit(**{f"f{i}": i for i in range(61)}),  # 64 nodes: the most a line may hold
             hit(**{f"f{i}": i for i in range(62)}),  # 65: skipped
             hit(x={"y": 1}),  # two levels deep: the deepest allowed
             hit(x={"y": [1]})]  # three: skipped
    (tmp_path / "events.log").write_text("\n".join(lines) + "\n")
    assert store.ModelCache(tmp_path).stats().hits == 2


def test_a_lock_held_by_another_thread_is_not_waited_for_with_a_negative_timeout(tmp_path):
    import threading

    cache = store.ModelCache(tmp_path)
    outcome = []

    def try_lock():
        start = time.monotonic()
        with cache.lock("k" * 64, timeout=-5) as acquired:
            outcome.append((acquired, time.monotonic() - start < 0.5))

    with cache.lock("k" * 64, timeout=1) as held:
        assert held
        other = threading.Thread(target=try_lock, daemon=True)
        other.start()
        other.join(10)
        assert not other.is_alive(), "a negative timeout waited for the lock"
    assert outcome == [(False, True)]  # at once


def a_key(name="m"):
    from ember.cache.key import entry_key

    return entry_key({"model": name, "device": "TOY"})


FIELDS = {"ember_version": "0.1.0", "plugin": "ember-test", "plugin_version": "1.0",
          "device": "TOY", "device_architecture": "toy"}


def test_blob_path_names_the_entry_in_blobs(tmp_path):
    cache = store.ModelCache(tmp_path)
    key = a_key()
    assert cache.blob_path(key.digest) == tmp_path / "blobs" / f"{key.digest}.blob"
    assert cache.blob_path(key.digest, store.KERNEL_SUFFIX).name == key.digest + ".cl_cache"
    assert (cache.root, cache.blobs, cache.locks) == (
        tmp_path, tmp_path / "blobs", tmp_path / "locks")


def test_a_signed_cache_checks_the_tag_at_every_read(tmp_path):
    from ember.store.signing import Signer

    cache, key = store.ModelCache(tmp_path), a_key()
    assert cache.write(key, FIELDS, b"payload", signer=Signer(b"key-a")) is None
    header, payload = cache.read(key, signer=Signer(b"key-a"))
    assert bytes(payload) == b"payload"
    header, problem = cache.read(key, signer=Signer(b"key-b"))
    assert header is None and "damaged" in problem
    assert cache.write(key, FIELDS, b"unsigned") is None
    header, problem = cache.read(key, signer=Signer(b"key-a"))
    assert header is None and "damaged" in problem


def test_an_unsigned_cache_others_can_write_is_warned_about_and_a_signed_one_is_not(tmp_path):
    from ember.cache import shared_dir
    from ember.store.signing import Signer

    for name in ("unsigned", "signed"):
        (tmp_path / name).mkdir(mode=0o777)
        os.chmod(tmp_path / name, 0o777)
        shared_dir._warned_shared.discard(str(tmp_path / name))
    with pytest.warns(CacheWarning, match="can be written by every user"):
        store.ModelCache(tmp_path / "unsigned").read(a_key())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.ModelCache(tmp_path / "signed").read(a_key(), signer=Signer(b"key"))


def test_what_cannot_be_written_or_read_is_said_in_the_systems_words(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    problem = store.ModelCache(tmp_path / "file").write(a_key(), FIELDS, b"payload")
    assert problem.endswith("cannot be written (Not a directory)"), problem
    cache, key = store.ModelCache(tmp_path / "c"), a_key()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "blobs").write_text("not a directory")
    header, problem = cache.read(key)
    assert header is None and problem.endswith("cannot be read (Not a directory)"), problem


def test_a_lock_that_cannot_be_taken_for_a_planted_link_lets_the_compile_go_on(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "c" / "locks").symlink_to(tmp_path / "elsewhere")
    with (pytest.warns(CacheWarning, match="symbolic link"),
          store.ModelCache(tmp_path / "c").lock("k" * 64, timeout=1) as acquired):
        assert acquired is True
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_cache_warning_points_at_the_callers_line(tmp_path):
    compile_toy(tmp_path / "c")
    (entry,) = (tmp_path / "c" / "blobs").glob("*.blob")
    entry.write_bytes(entry.read_bytes()[:-1])
    with pytest.warns(CacheWarning) as caught:
        compile_toy(tmp_path / "c")
    import inspect

    lines, first = inspect.getsourcelines(compile_toy)
    call = first + next(i for i, text in enumerate(lines) if "core.compile_model(" in text)
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, call)]


@pytest.mark.parametrize(("padding", "counted"), [(0, 1), (1, 0)])
def test_an_event_line_is_bounded_at_4096_bytes(tmp_path, padding, counted):
    line = json.dumps({"event": "hit", "key": "k", "pad": ""})
    line = line.replace('""', '"' + "x" * (4096 - len(line) + padding) + '"')
    (tmp_path / "events.log").write_text(line + "\n")
    assert store.ModelCache(tmp_path).stats().hits == counted


def test_deferred_events_are_bounded(tmp_path):
    cache = store.ModelCache(tmp_path)
    store.flush_deferred_events()
    try:
        for _ in range(1000):
            cache.record("hit", "k", later=True)
        assert not (tmp_path / "events.log").exists()  # a thousand are kept for later
        cache.record("hit", "past-the-bound", later=True)
        (line,) = (tmp_path / "events.log").read_text().splitlines()
        assert json.loads(line)["key"] == "past-the-bound"  # the next is appended at once
    finally:
        store.flush_deferred_events()
    assert cache.stats().hits == 1001


def test_a_lock_held_by_another_process_is_waited_for_until_the_timeout(tmp_path):
    import threading

    from ember.store import confined

    cache, key = store.ModelCache(tmp_path), "k" * 64
    held, release = threading.Event(), threading.Event()

    def other_holder():  # a flock on its own open file: as another process would hold it
        with confined.file_lock(str(tmp_path), ("locks",), f"{key}.lock", 0) as locked:
            assert locked
            held.set()
            release.wait(5)
            time.sleep(0.3)

    holder = threading.Thread(target=other_holder, daemon=True)
    holder.start()
    assert held.wait(5)
    release.set()
    with cache.lock(key, timeout=10) as acquired:
        assert acquired  # waited for the holder to let go
    holder.join(5)


def test_an_entry_under_another_keys_name_is_damaged_and_says_whose_it_is(tmp_path):
    import shutil

    cache, mine, other = store.ModelCache(tmp_path), a_key("m"), a_key("other")
    assert cache.write(other, FIELDS, b"payload") is None
    shutil.copy(cache.blob_path(other.digest), cache.blob_path(mine.digest))
    header, problem = cache.read(mine)
    assert header is None and f"entry holds key {other.digest[:12]}..., not" in problem


def test_explain_miss_looks_past_entries_of_other_models(tmp_path):
    from ember.cache.key import entry_key

    cache = store.ModelCache(tmp_path)
    for number in range(12):
        assert cache.write(a_key(f"other-{number}"), FIELDS, b"x") is None
    (tmp_path / "blobs" / ("e" * 64 + ".blob")).write_bytes(b"not a blob")
    assert cache.write(a_key("m"), FIELDS, b"x") is None
    wanted = entry_key({"model": "m", "device": "OTHER"})
    assert "device" in cache.explain_miss(wanted)
    assert cache.explain_miss(entry_key({"model": "none", "device": "TOY"})) is None


def test_a_lock_held_elsewhere_is_not_waited_for_past_the_timeout(tmp_path):
    import threading

    from ember.store import confined

    cache, key, outcome = store.ModelCache(tmp_path), "k" * 64, []
    held, release = threading.Event(), threading.Event()

    def other_holder():
        with confined.file_lock(str(tmp_path), ("locks",), f"{key}.lock", 0) as locked:
            assert locked
            held.set()
            release.wait(10)

    def try_lock():
        start = time.monotonic()
        with cache.lock(key, timeout=0) as acquired:
            outcome.append((acquired, time.monotonic() - start < 0.5))

    holder = threading.Thread(target=other_holder, daemon=True)
    holder.start()
    assert held.wait(5)
    trying = threading.Thread(target=try_lock, daemon=True)
    trying.start()
    trying.join(5)
    release.set()
    holder.join(5)
    assert outcome == [(False, True)]  # refused at once


def test_an_event_that_cannot_be_written_is_dropped_quietly(tmp_path):
    import resource
    import signal

    cache = store.ModelCache(tmp_path)
    (tmp_path / "events.log").write_text("x" * 100)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10, hard))  # the file is past it: EFBIG
    try:
        cache.record("miss", "k")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert (tmp_path / "events.log").read_text() == "x" * 100


def test_compaction_is_skipped_at_once_while_another_process_compacts(tmp_path):
    import threading

    from ember.store import confined

    cache = store.ModelCache(tmp_path)
    cache.compact_events()  # no event log yet: nothing to do, nothing raised
    events = tmp_path / "events.log"
    events.write_text(json.dumps({"event": "miss", "key": "k"}) + "\n" + " " * (1 << 20) + "\n")
    held, release = threading.Event(), threading.Event()

    def other_compactor():
        with confined.file_lock(str(tmp_path), ("locks",), "events.lock", 0) as locked:
            assert locked
            held.set()
            release.wait(10)

    holder = threading.Thread(target=other_compactor, daemon=True)
    holder.start()
    assert held.wait(5)
    start = time.monotonic()
    cache.compact_events()
    elapsed = time.monotonic() - start
    release.set()
    holder.join(5)
    assert elapsed < 0.5 and events.stat().st_size > 1 << 20  # left to the other one


def test_a_counter_just_below_zero_is_not_counted(tmp_path):
    lines = [{"event": "hit", "key": "k", "bytes": -1, "saved": -0.5},
             {"event": "write", "key": "k", "bytes": 0}]
    (tmp_path / "events.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    stats = store.ModelCache(tmp_path).stats()
    assert (stats.hits, stats.bytes_read, stats.compile_seconds_saved) == (1, 0, 0.0)
    assert (stats.writes, stats.bytes_written) == (1, 0)


def test_a_write_through_a_planted_link_is_refused_once_and_not_reported_again(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "c" / "blobs").symlink_to(tmp_path / "elsewhere")
    cache = store.ModelCache(tmp_path / "c")
    with pytest.warns(CacheWarning, match="symbolic link"):
        assert cache.write(a_key(), FIELDS, b"payload") is None  # warned, not a failure
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_statistics_of_a_directory_not_made_yet_are_dropped_quietly(tmp_path):
    store.ModelCache(tmp_path / "not-yet").record("miss", "k")
    assert not (tmp_path / "not-yet").exists()


def test_the_records_are_still_reachable_under_their_old_module():
    from ember.cache import records

    assert (store.CacheEntry, store.CacheStats) == (records.CacheEntry, records.CacheStats)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        store.Nothing  # noqa: B018


def test_statistics_read_at_most_64_mib_of_the_event_log(tmp_path):
    hit = json.dumps({"event": "hit", "key": "k"}) + "\n"
    with (tmp_path / "events.log").open("w") as log_file:
        log_file.write(" " * ((64 << 20) - len(hit) - 1) + "\n" + hit)  # ends at the bound
        log_file.write(hit)  # past it: not read
    assert store.ModelCache(tmp_path).stats().hits == 1
