"""The one MAC of cache entries: keyed BLAKE3 over the entry's key and every byte of its blob."""

import blake3
import pytest

from ember.errors import BlobFormatError
from ember.store import blob, signing
from ember.store.signing import Signer

KEY = "a" * 64


def test_a_tag_binds_the_secret_the_key_and_every_byte():
    signer = Signer("secret")
    tag = signer.tag(KEY, b"prefix", b"payload")
    assert len(tag) == signing.TAG_SIZE == 32
    assert tag == signer.tag(KEY, b"prefixpayload")  # chunks are consecutive bytes
    assert tag == Signer(b"secret").tag(KEY, b"prefixpayload")  # str and bytes secrets agree
    assert tag != Signer("other").tag(KEY, b"prefixpayload")
    assert tag != signer.tag("b" * 64, b"prefixpayload")
    assert tag != signer.tag(KEY, b"prefixpayloaD")
    # the derived key, never the secret itself; the entry's key framed before the bytes
    derived = blake3.blake3(b"secret", derive_key_context="Ember 2026-11 cache entry MAC v1")
    expected = blake3.blake3(b"ember-entry\0" + KEY.encode() + b"\0prefixpayload",
                             key=derived.digest()).digest()
    assert tag == expected


def test_large_inputs_give_the_same_tag_hashed_with_threads():
    signer = Signer("secret")
    big = bytes(range(256)) * (5 << 12)  # 5 MiB: past the threaded size
    incremental = signer.hasher(KEY, len(big))
    incremental.update(big)
    assert incremental.digest() == signer.tag(KEY, big) == signer.tag(KEY, big[:7], big[7:])


def test_check_refuses_a_missing_or_wrong_tag():
    signer = Signer("secret")
    tag = signer.tag(KEY, b"data")
    signer.check(KEY, tag, b"data")
    signer.check(KEY, memoryview(tag), b"da", b"ta")
    with pytest.raises(BlobFormatError, match="not signed"):
        signer.check(KEY, None, b"data")
    with pytest.raises(BlobFormatError, match="does not verify"):
        signer.check(KEY, tag, b"datA")
    assert signer.equal(tag, tag) and not signer.equal(tag, bytes(32))


def test_an_empty_secret_signs_nothing():
    with pytest.raises(ValueError, match="empty"):
        Signer("")
    assert signing.signer("") is None and signing.signer(None) is None
    assert signing.signer("k") is signing.signer("k")  # made once per secret


def test_seal_and_open_a_signed_entry():
    signer = Signer("secret")
    fields = {"ember_version": "0", "plugin": "p", "plugin_version": "1", "device": "D",
              "device_architecture": "a", "key": KEY}
    prefix, _ = blob.encode(fields, b"payload", signed=True)
    assert signing.seal(None, KEY, prefix, b"payload") == (prefix, b"payload")
    chunks = signing.seal(signer, KEY, prefix, b"payload")
    assert len(chunks) == 3 and chunks[2] == signer.tag(KEY, prefix, b"payload")
    data = b"".join(chunks)
    header, payload = signing.open_blob(data, KEY, signer)
    assert bytes(payload) == b"payload" and header.key == KEY
    with pytest.raises(BlobFormatError, match="does not verify"):
        signing.open_blob(data, KEY, Signer("other"))
    # signed, the payload checksum is not what protects it: the tag is
    damaged = bytearray(data)
    damaged[-blob.TAG_SIZE - 1] ^= 1
    with pytest.raises(BlobFormatError, match="does not verify"):
        signing.open_blob(bytes(damaged), KEY, signer)
    unsigned = blob.pack(fields, b"payload")
    with pytest.raises(BlobFormatError, match="not signed"):
        signing.open_blob(unsigned, KEY, signer)
    assert bytes(signing.open_blob(unsigned, KEY, None)[1]) == b"payload"
    with pytest.raises(BlobFormatError, match="checksum"):
        signing.open_blob(unsigned[:-1] + b"X", KEY, None)
