"""Publishing a file so that readers see all of it or nothing, even if the writer is killed."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

#: Prefix of files being written; a writer killed with SIGKILL leaves one behind, which pruning
#: removes once it is old. Readers never open them.
TEMP_PREFIX = ".tmp-"


def write_atomically(path: Path, *chunks: bytes | memoryview) -> None:
    """Write ``chunks`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    :raises OSError: when the directory is read-only, the disk is full, the file size limit is hit,
        ...; the temporary file is removed and ``path`` is left as it was.
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as temp_file:
            for chunk in chunks:
                temp_file.write(chunk)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_directory(path.parent)


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


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable across a power cut; not possible on every platform.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
