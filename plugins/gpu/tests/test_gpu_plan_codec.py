"""The plan and model entries read back from CACHE_DIR are untrusted: any bytes decode into a valid
object or raise BlobFormatError (no OpenCL here: plans are plain data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ember.plugin import BlobFormatError, Port, read_frame, write_frame
from ember_gpu.memory import Region
from ember_gpu.plan import Launch, OutputSlot, Plan
from ember_gpu.plan_codec import (
    decode_model_info,
    decode_plan,
    encode_model_info,
    encode_plan,
)

INPUT_NBYTES = [24, 0]
PORTS = [Port("y", (2, 3), np.dtype(np.float32)), Port("n", (2,), np.dtype(np.int64))]


def sample_plan() -> Plan:
    return Plan(
        name="gate[2x3]",
        source="__kernel void k0(__global const uchar *C, __global uchar *W) {}\n",
        launches=(Launch("k0", 6), Launch("k1", 3)),
        constants=bytes(range(64)),
        workspace_size=128,
        inputs=(Region("W", 0, 24), None),
        outputs=(OutputSlot((2, 3), np.dtype(np.float32), region=Region("W", 64, 24)),
                 OutputSlot((2,), np.dtype(np.int64), host=np.array([7, -1], np.int64))),
    )


def test_a_plan_round_trips():
    plan = decode_plan(encode_plan(sample_plan()), INPUT_NBYTES, PORTS)
    want = sample_plan()
    assert (plan.name, plan.source, plan.constants, plan.workspace_size) == (
        want.name, want.source, want.constants, want.workspace_size)
    assert [(launch.kernel, launch.global_size) for launch in plan.launches] == [("k0", 6),
                                                                                 ("k1", 3)]
    assert plan.inputs[0].offset == 0 and plan.inputs[0].nbytes == 24 and plan.inputs[1] is None
    assert plan.outputs[0].region.offset == 64 and plan.outputs[0].host is None
    np.testing.assert_array_equal(plan.outputs[1].host, [7, -1])


def test_model_info_round_trips():
    ports = (Port("x", ("batch", 3), np.dtype(np.float32), 0),
             Port("sr", (), np.dtype(np.int64), 1))
    info = decode_model_info(encode_model_info("m", ports, (PORTS[0],), frozenset({"sr"})))
    assert info.name == "m" and info.inputs == ports and info.shape_inputs == {"sr"}


def _decodes_or_refuses(data: bytes) -> None:
    try:
        plan = decode_plan(data, INPUT_NBYTES, PORTS)
    except BlobFormatError:
        return
    for region in [*plan.inputs, *(o.region for o in plan.outputs)]:  # what decoding promises
        assert region is None or region.offset + region.nbytes <= plan.workspace_size


def test_every_truncation_and_many_flips_are_refused_or_valid():
    data = encode_plan(sample_plan())
    for length in range(len(data)):
        with pytest.raises(BlobFormatError):
            decode_plan(data[:length], INPUT_NBYTES, PORTS)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        flipped = bytearray(data)
        for position in rng.integers(0, len(data), size=rng.integers(1, 4)):
            flipped[position] = int(rng.integers(0, 256))
        _decodes_or_refuses(bytes(flipped))
    for _ in range(200):
        _decodes_or_refuses(rng.bytes(int(rng.integers(0, 300))))
    for junk in [b"", b"EMGPLAN\0", data[-28:], encode_model_info("m", (), (), frozenset())[-28:]]:
        with pytest.raises(BlobFormatError):
            decode_model_info(junk)
        with pytest.raises(BlobFormatError):
            decode_plan(junk, INPUT_NBYTES, PORTS)


def _with_header(change) -> bytes:
    """The sample plan with its JSON header edited (the sections kept)."""
    frame = read_frame(encode_plan(sample_plan()), b"EMGPLAN\0", 2, sections=4)
    header = json.loads(bytes(frame.sections[0]))
    change(header)
    return write_frame(b"EMGPLAN\0", 2, [json.dumps(header).encode(), *frame.sections[1:]])


@pytest.mark.parametrize("change", [
    lambda h: h.update(workspace=True),  # a bool is not an integer
    lambda h: h.update(workspace=-1),
    lambda h: h.update(workspace=1 << 50),
    lambda h: h.update(workspace=40),  # regions beyond it
    lambda h: h["launches"].append(["k0; evil()", 1]),
    lambda h: h["launches"].append(["k2", 0]),
    lambda h: h["inputs"].append(None),  # not the model's number of inputs
    lambda h: h["inputs"].__setitem__(0, [0, 4]),  # not the input's size
    lambda h: h["outputs"][0].update(dtype="|O"),
    lambda h: h["outputs"][0].update(dtype="<U8"),
    lambda h: h["outputs"][0].update(shape=[2, 4]),  # not what its region holds
    lambda h: h["outputs"][0].update(shape=[1 << 31] * 32),
    lambda h: h["outputs"][1].update(shape=[3]),  # more known bytes than stored
    lambda h: h.update(name=["not", "a", "name"]),
    lambda h: h.update(launches={"k0": 1}),
    lambda h: h.update(outputs=[[1] * 1000] * 2),
], ids=lambda _: "")
def test_inconsistent_headers_are_refused(change):
    with pytest.raises(BlobFormatError):
        decode_plan(_with_header(change), INPUT_NBYTES, PORTS)


def test_deeply_nested_json_is_refused():
    text = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(BlobFormatError):
        decode_plan(write_frame(b"EMGPLAN\0", 2, [text, b"", b"", b""]), INPUT_NBYTES, PORTS)
    with pytest.raises(BlobFormatError):
        decode_model_info(write_frame(b"EMGMODL\0", 2, [text]))


# -- each check at its edge: the last value accepted and the first refused -----------------------


def _decodes(change) -> bool:
    try:
        decode_plan(_with_header(change), INPUT_NBYTES, PORTS)
    except BlobFormatError:
        return False
    return True


@pytest.mark.parametrize(("name", "accepted"), [
    ("k", True), ("k" * 63, True), ("k" * 64, False), ("", False)])
def test_a_kernel_name_is_1_to_63_characters(name, accepted):
    assert _decodes(lambda h: h["launches"].append([name, 1])) is accepted


def test_the_workspace_bound_is_inclusive():
    from ember_gpu.plan_codec import MAX_WORKSPACE

    assert MAX_WORKSPACE == 1 << 40  # far above any device's memory; nothing is allocated here
    assert _decodes(lambda h: h.update(workspace=1 << 40))
    assert not _decodes(lambda h: h.update(workspace=(1 << 40) + 1))


def test_an_empty_region_is_a_region():
    assert _decodes(lambda h: h["inputs"].__setitem__(1, [0, 0]))  # input 1 holds 0 bytes


def test_a_type_the_device_has_not_is_refused():
    assert not _decodes(lambda h: h["outputs"][0].update(dtype=">f4"))  # not native


def test_the_header_nests_at_most_8_deep():
    assert _decodes(lambda h: h.update(extra=[[[[[[[]]]]]]]))  # 8 with the header itself
    assert not _decodes(lambda h: h.update(extra=[[[[[[[[]]]]]]]]))


def test_the_header_is_bounded_at_64_mib():
    frame = read_frame(encode_plan(sample_plan()), b"EMGPLAN\0", 2, sections=4)
    text = bytes(frame.sections[0])
    for size, accepted in ((64 << 20, True), ((64 << 20) + 1, False)):
        padded = text + b" " * (size - len(text))
        data = write_frame(b"EMGPLAN\0", 2, [padded, *frame.sections[1:]])
        if accepted:
            decode_plan(data, INPUT_NBYTES, PORTS)
        else:
            with pytest.raises(BlobFormatError):
                decode_plan(data, INPUT_NBYTES, PORTS)


def test_a_global_size_is_bounded_inclusively():
    assert _decodes(lambda h: h["launches"].append(["k2", 1 << 40]))
    assert not _decodes(lambda h: h["launches"].append(["k2", (1 << 40) + 1]))


def test_the_name_is_at_most_4096_characters():
    assert _decodes(lambda h: h.update(name="n" * 4096))
    assert not _decodes(lambda h: h.update(name="n" * 4097))


def test_a_dimension_is_at_most_2_to_the_31():
    def shape(first):  # an output of no elements, in an empty region
        return lambda h: h["outputs"][0].update(shape=[first, 0], at=[64, 0])

    assert _decodes(shape(1 << 31))
    assert not _decodes(shape((1 << 31) + 1))


def model_info(inputs):
    return write_frame(b"EMGMODL\0", 2, [json.dumps(
        {"name": "m", "inputs": inputs, "outputs": [], "shape_inputs": []}).encode()])


def port(shape, name="x"):
    return {"name": name, "shape": shape, "dtype": "<f4"}


@pytest.mark.parametrize("shape", [[None, 0, "batch", 3], [1] * 32])
def test_model_info_accepts_every_kind_of_dimension(shape):
    (decoded,) = decode_model_info(model_info([port(shape)])).inputs
    assert list(decoded.shape) == shape


@pytest.mark.parametrize("entry", [[1, 2], "x", port(5), port(None), port([1] * 33),
                                   port([-1]), port([1.5]), port([True]),
                                   {"name": "x", "shape": [1], "dtype": "<U8"}])
def test_model_info_refuses_what_is_not_a_port(entry):
    with pytest.raises(BlobFormatError):
        decode_model_info(model_info([entry]))


def test_model_info_holds_at_most_65536_ports():
    with pytest.raises(BlobFormatError):
        decode_model_info(model_info([port([1], f"x{i}") for i in range((1 << 16) + 1)]))


def test_an_output_has_at_most_32_dimensions():
    assert _decodes(lambda h: h["outputs"][0].update(shape=[1] * 32, at=[64, 4]))
    assert not _decodes(lambda h: h["outputs"][0].update(shape=[1] * 33, at=[64, 4]))


def test_a_region_starts_inside_the_workspace():
    assert _decodes(lambda h: h["outputs"][0].update(shape=[0], at=[0, 0]))
    assert not _decodes(lambda h: h["outputs"][0].update(shape=[0], at=[-1, 0]))


def test_an_output_may_fill_the_largest_workspace():
    def largest(h):
        h.update(workspace=1 << 40)
        h["outputs"][0].update(shape=[1 << 20, 1 << 20], dtype="|i1", at=[0, 1 << 40])

    assert _decodes(largest)


def test_a_global_size_of_one_is_a_launch():
    assert _decodes(lambda h: h["launches"].append(["k2", 1]))


def test_every_input_may_be_a_shape_input():
    ports = (Port("sr", (), np.dtype(np.int64), 0),)
    info = decode_model_info(encode_model_info("m", ports, (), frozenset({"sr"})))
    assert info.shape_inputs == {"sr"}


def test_a_region_ends_inside_the_workspace():
    assert _decodes(lambda h: h["outputs"][0].update(at=[104, 24]))  # ends at 128
    assert not _decodes(lambda h: h["outputs"][0].update(at=[120, 24]))


def test_a_dimension_is_not_negative():
    assert not _decodes(lambda h: h["outputs"][0].update(shape=[-1, 0], at=[64, 0]))


@pytest.mark.parametrize(("workspace", "accepted"), [(0, True), (-1, False)])
def test_a_plan_without_regions_may_have_an_empty_workspace(workspace, accepted):
    def change(h):
        h.update(workspace=workspace, inputs=[None, None])
        h["outputs"][0].update(shape=[0], at=None)

    assert _decodes(change) is accepted


def test_model_info_holds_more_than_32768_ports():
    info = decode_model_info(model_info([port([1], f"x{i}") for i in range((1 << 15) + 1)]))
    assert len(info.inputs) == (1 << 15) + 1
