"""Publishing a file so that readers see all of it or nothing, even if the writer is killed.

Used by the model store, the model cache and the plugin index alike: it lies in the store room,
below the cache and the plugin contract, so each of them reaches it without importing the others.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import os
import threading
import time
from collections.abc import Callable

from ember.common.log import get_logger

# Paths are taken as str or os.PathLike and handled with os.path: these functions are on a warm
# start's path, which does not import pathlib.
StrPath = str | os.PathLike[str]

log = get_logger("ember.cache")

#: Prefix of files being written; a writer killed with SIGKILL leaves one behind, which pruning
#: removes once it is old. Readers never open them.
TEMP_PREFIX = ".tmp-"
#: Large buffers are written in pieces of this size: one write() of a whole entry of many MB was
#: an order of magnitude slower than the same bytes in 1 MB writes on ext4 (the kernel copies and
#: dirties a huge range at once); benchmarks/bench_cache.py writes such entries.
_WRITE_PIECE = 1 << 20
#: Background work waits until nothing has been submitted for this long (see Background).
QUIET_SECONDS = 0.5


def write_atomically(path: StrPath, *chunks: bytes | memoryview) -> None:
    """Write ``chunks`` to a temporary file beside ``path`` and rename it over ``path``.

    Readers (and a writer killed with SIGKILL) see the old file or the whole new one, never a
    part: the rename is atomic. Flushing to disk (fsync) then happens on the background worker,
    once the start is over (see :class:`Background`), so that a first start does not wait for
    the disk. The usual fsync-before-rename order only
    matters after a power cut, when it could leave a torn file under the final name; Ember's
    blobs and memo files are checksummed or validated on every read, so such a file is detected
    and replaced, never used. Files still queued at exit are flushed then.

    For a file inside a directory others may write to (a cache, the store), use
    :func:`write_inside`, which follows no link planted there.

    :raises OSError: when the directory is read-only, the disk is full, the file size limit is hit,
        ...; the temporary file is removed and ``path`` is left as it was.
    """
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    write_inside(directory, (), name, *chunks, create_dirs=False)


def write_inside(root: StrPath, parts: tuple[str, ...], name: str,
                 *chunks: bytes | memoryview, create_dirs: bool = True) -> None:
    """:func:`write_atomically` to ``root/parts.../name``, the subdirectories made (0700) when
    missing, none of them nor the file followed when it is a link (see ember.store.confined).

    :raises OSError: PlantedLinkError for a link on the way; else as write_atomically.
    """
    from ember.store import confined

    root = os.fspath(root)
    dir_fd = confined.open_dir(root, parts, create=create_dirs)
    where = os.path.join(root, *parts)
    try:
        fd, temp_name = confined.create_temp(dir_fd, TEMP_PREFIX, where=where)
        try:
            with os.fdopen(fd, "wb", closefd=False) as temp_file:
                for chunk in chunks:
                    view = memoryview(chunk).cast("B")
                    for start in range(0, view.nbytes, _WRITE_PIECE):
                        temp_file.write(view[start:start + _WRITE_PIECE])
            confined.replace_at(dir_fd, temp_name, name, where=where)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                confined.unlink_at(dir_fd, temp_name, where=where)
            raise
    finally:
        os.close(dir_fd)
    background.submit(_flush_and_close, fd)


class Background:
    """One worker thread per process for work a start need not wait for: fsyncing published
    files, remembering file digests, writing back entries fetched from a remote tier.

    The worker begins once nothing has been submitted for :data:`QUIET_SECONDS` (or as soon as
    someone waits for it). A cold start submits work while it compiles and then runs its first
    inference; a Python thread working meanwhile shares the interpreter lock with it, and on a
    busy machine each hand-over of the lock cost the start milliseconds. The thread is started
    without waiting for it to run (``threading.Thread.start`` blocks until it has been scheduled)
    and leaves when it has nothing left to do (the next submit starts another), so an idle
    worker never keeps a process alive; at exit, everything submitted is finished first
    (atexit), so nothing is lost. A forked child does not inherit its parent's work.
    """

    def __init__(self) -> None:
        self._waits_at_exit = False
        self._start_afresh()

    def _start_afresh(self) -> None:
        self._jobs: list[tuple[Callable[..., object], tuple[object, ...]]] = []
        self._lock = threading.Lock()
        self._idle = threading.Event()  # set while no worker runs
        self._idle.set()
        self._wake = threading.Event()  # ends the worker's wait for quiet
        self._running = False
        self._waiters = 0
        self._last_submit = 0.0

    def submit(self, work: Callable[..., object], *args: object, start: bool = True) -> None:
        """Queue ``work(*args)``. ``start=False`` leaves the worker unstarted if none runs: the
        next submit, :meth:`start` or :meth:`wait` (at exit at the latest) starts it. A cold
        start queues so before its compile and starts the worker as the device compiles, when
        the new thread can take the interpreter lock without making the start wait for it."""
        with self._lock:
            self._jobs.append((work, args))
            self._last_submit = time.monotonic()
            if not self._waits_at_exit:
                atexit.register(self.wait)
                self._waits_at_exit = True
        if start:
            self.start()

    def start(self) -> None:
        """Start a worker for the queued work, unless one runs or nothing is queued."""
        with self._lock:
            if self._running or not self._jobs:
                return
            self._running = True
            self._idle.clear()
        try:
            _thread.start_new_thread(self._run, ())
        except RuntimeError:  # no thread to be had (limits, interpreter shutdown): do it here
            self._run(settle=False)

    def _run(self, settle: bool = True) -> None:
        if settle:
            self._wait_for_quiet()
        while True:
            with self._lock:
                if not self._jobs:
                    self._running = False
                    self._idle.set()
                    return
                work, args = self._jobs.pop(0)
            try:
                work(*args)
            except Exception:  # background work reports its own problems; keep serving
                log.exception("background cache work failed")

    def _wait_for_quiet(self) -> None:
        while True:
            with self._lock:
                remaining = self._last_submit + QUIET_SECONDS - time.monotonic()
                if self._waiters or remaining <= 0:
                    return
                self._wake.clear()
            self._wake.wait(remaining)

    def wait(self) -> None:
        """Block until everything submitted so far is done (the worker starts at once)."""
        with self._lock:
            self._waiters += 1
            self._wake.set()
        try:
            self.start()  # work queued without a worker
            self._idle.wait()
        finally:
            with self._lock:
                self._waiters -= 1

    def _forget_after_fork(self) -> None:
        """In a forked child: the parent's worker and work are not this process's (its exit
        hook, if registered, was inherited)."""
        self._start_afresh()


def _flush_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass  # durability is best effort (see write_atomically); correctness does not need it
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


background = Background()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=background._forget_after_fork)


def make_private_dirs(root: StrPath, *subdirectories: str) -> None:
    """Create ``root`` (its parent must exist) and subdirectories of it, readable only by us;
    a subdirectory that is a link is refused, not followed (ember.store.confined).

    A missing parent is an error rather than created: a typo in CACHE_DIR should be reported,
    not silently become a new directory tree.

    :raises OSError: FileNotFoundError for a missing parent, PermissionError, PlantedLinkError...
    """
    from ember.store import confined

    root = os.fspath(root)
    for subdirectory in subdirectories or [""]:
        relative = os.path.relpath(os.path.join(root, subdirectory), root)
        parts = () if relative == "." else tuple(relative.split(os.sep))
        os.close(confined.open_dir(root, parts, create=True))
