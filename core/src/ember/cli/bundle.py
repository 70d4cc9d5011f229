"""Shipping a warm model cache to another machine as one file: a tar of ``<key>.blob`` files.

A bundle holds nothing else: no directories, no links, no paths. On import every member's name
must be ``<64 hex digits>.blob``, and every blob must pass ``ember.blob.unpack`` (both checksums)
with the key in its header equal to its file name, before any of them is placed: a bundle is
imported whole or not at all. Each blob is written to a temporary file in ``blobs/`` and renamed
over its final name, so a reader of the cache never sees a partial entry. Nothing is extracted
by tarfile, unpickled or evaluated.
"""

from __future__ import annotations

import contextlib
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ember import blob
from ember.cache import ModelCache
from ember.cache.atomic import TEMP_PREFIX, make_private_dirs
from ember.errors import BlobFormatError, EmberError

MEMBER_NAME = re.compile(r"[0-9a-f]{64}\.blob")
_COMPRESSED_SUFFIXES = (".tar.gz", ".tgz")


class BundleError(EmberError, ValueError):
    """A file that is not a cache bundle, or a bundle holding something other than intact blobs."""


@dataclass
class ImportReport:
    added: list[blob.BlobHeader] = field(default_factory=list)
    present: list[blob.BlobHeader] = field(default_factory=list)


def _intact(path: Path) -> bytes | None:
    """The bytes of an intact entry whose header key matches its file name, else None."""
    try:
        data = path.read_bytes()
        header, _ = blob.unpack(data)
    except (OSError, BlobFormatError):
        return None
    return data if header.key == path.name.removesuffix(".blob") else None


def export_bundle(cache_dir: Path, target: Path) -> tuple[int, int, list[str]]:
    """Write every intact entry of ``cache_dir`` into the tar file ``target`` (gzip-compressed
    when it ends in ``.tar.gz`` or ``.tgz``), atomically. Returns (entries, bytes, skipped)."""
    cache = ModelCache(cache_dir)
    names = sorted(p.name for p in cache.blobs.iterdir()) if cache.blobs.is_dir() else []
    blobs = [cache.blobs / name for name in names if MEMBER_NAME.fullmatch(name)]
    if not blobs:
        raise BundleError(f"the cache {cache.root} has no entries to export")
    mode = "w:gz" if target.name.endswith(_COMPRESSED_SUFFIXES) else "w"
    target = target.expanduser().absolute()
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX, suffix=".tar")
    count, total, skipped = 0, 0, []
    try:
        with os.fdopen(fd, "wb") as stream, tarfile.open(fileobj=stream, mode=mode) as tar:
            for path in blobs:
                data = _intact(path)
                if data is None:
                    skipped.append(path.name)
                    continue
                info = tarfile.TarInfo(path.name)
                info.size, info.mode, info.mtime = len(data), 0o600, int(path.stat().st_mtime)
                tar.addfile(info, _Reader(data))
                count, total = count + 1, total + len(data)
        if not count:
            raise BundleError(f"every entry of the cache {cache.root} is damaged; nothing exported")
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    return count, total, skipped


class _Reader:
    """A minimal file object over bytes for ``TarFile.addfile``."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._offset + size
        chunk = bytes(self._view[self._offset:end])
        self._offset += len(chunk)
        return chunk


def import_bundle(cache_dir: Path, source: Path) -> ImportReport:
    """Check every member of the bundle ``source``, then place the blobs into ``cache_dir``.

    :raises BundleError: for anything but a tar of intact ``<key>.blob`` files; nothing is
        placed then.
    """
    try:
        with tarfile.open(source, "r:*") as tar:
            return _import_members(cache_dir, source, tar)
    except (tarfile.TarError, EOFError) as error:
        raise BundleError(f"{source} is not a readable cache bundle (a tar of <key>.blob "
                          f"files): {error}") from error


def _import_members(cache_dir: Path, source: Path, tar: tarfile.TarFile) -> ImportReport:
    members = tar.getmembers()
    _check_members(source, members)
    cache = ModelCache(cache_dir)
    make_private_dirs(cache.root, cache.blobs)
    report, staged = ImportReport(), []
    try:
        for member in members:
            data = _member_blob(source, tar, member)
            header = blob.read_header(data)[0]
            final = cache.blobs / member.name
            if _intact(final) is not None:
                report.present.append(header)
                continue
            staged.append((_stage(cache.blobs, data), final))
            report.added.append(header)
        for temp, final in staged:
            os.replace(temp, final)
        staged.clear()
    finally:
        for temp, _final in staged:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    return report


def _check_members(source: Path, members: list[tarfile.TarInfo]) -> None:
    if not members:
        raise BundleError(f"refusing {source}: it holds no blob")
    seen = set()
    for member in members:
        if not MEMBER_NAME.fullmatch(member.name):
            raise BundleError(f"refusing {source}: member {member.name!r} is not named "
                              "<64 hex digits>.blob (a bundle holds cache blobs only, no paths)")
        if not member.isreg():
            raise BundleError(f"refusing {source}: member {member.name!r} is not a regular file")
        if member.name in seen:
            raise BundleError(f"refusing {source}: member {member.name!r} appears twice")
        seen.add(member.name)


def _member_blob(source: Path, tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    stream = tar.extractfile(member)
    if stream is None:  # pragma: no cover - isreg() was checked
        raise BundleError(f"refusing {source}: cannot read member {member.name!r}")
    data = stream.read()
    try:
        header, _ = blob.unpack(data)
    except BlobFormatError as error:
        raise BundleError(f"refusing {source}: {member.name} is not an intact Ember blob "
                          f"({error}); nothing was imported") from error
    if header.key != member.name.removesuffix(".blob"):
        raise BundleError(f"refusing {source}: {member.name} holds the entry of key "
                          f"{header.key[:16] or '(none)'}..., not its file name; "
                          "nothing was imported")
    return data


def _stage(directory: Path, data: bytes) -> str:
    """Write ``data`` to a flushed temporary file in ``directory`` and return its name."""
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    return temp_name
