"""What a process keeps at module level stays bounded: a long-running program that compiles many
models, or talks to a remote tier that goes down and up, does not grow it for ever."""

import gc
import threading
import time

from ember.cache import local as store
from ember.cache import remote
from ember.cache.local import ModelCache


def test_a_keys_thread_lock_lives_only_while_someone_holds_or_waits_for_it(tmp_path):
    cache = ModelCache(tmp_path)
    held_by_other = threading.Event()
    release = threading.Event()

    def hold(key):
        with cache.lock(key, timeout=5) as locked:
            assert locked
            held_by_other.set()
            release.wait(5)

    holder = threading.Thread(target=hold, args=("k0",))
    holder.start()
    assert held_by_other.wait(5)
    # while held, another thread of the same directory (another ModelCache, as another Core
    # makes) waits on the same lock: not acquired within the timeout
    with ModelCache(tmp_path).lock("k0", timeout=0.05) as locked:
        assert locked is False
    release.set()
    holder.join(5)
    for index in range(200):  # one compile per key, as a long-running server does
        with cache.lock(f"k{index}", timeout=5) as locked:
            assert locked
    gc.collect()
    assert len(store._thread_locks) == 0


def test_the_remote_breaker_forgets_a_server_once_its_time_is_up():
    settings = remote.RemoteSettings.parse("redis://127.0.0.1:1/0?unsigned=1", None)
    tier = remote.RemoteTier(settings)
    message = tier._failed("reading", ConnectionRefusedError("refused"))
    assert "using the local cache only" in message
    assert not tier.available() and not remote.RemoteTier(settings).available()  # per process
    with remote._down_lock:
        remote._down_until[settings.url] = time.monotonic() - 1
    assert tier.available()
    assert settings.url not in remote._down_until
