"""The one MAC Ember signs cache entries with: BLAKE3 in keyed mode, from ``CACHE_SIGNING_KEY``.

Local ``CACHE_DIR`` entries (models and kernel entries), ``ember cache export`` bundles and Redis
entries are all signed here, one way. The 32-byte MAC key is derived from the user's secret with
BLAKE3's ``derive_key`` mode (a fixed context string), so the secret may be any length and is
never used directly. The tag covers, in order::

    "ember-entry\\0" | the entry's cache key (64 hex digits) | "\\0" | the blob (header and payload)

The blob's header holds the model's checksum and the device (in the key's parts and its own
fields), and the cache key is the digest of those parts; binding the key the reader looked up
means another model's entry, correctly signed, is refused under this model's key.

A signed blob carries the tag itself: flag ``blob.FLAG_SIGNED`` in its prefix, and the 32-byte tag
after the payload (see ember.store.blob). Keyed BLAKE3 is as fast as the plain checksum, so a signed
hit verifies the tag *instead of* the payload checksum and costs no more than an unsigned one.
"""

from __future__ import annotations

import hmac
from functools import lru_cache

import blake3

from ember.errors import BlobFormatError
from ember.store import blob
from ember.store.blob import BlobHeader

#: BLAKE3 derive_key context: globally unique, hard-coded, never changed for this MAC's meaning.
_CONTEXT = "Ember 2026-11 cache entry MAC v1"
TAG_SIZE = blob.TAG_SIZE
#: Inputs from this size on are hashed with several threads (as ember.common.checksum does).
_THREADED_FROM = 4 << 20

Chunk = bytes | bytearray | memoryview


class Signer:
    """Signs and verifies entries with one secret. Holds only the derived key."""

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not raw:
            raise ValueError("an empty signing key signs nothing")
        self._key = blake3.blake3(raw, derive_key_context=_CONTEXT).digest()

    def hasher(self, key: str, size_hint: int = 0) -> blake3.blake3:
        """An incremental MAC for the entry of cache key ``key``: ``update`` it with the blob's
        bytes in order, then ``digest()`` is the tag."""
        threads = blake3.blake3.AUTO if size_hint >= _THREADED_FROM else 1
        mac = blake3.blake3(key=self._key, max_threads=threads)
        mac.update(b"ember-entry\0" + key.encode("ascii", "replace") + b"\0")
        return mac

    def tag(self, key: str, *chunks: Chunk) -> bytes:
        """The tag of a blob given as consecutive chunks."""
        mac = self.hasher(key, sum(memoryview(c).nbytes for c in chunks))
        for chunk in chunks:
            mac.update(chunk)
        return mac.digest()

    def check(self, key: str, tag: bytes | memoryview | None, *chunks: Chunk) -> None:
        """:raises BlobFormatError: when ``tag`` is absent or not this key's tag of ``chunks``."""
        if tag is None:
            raise BlobFormatError("it is not signed, and a signing key is set")
        if not hmac.compare_digest(self.tag(key, *chunks), bytes(tag)):
            raise BlobFormatError("its signature does not verify with this signing key "
                                  "(written with another key, or forged)")

    def equal(self, computed: bytes, tag: bytes) -> bool:
        """Constant-time comparison of two tags."""
        return hmac.compare_digest(computed, tag)


@lru_cache(maxsize=8)
def signer(secret: str | bytes | None) -> Signer | None:
    """The signer for a ``CACHE_SIGNING_KEY`` value; None when unset or empty."""
    return Signer(secret) if secret else None


def open_blob(data: bytes | bytearray | memoryview, key: str, signer: Signer | None
              ) -> tuple[BlobHeader, memoryview]:
    """Check the blob of cache entry ``key`` and return its header and payload (a view).

    Without a signer, the blob's checksums are checked (accidental damage). With one, the tag
    must be there and verify, and it is checked *instead of* the payload checksum (it covers
    every byte, keyed): a signed hit costs one pass over the bytes, as an unsigned one does.
    The header's key must be ``key`` either way.

    :raises BlobFormatError: naming what is wrong.
    """
    if signer is None:
        header, payload = blob.unpack(data)
    else:
        covered, tag = blob.split_tag(data)
        signer.check(key, tag, covered)
        header, payload = blob.unpack(data, verify_payload=False)
    if header.key != key:
        raise BlobFormatError(f"entry holds key {header.key[:12] or '(none)'}..., "
                              f"not {key[:12]}...")
    return header, payload


def seal(signer: Signer | None, key: str, prefix: bytes, payload: bytes | memoryview
         ) -> tuple[bytes | memoryview, ...]:
    """The chunks of an entry's file: the blob's prefix (from ``blob.encode(..., signed=...)``)
    and payload, plus the tag when signing."""
    if signer is None:
        return prefix, payload
    return prefix, payload, signer.tag(key, prefix, payload)
