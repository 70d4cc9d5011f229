"""Where onnxruntime saves the optimised graph of a compile, and reading those bytes back.

onnxruntime's Python API saves an optimised graph only to a file path
(``SessionOptions.optimized_model_filepath``). On Linux that path is an anonymous memory file
(``memfd_create``) named through ``/proc/self/fd``: the bytes never touch a disk, and no
directory is made, listed or removed, nor is ``tempfile`` (with ``shutil`` and its compression
modules) imported on a cold start. Where there is no memfd (another OS, a sandbox that forbids
it, no ``/proc``), a private temporary directory holds the file instead. Either is private to
this process (an unnamed file, or a directory of mode 0700) and gone when the compile is done.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def graph_file() -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Yield ``(path, read)``: a path for onnxruntime to write the graph to, and a function
    returning what was written there. Both are valid only inside the ``with`` block."""
    fd = _memory_file()
    if fd is None:
        import tempfile  # here: only where there is no memfd

        with tempfile.TemporaryDirectory(prefix="ember-cpu-") as work:
            path = os.path.join(work, "optimised.ort")
            yield path, lambda: _read_path(path)
        return
    try:
        yield f"/proc/self/fd/{fd}", lambda: _read_fd(fd)
    finally:
        os.close(fd)


def _memory_file() -> int | None:
    """An anonymous memory file that onnxruntime can open by name, or None."""
    create = getattr(os, "memfd_create", None)
    if create is None:
        return None
    try:
        fd: int = create("ember-cpu-optimised", os.MFD_CLOEXEC)
    except OSError:  # a kernel or sandbox without it
        return None
    if not os.path.exists(f"/proc/self/fd/{fd}"):  # no /proc: onnxruntime could not open it
        os.close(fd)
        return None
    return fd


def _read_fd(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0)
    while len(data) < size:  # pread may return less than asked for
        more = os.pread(fd, size - len(data), len(data))
        if not more:
            break
        data += more
    return data


def _read_path(path: str) -> bytes:
    with open(path, "rb") as saved:
        return saved.read()
