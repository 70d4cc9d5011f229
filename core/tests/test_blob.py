"""The blob container: everything that is not an intact blob is refused with a reason."""

import struct

import pytest

from ember import blob
from ember.errors import BlobFormatError

FIELDS = {
    "ember_version": "0.1.0", "plugin": "ember-test", "plugin_version": "1.0",
    "device": "TEST", "device_architecture": "arch", "key": "abc", "flags": ("encrypted",),
}
PAYLOAD = bytes(range(256)) * 40


def test_round_trip_keeps_header_and_payload():
    data = blob.pack(FIELDS, PAYLOAD)
    header, payload = blob.unpack(data)
    assert bytes(payload) == PAYLOAD
    assert header.device == "TEST" and header.key == "abc" and header.flags == ("encrypted",)
    assert header.payload_length == len(PAYLOAD)


def test_payload_is_aligned_for_in_place_views():
    _, offset = blob.read_header(blob.pack(FIELDS, PAYLOAD))
    assert offset % 64 == 0


def test_empty_payload_round_trips():
    assert bytes(blob.unpack(blob.pack(FIELDS, b""))[1]) == b""


@pytest.mark.parametrize("cut", [0, 5, 20, 100, -1, -len(PAYLOAD) // 2])
def test_truncated_blob_is_refused(cut):
    data = blob.pack(FIELDS, PAYLOAD)
    with pytest.raises(BlobFormatError):
        blob.unpack(data[:cut])


def test_every_flipped_header_byte_is_caught():
    data = bytearray(blob.pack(FIELDS, PAYLOAD))
    _, offset = blob.read_header(data)
    for position in range(offset):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        with pytest.raises(BlobFormatError):
            blob.unpack(damaged)


@pytest.mark.parametrize("position", [0, 1, 1000, len(PAYLOAD) - 1])
def test_flipped_payload_byte_is_caught(position):
    data = bytearray(blob.pack(FIELDS, PAYLOAD))
    data[len(data) - len(PAYLOAD) + position] ^= 0x80
    with pytest.raises(BlobFormatError, match="checksum"):
        blob.unpack(data)


def test_appended_bytes_are_caught():
    with pytest.raises(BlobFormatError, match="payload is"):
        blob.unpack(blob.pack(FIELDS, PAYLOAD) + b"x")


def test_foreign_file_is_refused():
    with pytest.raises(BlobFormatError, match="magic"):
        blob.unpack(b"\x08\x07\x12\x04onnx" + bytes(100))


def test_other_container_version_is_refused():
    data = bytearray(blob.pack(FIELDS, PAYLOAD))
    struct.pack_into("<H", data, 8, blob.CONTAINER_VERSION + 1)
    with pytest.raises(BlobFormatError, match="version"):
        blob.unpack(data)


def test_huge_declared_header_is_refused_before_reading():
    data = struct.pack("<8sHHI", blob.MAGIC, blob.CONTAINER_VERSION, 0, 1 << 30) + bytes(64)
    with pytest.raises(BlobFormatError, match="large"):
        blob.unpack(data)
