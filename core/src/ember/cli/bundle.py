"""Shipping a warm model cache to another machine as one file: a tar of ``<key>.blob`` files.

A bundle holds nothing else: no directories, no links, no paths. Every byte of it is untrusted.
On import every member must be a regular, non-sparse file named ``<64 hex digits>.blob``, at most
``max_size`` bytes in all (the ``--max-size`` option), and each is streamed (never read whole)
into a temporary file in ``blobs/`` while it is checked: its header first (at most
``blob.MAX_HEADER_SIZE``), which fixes the member's exact size, then the payload against the
header's checksum, and, with a signing key, the whole entry against its keyed MAC
(ember.store.signing) for the key its name gives. Only when every member passed are they renamed
into place: a bundle is imported whole or not at all. Nothing is extracted by tarfile, unpickled or
evaluated.

tarfile itself only ever reads through :class:`_CappedStream`: the bundle is decompressed here
(gzip, bzip2, xz or none), no single read may ask for more than a member's piece or a blob
header (so a GNU long-name or pax header claiming a terabyte is refused before anything is
allocated for it), and the bytes decompressed in all are bounded by ``max_size`` plus the tar
headers' share. The staged files are created, and renamed into place, relative to a descriptor
of ``blobs/`` opened without following links (ember.store.confined).

With a signing key, export writes only entries that verify under it (each member then carries its
own tag: a bundle of signed entries is a signed bundle), and import refuses a bundle with an
unsigned or wrongly signed member unless told to trust it (``trust_unsigned``; those entries are
then signed with this key, as the user vouched for them).
"""

from __future__ import annotations

import contextlib
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ember.cache import ModelCache
from ember.common import checksum
from ember.errors import BlobFormatError, EmberError
from ember.store import blob, confined
from ember.store.atomic import TEMP_PREFIX

if TYPE_CHECKING:
    import io

    from ember.store.signing import Signer

MEMBER_NAME = re.compile(r"[0-9a-f]{64}\.blob")
_COMPRESSED_SUFFIXES = (".tar.gz", ".tgz")
#: Default of ``--max-size``: the bytes a bundle may unpack to in all.
DEFAULT_MAX_SIZE = 16 << 30
#: Members beyond this many are refused (a tar of millions of empty members is not a cache).
MAX_MEMBERS = 100_000
_STREAM_CHUNK = 1 << 20
#: The largest single read tarfile may make: a member's piece, or a blob's header and checksum.
#: Extended headers (pax, GNU long names) longer than this are refused unread.
MAX_READ = blob.MAX_HEADER_SIZE + _STREAM_CHUNK
#: Tar's own bytes per member (its header, padding) counted towards the bound on what a bundle
#: may decompress to, beyond its members' bytes (and the end-of-archive record).
_TAR_OVERHEAD = 2 << 10


class BundleError(EmberError, ValueError):
    """A file that is not a cache bundle, or a bundle holding something other than intact blobs."""


@dataclass
class ImportReport:
    added: list[blob.BlobHeader] = field(default_factory=list)
    present: list[blob.BlobHeader] = field(default_factory=list)


def _intact(path: Path, signer: Signer | None = None) -> bytes | None:
    """The bytes of an intact entry whose header key matches its file name (and, given a
    ``signer``, whose MAC verifies), else None."""
    from ember.store.signing import open_blob

    try:
        with open(confined.open_file(str(path.parent.parent), (path.parent.name,), path.name,
                                     os.O_RDONLY), "rb") as entry:
            data = entry.read()
        open_blob(data, path.name.removesuffix(".blob"), signer)
    except (OSError, BlobFormatError):
        return None
    return data


def export_bundle(cache_dir: Path, target: Path, signer: Signer | None = None
                  ) -> tuple[int, int, list[str]]:
    """Write every intact entry of ``cache_dir`` (every entry signed with ``signer``'s key,
    given one) into the tar file ``target`` (gzip-compressed when it ends in ``.tar.gz`` or
    ``.tgz``), atomically. Returns (entries, bytes, skipped)."""
    cache = ModelCache(cache_dir)
    if confined.is_link(str(cache.root), "blobs"):
        raise BundleError(f"{cache.blobs} is a symbolic link: not exporting what it points to")
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
                data = _intact(path, signer)
                if data is None:
                    skipped.append(path.name)
                    continue
                info = tarfile.TarInfo(path.name)
                info.size, info.mode, info.mtime = len(data), 0o600, int(path.stat().st_mtime)
                tar.addfile(info, _Reader(data))
                count, total = count + 1, total + len(data)
        if not count:
            raise BundleError(f"every entry of the cache {cache.root} is damaged"
                              f"{' or unsigned' if signer else ''}; nothing exported")
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


def import_bundle(cache_dir: Path, source: Path, *, signer: Signer | None = None,
                  trust_unsigned: bool = False,
                  max_size: int = DEFAULT_MAX_SIZE) -> ImportReport:
    """Check every member of the bundle ``source``, then place the blobs into ``cache_dir``.

    :param signer: with a signing key, every member must verify under it, unless
        ``trust_unsigned`` (such members are then signed with it).
    :param max_size: the bytes the members may hold in all.
    :raises BundleError: for anything but a tar of intact (signed) ``<key>.blob`` files within
        the limits; nothing is placed then.
    """
    cache = ModelCache(cache_dir)
    staged: list[tuple[str, str]] = []
    report = ImportReport()
    blobs_fd = -1
    try:
        blobs_fd = confined.open_dir(str(cache.root), ("blobs",), create=True)
        with _CappedStream.open(source, max_size) as stream, \
                tarfile.open(fileobj=stream, mode="r:") as tar:
            _Importer(source, cache, signer, trust_unsigned, max_size, staged, report,
                      blobs_fd).run(tar)
        for temp, final in staged:
            confined.replace_at(blobs_fd, temp, final, where=str(cache.blobs))
        staged.clear()
    except _TooLarge as error:
        raise BundleError(f"refusing {source}: {error}; nothing was imported") from None
    except (tarfile.TarError, EOFError, OSError, UnicodeError, ValueError) as error:
        if isinstance(error, BundleError):
            raise
        raise BundleError(f"{source} is not a readable cache bundle (a tar of <key>.blob "
                          f"files): {error}") from error
    finally:
        for temp, _final in staged:
            with contextlib.suppress(OSError):
                confined.unlink_at(blobs_fd, temp, where=str(cache.blobs))
        if blobs_fd >= 0:
            os.close(blobs_fd)
    return report


class _TooLarge(Exception):
    """A read tarfile asked for, or a total, beyond the bounds (see _CappedStream)."""


class _CappedStream:
    """The decompressed bytes of a bundle for tarfile, read in bounded pieces.

    A single ``read`` larger than MAX_READ (tarfile reads a pax or GNU long-name header whole,
    with the size the header claims) and a total beyond ``max_size`` plus tar's overhead per
    member raise :class:`_TooLarge` instead of allocating. Seeking forward reads and drops.
    """

    def __init__(self, raw: io.BufferedIOBase, max_size: int) -> None:
        self._raw = raw
        self._limit = max_size + _TAR_OVERHEAD * (MAX_MEMBERS + 2)
        self._position = 0

    @classmethod
    @contextlib.contextmanager
    def open(cls, source: Path, max_size: int):  # type: ignore[no-untyped-def]
        """The decompressing reader of ``source`` (by its first bytes), capped."""
        with open(source, "rb") as file:
            magic = file.read(6)
            file.seek(0)
            if magic.startswith(b"\x1f\x8b"):
                import gzip

                raw: io.BufferedIOBase = gzip.GzipFile(fileobj=file, mode="rb")
            elif magic.startswith(b"BZh"):
                import bz2

                raw = bz2.BZ2File(file, "rb")
            elif magic.startswith(b"\xfd7zXZ"):
                import lzma

                raw = lzma.LZMAFile(file, "rb")  # noqa: SIM115 (closed by the with below)
            else:
                raw = file
            with raw:
                yield cls(raw, max_size)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_READ:
            raise _TooLarge(f"it holds a tar header or extended header of {size} bytes or more "
                            f"(at most {MAX_READ} is read)")
        self._take(size)
        data = self._raw.read(size)
        self._position += len(data)
        return data

    def _take(self, size: int) -> None:
        if self._position + size > self._limit:
            raise _TooLarge(f"it decompresses to more than {self._limit} bytes (--max-size)")

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self._position + offset
        if whence not in (0, 1) or target < self._position:
            if target == self._position:
                return target
            raise OSError("a bundle is read forwards only")
        while self._position < target:
            if not self.read(min(target - self._position, _STREAM_CHUNK)):
                break
        return self._position


@dataclass
class _Importer:
    source: Path
    cache: ModelCache
    signer: Signer | None
    trust_unsigned: bool
    max_size: int
    staged: list[tuple[str, str]]
    report: ImportReport
    blobs_fd: int

    def refuse(self, reason: str) -> BundleError:
        return BundleError(f"refusing {self.source}: {reason}; nothing was imported")

    def run(self, tar: tarfile.TarFile) -> None:
        seen: set[str] = set()
        total = 0
        for count, member in enumerate(tar, 1):
            if count > MAX_MEMBERS:
                raise self.refuse(f"it holds more than {MAX_MEMBERS} members")
            self.check_member(member, seen)
            total += member.size
            if total > self.max_size:
                raise self.refuse(f"its members hold more than {self.max_size} bytes "
                                  "(--max-size)")
            stream = tar.extractfile(member)
            if stream is None:  # pragma: no cover - isreg() was checked
                raise self.refuse(f"cannot read member {member.name!r}")
            self.stage(member, stream)
        if not seen:
            raise self.refuse("it holds no blob")

    def check_member(self, member: tarfile.TarInfo, seen: set[str]) -> None:
        if not MEMBER_NAME.fullmatch(member.name):
            raise self.refuse(f"member {member.name[:80]!r} is not named <64 hex digits>.blob "
                              "(a bundle holds cache blobs only, no paths)")
        if not member.isreg():
            raise self.refuse(f"member {member.name!r} is not a regular file")
        if member.issparse():
            raise self.refuse(f"member {member.name!r} is a sparse file")
        if member.name in seen:
            raise self.refuse(f"member {member.name!r} appears twice")
        seen.add(member.name)

    def stage(self, member: tarfile.TarInfo, stream: IO[bytes]) -> None:
        """Stream one member into a temporary file, checking it on the way."""
        key = member.name.removesuffix(".blob")
        head, header = self.read_header(member, stream)
        signed = blob.is_signed(head)
        expected = len(head) + header.payload_length + (blob.TAG_SIZE if signed else 0)
        if member.size != expected:
            raise self.refuse(f"{member.name} is {member.size} bytes; its header says {expected}")
        if header.key != key:
            raise self.refuse(f"{member.name} holds the entry of key "
                              f"{header.key[:16] or '(none)'}..., not its file name")
        where = str(self.cache.blobs)
        if self.present(member.name):
            self.report.present.append(header)
            return
        mac = self.signer.hasher(key, expected - blob.TAG_SIZE) if self.signer else None
        payload_hash = checksum.hasher(header.payload_length)
        fd, temp_name = confined.create_temp(self.blobs_fd, TEMP_PREFIX, where=where)
        self.staged.append((temp_name, member.name))
        with os.fdopen(fd, "wb") as out:
            out.write(head)
            if mac is not None:
                mac.update(head)
            left = header.payload_length
            while left:
                chunk = stream.read(min(left, _STREAM_CHUNK))
                if not chunk:
                    raise self.refuse(f"{member.name} is truncated")
                left -= len(chunk)
                payload_hash.update(chunk)
                if mac is not None:
                    mac.update(chunk)
                out.write(chunk)
            if payload_hash.hexdigest() != header.payload_checksum:
                raise self.refuse(f"{member.name} is not an intact Ember blob (payload "
                                  "checksum mismatch)")
            tag = stream.read(blob.TAG_SIZE) if signed else None
            if tag is not None:
                out.write(tag)
        if self.signer is not None and mac is not None and not (
                tag is not None and self.signer.equal(mac.digest(), tag)):
            problem = ("is not signed" if tag is None else
                       "has a signature that does not verify with this key (another key's, or "
                       "forged)")
            if not self.trust_unsigned:
                raise self.refuse(f"{member.name} {problem}, and a signing key is set "
                                  "(--trust-unsigned imports it anyway, signed with this key)")
            self.sign_staged(temp_name, key, header)
        staged_fd = confined.open_at(self.blobs_fd, temp_name, os.O_RDWR, where=where)
        try:
            os.fsync(staged_fd)
        finally:
            os.close(staged_fd)
        self.report.added.append(header)

    def present(self, name: str) -> bool:
        """Whether ``blobs/<name>`` is already an intact entry (signed, with a signer)."""
        from ember.store.signing import open_blob

        try:
            fd = confined.open_at(self.blobs_fd, name, os.O_RDONLY)
        except OSError:
            return False
        with open(fd, "rb") as existing:
            try:
                open_blob(existing.read(), name.removesuffix(".blob"), self.signer)
            except (OSError, BlobFormatError):
                return False
        return True

    def sign_staged(self, name: str, key: str, header: blob.BlobHeader) -> None:
        """Sign a staged entry the user vouched for (``trust_unsigned``) with this key."""
        assert self.signer is not None
        with open(confined.open_at(self.blobs_fd, name, os.O_RDWR), "r+b") as staged:
            data = staged.read()
            end = len(data) - (blob.TAG_SIZE if blob.is_signed(data) else 0)
            payload = memoryview(data)[end - header.payload_length:end]
            chunks = ModelCache.encode(_Key(key, header.key_parts), _fields(header), payload,
                                       self.signer)
            staged.seek(0)
            staged.truncate()
            for chunk in chunks:
                staged.write(chunk)

    def read_header(self, member: tarfile.TarInfo,
                    stream: IO[bytes]) -> tuple[bytes, blob.BlobHeader]:
        """The member's bytes up to its payload, and its checked header."""
        prefix = stream.read(16)
        try:
            size = blob.header_size(prefix)
            head = prefix + stream.read(size + checksum.DIGEST_SIZE)
            header, offset = blob.read_header(head)
        except BlobFormatError as error:
            raise self.refuse(f"{member.name} is not an intact Ember blob ({error})") from error
        return head[:offset], header


@dataclass(frozen=True)
class _Key:
    """A cache key as ModelCache.encode reads it."""

    digest: str
    parts: dict


def _fields(header: blob.BlobHeader) -> dict:
    fields = header._asdict()
    for name in ("payload_length", "payload_checksum", "key", "key_parts"):
        fields.pop(name)
    fields["flags"] = list(header.flags)
    return fields
