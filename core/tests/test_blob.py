"""The blob container: everything that is not an intact blob is refused with a reason."""

import struct

import pytest

from ember.errors import BlobFormatError
from ember.store import blob

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


# -- headers forged with a valid checksum: every field is type- and range-checked ---------------


def forge(document, payload=PAYLOAD, flags=0):
    """A blob whose header is ``document`` as given (any JSON), with correct checksums."""
    import json

    from ember.common import checksum

    text = json.dumps(document).encode()
    head = struct.pack("<8sHHI", blob.MAGIC, blob.CONTAINER_VERSION, flags, len(text)) + text
    return head + checksum.digest(head) + payload


def header_of(payload=PAYLOAD, **fields):
    from ember.common import checksum

    return {"ember_version": "0.1.0", "plugin": "p", "plugin_version": "1", "device": "D",
            "device_architecture": "a", "payload_length": len(payload),
            "payload_checksum": checksum.hexdigest(payload), **fields}


def test_a_forged_but_well_formed_header_is_read():
    header, payload = blob.unpack(forge(header_of(created=5, compile_seconds=2, flags=["x"],
                                                  key="k" * 256, key_parts={"a": 1})))
    assert bytes(payload) == PAYLOAD
    assert header.created == 5.0 and type(header.created) is float
    assert header.compile_seconds == 2.0 and type(header.compile_seconds) is float
    assert header.flags == ("x",) and header.key == "k" * 256 and header.key_parts == {"a": 1}
    minimal, _ = blob.unpack(forge(header_of()))  # the optional fields take their defaults
    assert (minimal.key, minimal.key_parts, minimal.flags, minimal.model_name, minimal.created,
            minimal.compile_seconds) == ("", {}, (), "", 0.0, 0.0)
    zero, _ = blob.unpack(forge(header_of(compile_seconds=0.0, created=-1.5)))
    assert zero.compile_seconds == 0.0 and zero.created == -1.5


#: A forged field, and what the error must name. The other fields sit at the edges of what is
#: allowed (an empty payload, a 256-character key, no compile time, a time long before 1970), so
#: that a check made stricter by mistake names a field that is not the forged one.
BAD_FIELDS = {
    "unknown field": ({"extra": 1}, "unknown fields"),
    "plugin not a string": ({"plugin": 1}, "'plugin'"),
    "device null": ({"device": None}, "'device'"),
    "length a string": ({"payload_length": "4"}, "'payload_length'"),
    "length a boolean": ({"payload_length": True}, "'payload_length'"),
    "length negative": ({"payload_length": -1}, "'payload_length'"),
    "length too large": ({"payload_length": blob.MAX_PAYLOAD_LENGTH + 1}, "'payload_length'"),
    "checksum upper case": ({"payload_checksum": "A" * 64}, "'payload_checksum'"),
    "checksum short": ({"payload_checksum": "a" * 63}, "'payload_checksum'"),
    "key too long": ({"key": "k" * 257}, "'key'"),
    "key not a string": ({"key": 5}, "'key'"),
    "key parts a list": ({"key_parts": []}, "'key_parts'"),
    "flags a string": ({"flags": "encrypted"}, "'flags'"),
    "flag not a string": ({"flags": [1]}, "'flags' holds"),
    "model name a number": ({"model_name": 3}, "'model_name'"),
    "created a string": ({"created": "now"}, "'created'"),
    "created a boolean": ({"created": True}, "'created'"),
    "compile seconds negative": ({"compile_seconds": -0.5}, "'compile_seconds'"),
    "compile seconds a boolean": ({"compile_seconds": False}, "'compile_seconds'"),
}
EDGES = {"key": "k" * 256, "compile_seconds": 0, "created": -1e300, "flags": [],
         "key_parts": {}, "model_name": ""}


def test_the_edges_themselves_are_allowed():
    header, payload = blob.unpack(forge(header_of(b"", **EDGES), b""))
    assert payload.nbytes == 0 and header.key == "k" * 256 and header.created == -1e300


@pytest.mark.parametrize("bad", sorted(BAD_FIELDS))
def test_a_forged_header_with_a_bad_field_is_refused_naming_it(bad):
    fields, named = BAD_FIELDS[bad]
    with pytest.raises(BlobFormatError, match=named):
        blob.unpack(forge(header_of(b"", **{**EDGES, **fields}), b""))


def test_unknown_fields_are_named_five_at_most():
    extra = {f"extra{i}": i for i in range(7)}
    with pytest.raises(BlobFormatError) as refused:
        blob.unpack(forge(header_of(**extra)))
    assert str(refused.value) == ("blob header has unknown fields "
                                  "['extra0', 'extra1', 'extra2', 'extra3', 'extra4']")


def test_a_signed_blob_whose_tag_is_cut_is_refused():
    prefix, _ = blob.encode(FIELDS, b"", signed=True)
    with pytest.raises(BlobFormatError, match="payload is 0 bytes, header says 0"):
        blob.unpack(prefix + bytes(blob.TAG_SIZE - 1))
    assert blob.unpack(prefix + bytes(blob.TAG_SIZE))[1].nbytes == 0


def test_read_file_says_how_many_bytes_follow_the_header():
    import io

    extended = blob.pack(FIELDS, PAYLOAD) + b"xy"
    with pytest.raises(BlobFormatError, match=f"payload is {len(PAYLOAD) + 2} bytes"):
        blob.read_file(io.BytesIO(extended))


@pytest.mark.parametrize("document", [[], "text", 3, None])
def test_a_header_that_is_not_an_object_is_refused(document):
    with pytest.raises(BlobFormatError, match="blob header is"):
        blob.unpack(forge(document))


def test_the_declared_length_must_be_the_payloads():
    size = len(PAYLOAD)
    with pytest.raises(BlobFormatError, match=f"payload is {size} bytes, header says {size + 1}"):
        blob.unpack(forge(header_of(payload_length=size + 1)))
    with pytest.raises(BlobFormatError, match=f"payload is {size} bytes, header says {size - 1}"):
        blob.unpack(forge(header_of(payload_length=size - 1)))


def test_the_prefix_is_checked_field_by_field():
    data = blob.pack(FIELDS, PAYLOAD)
    assert blob.header_size(data[:16]) + 48 == blob.read_header(data)[1]
    assert not blob.is_signed(data) and not blob.is_signed(data[:15])
    assert blob.split_tag(data) == (memoryview(data), None)
    with pytest.raises(BlobFormatError, match="too short"):
        blob.header_size(data[:15])
    with pytest.raises(BlobFormatError, match="unknown container flags 0x2"):
        blob.unpack(forge(header_of(), flags=2))
    exact = struct.pack("<8sHHI", blob.MAGIC, blob.CONTAINER_VERSION, 0, blob.MAX_HEADER_SIZE)
    assert blob.header_size(exact) == blob.MAX_HEADER_SIZE  # the bound itself is allowed
    with pytest.raises(BlobFormatError, match="truncated inside the header"):
        blob.read_header(exact + bytes(10))


def test_a_signed_blob_carries_its_tag_after_the_payload():
    prefix, _ = blob.encode(FIELDS, PAYLOAD, signed=True)
    tag = bytes(range(blob.TAG_SIZE))
    data = prefix + PAYLOAD + tag
    assert blob.is_signed(data)
    covered, found = blob.split_tag(data)
    assert found == tag and bytes(covered) == prefix + PAYLOAD
    assert bytes(blob.unpack(data)[1]) == PAYLOAD
    with pytest.raises(BlobFormatError, match="header says"):
        blob.unpack(prefix + PAYLOAD)  # the tag missing
    # too short to hold a tag: nothing is split off
    assert blob.split_tag(data[:blob.TAG_SIZE + 15])[1] is None


def test_the_file_readers_agree_with_unpack():
    import io

    data = blob.pack({**FIELDS, "model_name": "m"}, PAYLOAD)
    assert blob.read_file_header(io.BytesIO(data)).model_name == "m"
    header, payload = blob.read_file(io.BytesIO(data))
    assert header == blob.unpack(data)[0] and payload == PAYLOAD and type(payload) is bytes
    blob.check_payload(header, payload)
    with pytest.raises(BlobFormatError, match="checksum mismatch"):
        blob.check_payload(header, payload[:-1] + b"\0")
    assert blob.pack(FIELDS, PAYLOAD) == blob.encode(FIELDS, PAYLOAD)[0] + PAYLOAD


def test_the_size_bounds_are_a_mebibyte_of_header_and_a_tebibyte_of_payload():
    for size, allowed in ((1 << 20, True), ((1 << 20) + 1, False)):
        prefix = struct.pack("<8sHHI", blob.MAGIC, blob.CONTAINER_VERSION, 0, size)
        if allowed:
            assert blob.header_size(prefix) == size
        else:
            with pytest.raises(BlobFormatError, match="implausibly large"):
                blob.header_size(prefix)
    # a header may declare up to 1 TiB of payload (then this one is too short for it)
    with pytest.raises(BlobFormatError, match=f"header says {1 << 40}"):
        blob.unpack(forge(header_of(payload_length=1 << 40)))
    with pytest.raises(BlobFormatError, match="blob header field 'payload_length'"):
        blob.unpack(forge(header_of(payload_length=(1 << 40) + 1)))


def test_a_short_signed_blob_says_how_long_its_payload_is():
    prefix, _ = blob.encode(FIELDS, PAYLOAD, signed=True)
    tag = bytes(blob.TAG_SIZE)
    with pytest.raises(BlobFormatError, match=f"payload is {len(PAYLOAD) - 1} bytes"):
        blob.unpack(prefix + PAYLOAD[:-1] + tag)
    # the shortest signed input a tag can be split from: a prefix and a tag
    signed_prefix = struct.pack("<8sHHI", blob.MAGIC, blob.CONTAINER_VERSION, blob.FLAG_SIGNED, 0)
    covered, found = blob.split_tag(signed_prefix + tag)
    assert found == tag and bytes(covered) == signed_prefix


def test_a_plain_export_has_no_times():
    header, _ = blob.unpack(blob.pack(FIELDS, PAYLOAD))
    assert (header.created, header.compile_seconds, header.model_name) == (0.0, 0.0, "")
