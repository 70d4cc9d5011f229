"""Publishing a file so that readers see all of it or nothing, even if the writer is killed."""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import tempfile
import threading
from pathlib import Path

#: Prefix of files being written; a writer killed with SIGKILL leaves one behind, which pruning
#: removes once it is old. Readers never open them.
TEMP_PREFIX = ".tmp-"


def write_atomically(path: Path, *chunks: bytes | memoryview) -> None:
    """Write ``chunks`` to a temporary file beside ``path`` and rename it over ``path``.

    Readers (and a writer killed with SIGKILL) see the old file or the whole new one, never a
    part: the rename is atomic. Flushing to disk (fsync) then happens on a background thread, so
    that a first start does not wait for the disk. The usual fsync-before-rename order only
    matters after a power cut, when it could leave a torn file under the final name; Ember's
    blobs and memo files are checksummed or validated on every read, so such a file is detected
    and replaced, never used. Files still queued at exit are flushed then.

    :raises OSError: when the directory is read-only, the disk is full, the file size limit is hit,
        ...; the temporary file is removed and ``path`` is left as it was.
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb", closefd=False) as temp_file:
            for chunk in chunks:
                temp_file.write(chunk)
        os.replace(temp_name, path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _flusher.submit(fd)


class _Flusher:
    """One background thread per process that fsyncs and closes published files in turn.

    It is a daemon, so that an idle flusher never keeps a process alive; at exit the files still
    queued are flushed before the interpreter goes (atexit).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, fd: int) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ember-fsync",
                                                daemon=True)
                self._thread.start()
                atexit.register(self.drain)
        self._queue.put(fd)

    def _run(self) -> None:
        while True:
            _flush_and_close(self._queue.get())

    def drain(self) -> None:
        while True:
            try:
                fd = self._queue.get_nowait()
            except queue.Empty:
                return
            _flush_and_close(fd)


def _flush_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass  # durability is best effort (see write_atomically); correctness does not need it
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


_flusher = _Flusher()


def make_private_dirs(root: Path, *subdirectories: Path) -> None:
    """Create ``root`` (its parent must exist) and subdirectories of it, readable only by us.

    A missing parent is an error rather than created: a typo in CACHE_DIR should be reported,
    not silently become a new directory tree.

    :raises OSError: FileNotFoundError for a missing parent, PermissionError, OSError(EROFS)...
    """
    for directory in (root, *subdirectories):
        if not directory.is_dir():
            with contextlib.suppress(FileExistsError):  # another process made it just now
                directory.mkdir(mode=0o700)
