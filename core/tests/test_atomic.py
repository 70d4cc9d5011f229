"""ember.store.atomic: files published whole, in pieces the disk takes quickly."""

from __future__ import annotations

import os

import numpy as np

from ember.store import atomic
from ember.store.atomic import TEMP_PREFIX, background, write_atomically


def test_large_chunks_of_any_buffer_type_are_written_whole_and_in_order(tmp_path):
    piece = atomic._WRITE_PIECE
    head = b"header"
    big = os.urandom(2 * piece + 12345)  # three pieces, the last a partial one
    floats = np.arange(piece // 4 + 3, dtype=np.float32)  # a buffer of another item type
    tail = bytearray(b"tag" * 11)
    target = tmp_path / "entry.blob"
    write_atomically(target, head, memoryview(big), memoryview(floats), tail)
    background.wait()  # the fsync
    assert target.read_bytes() == head + big + floats.tobytes() + bytes(tail)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_an_empty_file_is_published_too(tmp_path):
    write_atomically(tmp_path / "empty", b"", memoryview(b""))
    assert (tmp_path / "empty").read_bytes() == b""


def test_background_work_runs_in_order_and_wait_returns_when_all_is_done():
    done = []

    def job(number):
        if number == 2:
            background.submit(job, 9)  # work submitted by work (a remote entry's write-back)
        if number == 3:
            raise ValueError("a failing job is logged; the next ones still run")
        done.append(number)

    for number in range(5):
        background.submit(job, number)
    background.wait()
    assert done == [0, 1, 2, 4, 9]
    background.submit(done.append, "again")  # the worker left when idle: another is started
    background.wait()
    assert done[-1] == "again"


def test_a_forked_child_does_not_inherit_its_parents_background_work():
    import threading

    release = threading.Event()
    background.submit(release.wait)  # the parent's worker is busy until released
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            import signal

            signal.alarm(10)  # a child that would wait forever dies, and the test fails
            background.wait()  # the parent's work is not ours to wait for
            ran = []
            background.submit(ran.append, 1)
            background.wait()
            os.write(write_end, b"ok" if ran == [1] else b"lost")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        assert os.read(read_end, 16) == b"ok"
    finally:
        release.set()
        os.waitpid(child, 0)
        os.close(read_end)
        background.wait()


def test_background_work_waits_for_a_quiet_moment_unless_someone_waits_for_it(monkeypatch):
    import time

    monkeypatch.setattr(atomic, "QUIET_SECONDS", 0.3)
    ran = []
    background.submit(lambda: ran.append(time.monotonic()))
    time.sleep(0.15)
    assert ran == []  # a start is still submitting: the worker keeps out of its way
    last = time.monotonic()
    background.submit(lambda: ran.append(time.monotonic()))
    assert background._idle.wait(5)  # as an observer, without hurrying it
    assert len(ran) == 2 and ran[0] >= last + 0.3 - 0.01
    monkeypatch.setattr(atomic, "QUIET_SECONDS", 60.0)
    started = time.monotonic()
    background.submit(ran.append, "now")
    background.wait()  # at exit, or a test that reads what was written: at once
    assert ran[-1] == "now" and time.monotonic() - started < 30


def test_work_queued_without_a_worker_runs_when_one_is_started_or_waited_for(monkeypatch):
    import time

    background.wait()  # no worker left from earlier work in this process
    monkeypatch.setattr(atomic, "QUIET_SECONDS", 0.0)
    ran = []
    background.submit(ran.append, 1, start=False)
    time.sleep(0.2)
    assert ran == []  # no worker: nothing ran
    background.start()
    assert background._idle.wait(5) and ran == [1]
    background.submit(ran.append, 2, start=False)
    background.wait()  # at exit at the latest
    assert ran == [1, 2]
