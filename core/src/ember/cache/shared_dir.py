"""Reading entries from a cache directory others may write to: what a file claims against what it
holds, and whether the directory itself can be trusted unsigned.

A blob's header says how long its payload is; the file's size says what can be there (checked in
``ember.store.blob.read_file``). A sparse file (one with holes) holds less on disk than its size:
reading it whole would allocate memory for bytes nobody wrote, so it is first verified here in
bounded pieces. And an unsigned cache in a directory others can write is as trustworthy as they are:
:func:`warn_if_shared` says so, once per process.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from ember.common import checksum
from ember.common.log import get_logger
from ember.errors import BlobFormatError, CacheWarning
from ember.store import blob

if TYPE_CHECKING:
    import io

    from ember.store.signing import Signer

log = get_logger("ember.cache")


#: A file whose blocks on disk hold this much less than its size has holes (a sparse file).
_HOLE_SLACK = 1 << 20
_PIECE = 4 << 20  # large enough for BLAKE3's threads, small next to a process's memory


def has_holes(stat: os.stat_result) -> bool:
    """Whether a file claims more bytes than its blocks hold: reading it would allocate memory
    for bytes no one wrote. Ember writes every byte of an entry, so a real entry has none
    (a compressing file system may say otherwise: such entries are only checked twice)."""
    blocks = getattr(stat, "st_blocks", None)
    return blocks is not None and blocks * 512 + _HOLE_SLACK < stat.st_size


def check_in_pieces(blob_file: io.BufferedReader, size: int, key: str,
                    signer: Signer | None) -> None:
    """Check a blob file's payload checksum (with a ``signer``, its MAC) in bounded pieces, so
    that a forged file costs no more memory than a piece; leaves the file at its start.

    :raises BlobFormatError: as the whole-file checks do.
    """
    prefix = blob_file.read(16)
    blob_file.seek(0)
    header = blob.read_file_header(blob_file)
    offset = blob_file.tell()
    if signer is not None:
        start, length, digest = 0, size - blob.TAG_SIZE, signer.hasher(key, size)
    else:
        start, length, digest = offset, header.payload_length, checksum.hasher(size)
    if length < offset or start + length > size:
        raise BlobFormatError(f"payload is {size - offset} bytes, header says "
                              f"{header.payload_length} (truncated?)")
    blob_file.seek(start)
    piece = memoryview(bytearray(min(_PIECE, length) or 1))
    while length:
        got = blob_file.readinto(piece[:min(length, piece.nbytes)])
        if not got:
            raise BlobFormatError("truncated while being read")
        digest.update(piece[:got])
        length -= got
    if signer is not None:
        if not blob.is_signed(prefix):
            raise BlobFormatError("it is not signed, and a signing key is set")
        if not signer.equal(digest.digest(), blob_file.read(blob.TAG_SIZE)):
            raise BlobFormatError("its signature does not verify with this signing key "
                                  "(written with another key, or forged)")
    elif digest.hexdigest() != header.payload_checksum:
        raise BlobFormatError("payload checksum mismatch (the blob is damaged)")
    blob_file.seek(0)


_warned_shared: set[str] = set()


def warn_if_shared(root: str) -> None:
    """Warn once per process and directory when an unsigned cache lives in a directory that
    others can write to (world-writable, or owned by another user): whoever they are chooses
    the compiled models this process runs, as ssh and pip refuse files they cannot trust."""
    if root in _warned_shared:
        return
    _warned_shared.add(root)
    try:
        stat = os.stat(root)
    except OSError:
        return
    getuid = getattr(os, "getuid", None)
    other_owner = getuid is not None and stat.st_uid not in (getuid(), 0)
    if not (stat.st_mode & 0o002 or other_owner):
        return
    why = (f"is owned by another user (uid {stat.st_uid})" if other_owner else
           f"can be written by every user (mode {stat.st_mode & 0o7777:o})")
    message = (f"the model cache {root} {why}, and it is not signed: whoever can write to it "
               "chooses the compiled models this process runs. Set CACHE_SIGNING_KEY (or "
               "EMBER_CACHE_SIGNING_KEY), or use a directory only you can write to "
               f"(chmod 700 {root})")
    log.warning("%s", message)
    warnings.warn(message, CacheWarning, stacklevel=4)
