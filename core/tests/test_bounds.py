"""Each bound on untrusted bytes, pinned at its edge: the last value accepted and the first one
refused (a fuzzer checks that every input gives a value or an error, not where the line is)."""

import io

import pytest

from ember.common import safe_json
from ember.common.sizes import parse_size
from ember.errors import BlobFormatError
from ember.store import blob
from ember.store.signing import Signer, open_blob, seal

FIELDS = {"ember_version": "0.1.0", "plugin": "ember-test", "plugin_version": "1.0",
          "device": "TEST", "device_architecture": "arch"}
PAYLOAD = bytes(range(256)) * 4


def loads(text, **bounds):
    return safe_json.loads(text, what="document", max_size=1 << 20, **bounds)


# -- safe_json ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [safe_json.MAX_INT, -safe_json.MAX_INT, 0, -1])
def test_integers_up_to_the_bound_are_read(value):
    assert loads(str(value)) == value
    assert loads(f"[{value}]") == [value]
    safe_json.check_bounds([value], what="document")  # the walk agrees with the parser


def test_the_integer_bound_is_63_bits():
    assert safe_json.MAX_INT == 2 ** 63 - 1
    assert loads("9223372036854775807") == 2 ** 63 - 1
    with pytest.raises(BlobFormatError, match="out of range"):
        loads("9223372036854775808")


@pytest.mark.parametrize("value", [safe_json.MAX_INT + 1, -safe_json.MAX_INT - 1,
                                   10 ** 30, -(10 ** 30)])
def test_integers_past_the_bound_are_refused(value):
    with pytest.raises(BlobFormatError, match="out of range"):
        loads(str(value))
    with pytest.raises(BlobFormatError, match="out of range"):
        safe_json.check_bounds([value], what="document")


@pytest.mark.parametrize("depth", [1, 2, 5, 32])
def test_depth_is_bounded_at_its_edge(depth):
    nested = "[" * depth + "]" * depth
    assert loads(nested, max_depth=depth) is not None  # exactly as deep as allowed
    with pytest.raises(BlobFormatError, match="nested deeper than"):
        loads(nested, max_depth=depth - 1)
    objects = '{"a":' * depth + "1" + "}" * depth
    assert loads(objects, max_depth=depth) is not None
    with pytest.raises(BlobFormatError, match="nested deeper than"):
        loads(objects, max_depth=depth - 1)


def test_the_default_bounds_are_the_documented_ones():
    assert (safe_json.MAX_DEPTH, safe_json.MAX_NODES) == (32, 1 << 20)
    assert loads("[" * 32 + "]" * 32) is not None
    with pytest.raises(BlobFormatError, match="nested deeper than 32"):
        loads("[" * 33 + "]" * 33)
    values = (1 << 20) - 1  # and the list holding them
    assert len(safe_json.loads("[" + "0," * (values - 1) + "0]", what="d", max_size=1 << 22)) \
        == values
    with pytest.raises(BlobFormatError, match="more than 1048576 values"):
        safe_json.loads("[" + "0," * values + "0]", what="d", max_size=1 << 22)


def test_a_number_out_of_range_is_named_by_its_first_20_characters():
    digits = "12345678901234567890" + "0" * 400
    with pytest.raises(BlobFormatError, match=r"integer 12345678901234567890\.\.\. is out"):
        loads(digits)
    with pytest.raises(BlobFormatError, match=r"number 12345678901234567890 is out"):
        loads(digits + ".0")


def test_the_walk_refuses_numbers_the_parser_would_have_refused():
    safe_json.check_bounds([1.5, -2.0, 0.0], what="document")
    for value in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(BlobFormatError, match="number out of range"):
            safe_json.check_bounds({"a": [value]}, what="document")


def test_the_node_count_is_bounded_at_its_edge():
    assert loads("[1,2,3]", max_nodes=4) == [1, 2, 3]  # the list and its three values
    with pytest.raises(BlobFormatError, match="more than 3 values"):
        loads("[1,2,3]", max_nodes=3)
    assert loads('{"a":1,"b":2}', max_nodes=3) == {"a": 1, "b": 2}
    with pytest.raises(BlobFormatError, match="more than 2 values"):
        loads('{"a":1,"b":2}', max_nodes=2)


def test_the_size_is_bounded_at_its_edge():
    assert safe_json.loads(b"[1, 2]", what="d", max_size=6) == [1, 2]
    with pytest.raises(BlobFormatError, match="larger than the 5 allowed"):
        safe_json.loads(b"[1, 2]", what="d", max_size=5)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999", "[1e999]"])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(BlobFormatError):
        loads(text)


def test_range_and_hex_checks_are_inclusive_and_exact():
    check = safe_json.in_range(0, 10)
    assert check(0) and check(10) and not check(-1) and not check(11)
    hex4 = safe_json.is_hex(4)
    assert hex4("09af") and not hex4("09aF") and not hex4("09a") and not hex4("09afe")
    assert not hex4("0g9a") and not hex4(1234)


def test_typed_getters_refuse_what_does_not_fit():
    document = {"n": 3, "flag": True, "s": "x"}
    assert safe_json.get(document, "n", int, "d") == 3
    assert safe_json.get(document, "missing", int, "d", default=7) == 7
    with pytest.raises(BlobFormatError, match="no field 'missing'"):
        safe_json.get(document, "missing", int, "d")
    with pytest.raises(BlobFormatError, match="is a boolean, not int"):
        safe_json.get(document, "flag", int, "d")  # bool is not an int here
    with pytest.raises(BlobFormatError, match="invalid value"):
        safe_json.get(document, "n", int, "d", check=lambda v: v > 3)
    with pytest.raises(BlobFormatError, match="is an array, not an object"):
        safe_json.obj([], "d")
    assert safe_json.short("x" * 100).endswith("...") and len(safe_json.short("x" * 100)) == 40
    assert safe_json.short("x" * 38) == repr("x" * 38)  # 40 characters: kept whole
    assert safe_json.short("x" * 39) == repr("x" * 39)[:37] + "..."
    assert safe_json.short("abc") == "'abc'"


# -- CACHE_MAX_SIZE -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "size"), [
    (0, 0), (1234, 1234), ("1234", 1234), (" 77 ", 77), ("500", 500), ("500B", 500),
    ("1K", 1 << 10), ("1KB", 1 << 10), ("1KiB", 1 << 10), ("1k", 1 << 10),
    ("500M", 500 << 20), ("500MB", 500 << 20), ("500MiB", 500 << 20), ("500mb", 500 << 20),
    ("2G", 2 << 30), ("2GB", 2 << 30), ("2GiB", 2 << 30), ("2gib", 2 << 30),
    ("1.5G", 3 << 29), ("1T", 1 << 40), ("1TiB", 1 << 40), ("0.5K", 512),
])
def test_sizes_are_read_in_every_usual_spelling(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "", "M", "-1", -1, "-5M", True, False, "1X", "G1",
                                  None, "1KK"])
def test_what_is_not_a_size_is_refused(text):
    assert parse_size(text) is None


# -- a blob file's length -------------------------------------------------------------------------


def read_file(data):
    return blob.read_file(io.BytesIO(data))


def test_an_unsigned_blob_file_must_end_with_its_payload():
    data = blob.pack(FIELDS, PAYLOAD)
    header, payload = read_file(data)
    assert payload == PAYLOAD and header.payload_length == len(PAYLOAD)
    for extra in (b"x", b"y" * blob.TAG_SIZE):  # one byte more, or a tag it does not declare
        with pytest.raises(BlobFormatError, match="header says"):
            read_file(data + extra)
    with pytest.raises(BlobFormatError, match="header says"):
        read_file(data[:-1])


def test_a_signed_blob_file_must_end_with_exactly_its_tag():
    signer = Signer("secret")
    prefix, _ = blob.encode({**FIELDS, "key": "k" * 64}, PAYLOAD, signed=True)
    data = b"".join(seal(signer, "k" * 64, prefix, PAYLOAD))
    assert read_file(data)[1] == PAYLOAD
    assert open_blob(data, "k" * 64, signer)[0].key == "k" * 64
    for forged in (data[:-blob.TAG_SIZE], data[:-1], data + b"x"):  # stripped, short, extended
        with pytest.raises(BlobFormatError):
            read_file(forged)
        with pytest.raises(BlobFormatError):
            open_blob(forged, "k" * 64, signer)


def test_open_blob_checks_the_key_the_entry_was_looked_up_by():
    data = blob.pack({**FIELDS, "key": "a" * 64}, PAYLOAD)
    assert open_blob(data, "a" * 64, None)[0].key == "a" * 64
    with pytest.raises(BlobFormatError) as refused:
        open_blob(data, "b" * 64, None)
    assert str(refused.value) == "entry holds key aaaaaaaaaaaa..., not bbbbbbbbbbbb..."
    with pytest.raises(BlobFormatError, match=r"entry holds key \(none\)\.\.\., not"):
        open_blob(blob.pack(FIELDS, PAYLOAD), "b" * 64, None)
    signer = Signer("secret")
    prefix, _ = blob.encode({**FIELDS, "key": "a" * 64}, PAYLOAD, signed=True)
    # signed for the key it is looked up by, yet holding another key: still refused
    signed = b"".join(seal(signer, "b" * 64, prefix, PAYLOAD))
    with pytest.raises(BlobFormatError, match="not bbbbbbbbbbbb"):
        open_blob(signed, "b" * 64, signer)
    with pytest.raises(BlobFormatError, match="does not verify"):
        open_blob(signed, "a" * 64, signer)
