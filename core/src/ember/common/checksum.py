"""The one content hash Ember uses: BLAKE3, for blob checksums, model digests and cache keys.

BLAKE3 is a cryptographic hash (a flipped bit anywhere changes it; collisions are infeasible)
and runs several times faster than SHA-256 (it is a tree hash, vectorised, and can use several
threads on a large input), which matters because every cache hit verifies a whole blob.
"""

from __future__ import annotations

import blake3

ALGORITHM = "blake3"
DIGEST_SIZE = 32
#: Blobs larger than this are hashed with several threads.
_THREADED_FROM = 4 << 20


def hasher(size_hint: int = 0) -> blake3.blake3:
    """An incremental hasher (``update``, ``digest``, ``hexdigest``); multi-threaded when
    ``size_hint`` (the bytes it will be given) is large enough for threads to pay."""
    return blake3.blake3(max_threads=blake3.blake3.AUTO if size_hint >= _THREADED_FROM else 1)


def digest(data: bytes | bytearray | memoryview) -> bytes:
    """The BLAKE3 digest of ``data`` (32 bytes)."""
    threads = blake3.blake3.AUTO if memoryview(data).nbytes >= _THREADED_FROM else 1
    return blake3.blake3(data, max_threads=threads).digest()


def hexdigest(data: bytes | bytearray | memoryview) -> str:
    """The BLAKE3 digest of ``data`` as 64 lowercase hex digits: Ember's content hash."""
    return digest(data).hex()
