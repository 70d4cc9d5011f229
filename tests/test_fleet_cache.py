"""The Redis tier, against a real redis-server on 127.0.0.1: hosts are separate cache
directories (and, for the races, separate processes) sharing one server."""

import itertools
import json
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import ember
from ember import cache as ember_cache
from ember.errors import CacheWarning, PropertyValueError
from ember.store.atomic import background
from ember.testing.models import dense_stack

KEY = "fleet-signing-key"


def weights_heavy(path, dim=1024, layers=4, seed=0):
    """Dense layers: slow enough to compile that hosts overlap."""
    path.write_bytes(dense_stack(layers, dim, seed).SerializeToString())
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return weights_heavy(tmp_path_factory.mktemp("models") / "heavy.onnx", dim=512, layers=2)


def host_compile(cache_dir, model, remote, signing_key=KEY):
    config = {"CACHE_DIR": str(cache_dir), "CACHE_REMOTE": remote}
    if signing_key is not None:
        config["CACHE_SIGNING_KEY"] = signing_key
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = ember.Core().compile_model(model, "TEMPLATE", config)
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    return compiled, messages


def output(compiled, dim=512):
    return compiled(np.ones((2, dim), np.float32))[0]


def verified(cache_dir):
    """Whether every entry of a cache directory verifies with the fleet's key."""
    from ember.store.signing import signer

    return ember_cache.ModelCache(cache_dir).verify(signer(KEY)) == []


def entries_in(redis_server, kind):
    return sorted(k.decode() for k in redis_server.client().keys(f"ember:{kind}:*"))


def test_remote_hit_is_written_back_locally(tmp_path, model, redis_url, redis_server):
    first, problems = host_compile(tmp_path / "a", model, redis_url)
    assert problems == [] and first.get_property("LOADED_FROM_CACHE") is False
    assert len(entries_in(redis_server, "manifest")) == 1
    second, problems = host_compile(tmp_path / "b", model, redis_url)
    assert problems == [] and second.get_property("LOADED_FROM_CACHE") is True
    assert output(second).tobytes() == output(first).tobytes()
    background.wait()  # the write-back runs off the start's critical path
    assert len(list((tmp_path / "b" / "blobs").glob("*.blob"))) == 1
    stats = ember_cache.stats(tmp_path / "b")
    assert (stats.remote_hits, stats.hits, stats.misses) == (1, 0, 0)
    third, _ = host_compile(tmp_path / "b", model, redis_url)  # now a local hit
    assert third.get_property("LOADED_FROM_CACHE") is True
    assert ember_cache.stats(tmp_path / "b").hits == 1
    assert ember_cache.stats(tmp_path / "a").remote_writes == 1


def test_large_blobs_are_chunked(tmp_path, redis_url, redis_server, monkeypatch):
    from ember.cache import remote

    monkeypatch.setattr(remote, "CHUNK_SIZE", 256 * 1024)
    big = weights_heavy(tmp_path / "big.onnx", dim=512, layers=4)  # 4 MB of weights
    host_compile(tmp_path / "a", big, redis_url)
    assert len(entries_in(redis_server, "chunk")) >= 16
    again, problems = host_compile(tmp_path / "b", big, redis_url)
    assert problems == [] and again.get_property("LOADED_FROM_CACHE") is True


def test_forged_entry_is_refused_and_replaced(tmp_path, model, redis_url, redis_server):
    host_compile(tmp_path / "attacker", model, redis_url, signing_key="not-the-fleet-key")
    forged, problems = host_compile(tmp_path / "victim", model, redis_url)
    assert forged.get_property("LOADED_FROM_CACHE") is False
    assert len(problems) == 1 and "wrong signature" in problems[0]
    assert not any("attacker" in str(p) for p in (tmp_path / "victim").rglob("*"))
    background.wait()
    honest, problems = host_compile(tmp_path / "third", model, redis_url)  # replaced
    assert problems == [] and honest.get_property("LOADED_FROM_CACHE") is True


def test_unsigned_entry_is_refused_by_signing_hosts(tmp_path, model, redis_url):
    host_compile(tmp_path / "a", model, redis_url + "?unsigned=1", signing_key=None)
    compiled, problems = host_compile(tmp_path / "b", model, redis_url)
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    assert "wrong signature" in problems[0]


def test_truncated_chunk_set_is_refused(tmp_path, model, redis_url, redis_server):
    host_compile(tmp_path / "a", model, redis_url)
    client = redis_server.client()
    client.delete(entries_in(redis_server, "chunk")[-1])
    compiled, problems = host_compile(tmp_path / "b", model, redis_url)
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    assert len(problems) == 1 and "incomplete" in problems[0]


def test_damaged_manifest_or_chunk_is_refused(tmp_path, model, redis_url, redis_server):
    host_compile(tmp_path / "a", model, redis_url)
    client = redis_server.client()
    (chunk,) = entries_in(redis_server, "chunk")
    data = bytearray(client.get(chunk))
    data[len(data) // 2] ^= 1
    client.set(chunk, bytes(data))
    compiled, problems = host_compile(tmp_path / "b", model, redis_url)
    assert compiled.get_property("LOADED_FROM_CACHE") is False and len(problems) == 1
    (manifest,) = entries_in(redis_server, "manifest")
    client.set(manifest, b"{not json")
    compiled, problems = host_compile(tmp_path / "c", model, redis_url)
    assert "unreadable manifest" in problems[0]


def test_read_only_host_never_writes(tmp_path, model, redis_url, redis_server):
    compiled, problems = host_compile(tmp_path / "a", model, redis_url + "?read_only=1")
    assert problems == [] and compiled.get_property("LOADED_FROM_CACHE") is False
    assert redis_server.client().keys("*") == []
    host_compile(tmp_path / "writer", model, redis_url)
    reader, _ = host_compile(tmp_path / "b", model, redis_url + "?read_only=1")
    assert reader.get_property("LOADED_FROM_CACHE") is True  # it still reads


def test_namespace_and_ttl(tmp_path, model, redis_url, redis_server):
    host_compile(tmp_path / "a", model, redis_url + "?prefix=teamA&ttl=3600")
    client = redis_server.client()
    keys = client.keys("*")
    assert keys and all(k.startswith(b"teamA:") for k in keys)
    assert all(0 < client.ttl(k) <= 3600 for k in keys)
    other, _ = host_compile(tmp_path / "b", model, redis_url + "?prefix=teamB")
    assert other.get_property("LOADED_FROM_CACHE") is False  # namespaces do not mix


def test_a_dead_server_costs_one_warning_and_no_wait(tmp_path, model, own_redis_server):
    url = own_redis_server.url + "?timeout=0.3"
    host_compile(tmp_path / "a", model, url)
    own_redis_server.stop()
    other = weights_heavy(tmp_path / "other.onnx", dim=256, layers=2, seed=1)
    start = time.monotonic()
    compiled, problems = host_compile(tmp_path / "b", other, url)
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    assert len(problems) == 1 and "remote cache" in problems[0]
    _, problems = host_compile(tmp_path / "c", other, url)  # marked down: no new attempt
    assert problems == [] and time.monotonic() - start < 5
    local, _ = host_compile(tmp_path / "b", other, url)
    assert local.get_property("LOADED_FROM_CACHE") is True  # the local tier still works


def test_signing_key_is_required_unless_waived(tmp_path, model, redis_url):
    with pytest.raises(PropertyValueError, match="CACHE_SIGNING_KEY"):
        host_compile(tmp_path / "a", model, redis_url, signing_key=None)
    with pytest.raises(PropertyValueError, match="redis://"):
        host_compile(tmp_path / "a", model, "http://example.invalid/")
    with pytest.raises(PropertyValueError, match="unknown CACHE_REMOTE options"):
        host_compile(tmp_path / "a", model, redis_url + "?colour=blue")
    # a port that is not a number is a bad setting, said at once (not a server "down" at the
    # first GET, which the remote tier would skip quietly for DOWN_SECONDS)
    with pytest.raises(PropertyValueError, match="bad CACHE_REMOTE option"):
        host_compile(tmp_path / "a", model, "redis://127.0.0.1:port/0")
    assert ember.Core().get_property("CACHE_SIGNING_KEY") == ""


def test_signing_key_is_never_shown(monkeypatch):
    monkeypatch.setenv("EMBER_CACHE_SIGNING_KEY", "secret")
    core = ember.Core()
    assert core.get_property("CACHE_SIGNING_KEY") == "<set>"
    assert core.get_property("TEMPLATE", "CACHE_SIGNING_KEY") == "<set>"


HOST = """
import json, os, sys, time, warnings
import ember
go, cache_dir, model, remote = sys.argv[1:5]
core = ember.Core()
while not os.path.exists(go):
    time.sleep(0.002)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    compiled = core.compile_model(model, "TEMPLATE", {"CACHE_DIR": cache_dir,
        "CACHE_REMOTE": remote, "CACHE_SIGNING_KEY": "fleet-signing-key"})
import numpy as np
out = compiled(np.ones((2, 1024), np.float32))[0]
print(json.dumps({"loaded": compiled.get_property("LOADED_FROM_CACHE"),
                  "warnings": [str(w.message) for w in caught], "sum": float(out.sum())}))
"""


def test_one_compile_among_cold_hosts(tmp_path, redis_url, redis_server):
    heavy = weights_heavy(tmp_path / "heavy.onnx", dim=1024, layers=6)  # ~0.5 s to compile
    go = tmp_path / "go"
    hosts = [subprocess.Popen([sys.executable, "-c", HOST, str(go), str(tmp_path / f"h{i}"),
                               str(heavy), redis_url], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    time.sleep(1.5)  # every host has imported Ember and waits at the line
    go.touch()
    results = []
    for host in hosts:
        out, _ = host.communicate(timeout=120)
        assert host.returncode == 0
        results.append(json.loads(out))
    assert [r["loaded"] for r in results].count(False) == 1, results
    assert all(r["warnings"] == [] for r in results)
    assert len({r["sum"] for r in results}) == 1
    assert redis_server.client().keys("ember:lock:*") == []  # released


def test_lock_of_a_dead_host_expires(tmp_path, model, redis_url, redis_server):
    ember.Core().compile_model(model, "TEMPLATE", {"CACHE_DIR": str(tmp_path / "scratch")})
    (entry,) = ember_cache.entries(tmp_path / "scratch")  # the key every host will use
    redis_server.client().set(f"ember:lock:{entry.key}", "dead-host", px=1500)
    start = time.monotonic()
    compiled, problems = host_compile(tmp_path / "a", model, redis_url + "?wait=30")
    waited = time.monotonic() - start
    assert problems == [] and compiled.get_property("LOADED_FROM_CACHE") is False
    assert 1.0 < waited < 20  # it waited for the lock, then compiled once it expired
    assert len(entries_in(redis_server, "manifest")) == 1


def test_compile_without_cache_dir_ignores_the_remote(tmp_path, model, redis_url, redis_server):
    ember.Core().compile_model(model, "TEMPLATE", {"CACHE_REMOTE": redis_url,
                                                   "CACHE_SIGNING_KEY": KEY})
    assert redis_server.client().keys("*") == []


def test_a_corrupted_middle_chunk_is_refused_though_verified_as_chunks_arrive(
        tmp_path, redis_url, redis_server, monkeypatch):
    from ember.cache import remote

    monkeypatch.setattr(remote, "CHUNK_SIZE", 256 * 1024)
    big = weights_heavy(tmp_path / "big.onnx", dim=512, layers=4)
    host_compile(tmp_path / "a", big, redis_url)
    client = redis_server.client()
    chunks = sorted(entries_in(redis_server, "chunk"), key=lambda name: int(name.split(":")[-1]))
    assert len(chunks) >= 16
    middle = chunks[len(chunks) // 2]
    data = bytearray(client.get(middle))
    data[100] ^= 0x40
    client.set(middle, bytes(data))
    compiled, problems = host_compile(tmp_path / "b", big, redis_url)
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    assert len(problems) == 1 and "wrong signature" in problems[0]
    background.wait()
    # the refused bytes never reached the directory: only the fresh compile's entry is there
    (entry,) = ember_cache.entries(tmp_path / "b")
    assert verified(tmp_path / "b")
    assert entry.key in chunks[0]


def test_connections_open_without_a_handshake(tmp_path, model, own_redis_server):
    # HELLO, CLIENT SETINFO (a metadata lookup too) and CLIENT MAINT_NOTIFICATIONS cost redis-py
    # up to four round trips per new connection before a remote hit's first GET
    import redis

    from ember.cache.remote import quiet_connection

    url = own_redis_server.url
    host_compile(tmp_path / "a", model, url)
    compiled, problems = host_compile(tmp_path / "b", model, url)
    assert problems == [] and compiled.get_property("LOADED_FROM_CACHE") is True
    server = redis.Redis.from_url(url, **quiet_connection())  # no handshake of its own either
    commands = set(server.info("commandstats"))
    assert commands & {"cmdstat_get", "cmdstat_set"}
    assert not {"cmdstat_hello", "cmdstat_client"} & commands, commands
    # the only error reply: the lock's release script, sent by hash first (EVALSHA)
    assert set(server.info("errorstats")) <= {"errorstat_NOSCRIPT"}


WRITE_BACK_AT_EXIT = """
import sys, warnings
import ember
cache_dir, model, remote = sys.argv[1:4]
with warnings.catch_warnings():
    warnings.simplefilter("error")  # a remote hit with no problem at all
    compiled = ember.Core().compile_model(model, "TEMPLATE", {"CACHE_DIR": cache_dir,
        "CACHE_REMOTE": remote, "CACHE_SIGNING_KEY": "fleet-signing-key"})
assert compiled.get_property("LOADED_FROM_CACHE")
# exits at once: the write-back queued on the background thread must still land
"""


def test_the_write_back_lands_on_disk_before_the_interpreter_exits(tmp_path, redis_url):
    big = weights_heavy(tmp_path / "big.onnx", dim=1024, layers=3)  # a 12.6 MB entry
    host_compile(tmp_path / "a", big, redis_url)
    fresh = tmp_path / "fresh"
    done = subprocess.run([sys.executable, "-c", WRITE_BACK_AT_EXIT, str(fresh), str(big),
                           redis_url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (entry,) = ember_cache.entries(fresh)
    assert verified(fresh)
    assert ember_cache.stats(fresh).remote_hits == 1
    assert entry.size == next((tmp_path / "a" / "blobs").glob("*.blob")).stat().st_size


def test_each_piece_is_handed_over_once_it_has_landed(redis_url, redis_server):
    import os

    import redis

    from ember.cache import redis_bulk
    from ember.cache.remote import quiet_connection

    piece = redis_bulk.PIECE
    data = os.urandom(3 * piece + piece // 2)
    client = redis.Redis.from_url(redis_url, **quiet_connection())
    client.set("first", data[:piece * 5 // 2])
    client.set("second", data[piece * 5 // 2:])
    buffer = memoryview(bytearray(len(data)))
    landed = []

    def on_piece(start, end):  # what the MAC worker is handed: bytes already in place
        landed.append((start, end, bytes(buffer[start:end]) == data[start:end]))

    assert redis_bulk.get_into(client, ["first", "second"], buffer, on_piece) == len(data)
    assert bytes(buffer) == data
    cuts = [0, piece, 2 * piece, piece * 5 // 2, piece * 7 // 2]
    assert landed == [(a, b, True) for a, b in itertools.pairwise(cuts)]
    assert client.get("first") == data[:piece * 5 // 2]  # the connection is still in step
