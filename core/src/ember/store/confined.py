"""Files inside a directory Ember owns, reached without following a link planted in it.

A cache directory (and the model store) may be shared: whoever can write to it can replace
``blobs/`` with a symbolic link to a directory of theirs, or ``events.log`` with a link to a file
of the user's, and every later write would land there. So every file Ember creates, appends to,
renames, locks or reads under such a directory is opened here, relative to a descriptor of the
directory (``dir_fd``), one component at a time with ``O_NOFOLLOW``: a subdirectory or file that
is a link is refused (``PlantedLinkError``, an ``OSError``, so callers that treat the directory
as best effort go on), with one warning per process naming it, and nothing outside is touched.

The root itself (``CACHE_DIR``, the store directory) may be a link: the user chose it.
Platforms without ``dir_fd`` (Windows) check each component with ``lstat`` instead.
"""

from __future__ import annotations

import _thread  # threading's Lock, without importing threading (~1 ms of a warm start)
import contextlib
import os
import stat
import time
from collections.abc import Iterator, Sequence

from ember.errors import PlantedLinkError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
#: Whether descriptors of directories can anchor opens here (POSIX); else lstat checks.
WITH_DIR_FD = bool(_NOFOLLOW and _DIRECTORY) and os.open in os.supports_dir_fd
_DIR_FLAGS = os.O_RDONLY | _DIRECTORY | _CLOEXEC
_LOCK_POLL = 0.05

_warned: set[str] = set()
_warned_lock = _thread.allocate_lock()


def _refuse(path: str) -> PlantedLinkError:
    """The error for a link found at ``path``, warned about once per process."""
    message = (f"{path} is a symbolic link (or not a plain directory or file) inside a directory "
               "Ember writes to; Ember does not follow it and leaves it alone: remove it")
    with _warned_lock:
        first = path not in _warned
        _warned.add(path)
    if first:
        import warnings

        from ember.common.log import get_logger
        from ember.errors import CacheWarning

        get_logger("ember.cache").warning("%s", message)
        warnings.warn(message, CacheWarning, stacklevel=4)
    return PlantedLinkError(message)


def _is_link_at(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def open_dir(root: str, parts: Sequence[str] = (), *, create: bool = False) -> int:
    """A descriptor of ``root/parts[0]/parts[1]/...``; the caller closes it.

    Each part must be a directory, not a link to one. With ``create``, missing directories are
    made (mode 0700), ``root`` included (its parent must exist: a typo in CACHE_DIR is reported,
    not made into a tree).

    :raises PlantedLinkError: for a part that is a link (warned once); OSError otherwise.
    """
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        if not create:
            raise
        with contextlib.suppress(FileExistsError):  # another process made it just now
            os.mkdir(root, 0o700)
        fd = os.open(root, _DIR_FLAGS)
    path = root
    for part in parts:  # each step closes the descriptor it descends from, even when it fails
        path = os.path.join(path, part)
        fd = _open_subdir(fd, part, path, create)
    return fd


def _open_subdir(parent: int, part: str, path: str, create: bool) -> int:
    """Descend from ``parent`` (closed here) into its subdirectory ``part``."""
    try:
        if not WITH_DIR_FD:
            if os.path.islink(path):
                raise _refuse(path)
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path, 0o700)
            return os.open(path, _DIR_FLAGS)
        try:
            return os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=parent)
            return os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=parent)
        except OSError:
            if _is_link_at(part, parent):
                raise _refuse(path) from None
            raise
    finally:
        os.close(parent)


def open_file(root: str, parts: Sequence[str], name: str, flags: int, mode: int = 0o600, *,
              create_dirs: bool = False) -> int:
    """A descriptor of the file ``root/parts.../name`` opened with ``flags``, never through a
    link; only a regular file is accepted (a planted FIFO or device would block or lie).

    :raises PlantedLinkError: for a link on the way or a file that is not regular.
    """
    dir_fd = open_dir(root, parts, create=create_dirs)
    try:
        return open_at(dir_fd, name, flags, mode, where=os.path.join(root, *parts))
    finally:
        os.close(dir_fd)


def open_at(dir_fd: int, name: str, flags: int, mode: int = 0o600, *, where: str = "") -> int:
    """:func:`open_file` for a directory already opened with :func:`open_dir`."""
    path = os.path.join(where, name)
    if WITH_DIR_FD:
        try:
            fd = os.open(name, flags | _NOFOLLOW | _CLOEXEC | _NONBLOCK, mode, dir_fd=dir_fd)
        except OSError:
            if _is_link_at(name, dir_fd):
                raise _refuse(path) from None
            raise
    else:
        if os.path.islink(path):
            raise _refuse(path)
        fd = os.open(path, flags | _CLOEXEC, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _refuse(path)
    if _NONBLOCK:
        os.set_blocking(fd, True)
    return fd


def create_temp(dir_fd: int, prefix: str, *, where: str = "") -> tuple[int, str]:
    """A new private file in the directory of ``dir_fd``: its descriptor and name."""
    for _attempt in range(100):
        name = prefix + os.urandom(8).hex()
        try:
            return open_at(dir_fd, name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600,
                           where=where), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {where}")


def replace_at(dir_fd: int, source: str, target: str, *, where: str = "") -> None:
    """Rename ``source`` over ``target``, both in the directory of ``dir_fd``."""
    if WITH_DIR_FD:
        os.replace(source, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    else:
        os.replace(os.path.join(where, source), os.path.join(where, target))


def unlink_at(dir_fd: int, name: str, *, where: str = "") -> None:
    if WITH_DIR_FD:
        os.unlink(name, dir_fd=dir_fd)
    else:
        os.unlink(os.path.join(where, name))


@contextlib.contextmanager
def file_lock(root: str, parts: Sequence[str], name: str, timeout: float) -> Iterator[bool]:
    """Hold an OS lock on ``root/parts.../name`` (made if missing); yields False when not
    acquired within ``timeout``. The kernel releases it when its holder dies.

    The same ``flock`` lock the filelock library takes on POSIX (so processes of older Embers
    still exclude each other), on a file opened here, never through a link; Windows uses filelock.

    :raises OSError: (PlantedLinkError among them) when the lock file cannot be opened.
    """
    if not WITH_DIR_FD:
        import filelock

        if any(os.path.islink(os.path.join(root, *parts[:i + 1])) for i in range(len(parts))):
            raise _refuse(os.path.join(root, *parts))
        os.close(open_dir(root, parts, create=True))
        lock = filelock.FileLock(os.path.join(root, *parts, name))
        try:
            lock.acquire(timeout=max(timeout, 0))
        except filelock.Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()
        return
    import fcntl

    fd = open_file(root, parts, name, os.O_RDWR | os.O_CREAT, 0o600, create_dirs=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(min(_LOCK_POLL, max(deadline - time.monotonic(), 0)))
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_link(root: str, *parts: str) -> bool:
    """Whether ``root/parts...`` is a link (for listings, which then skip it with a warning)."""
    path = os.path.join(root, *parts)
    if os.path.islink(path):
        _refuse(path)
        return True
    return False
