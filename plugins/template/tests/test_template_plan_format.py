"""TEMPLATE's plan format read back from forged bytes: each check of ``plan_format.loads`` and
``validate`` at its edge, both ways (one step inside is accepted, one step outside is refused
with a BlobFormatError), and every value ``dumps`` writes read back as it was."""

import copy
import json
from typing import Any

import numpy as np
import pytest

from ember.plugin import BlobFormatError, Port, hexdigest, write_frame
from ember_template import plan_format
from ember_template.plan import Plan, Step

CONSTANT = np.arange(4, dtype="<f4")  # slot 1 of the base plan, at offset 0 of the data section


def base() -> dict[str, Any]:
    """A valid topology: y = x + c, with c a constant of 4 floats in the data section."""
    return {
        "opset": 17, "num_slots": 3,
        "constants": [{"slot": 1, "dtype": "<f4", "shape": [4], "offset": 0, "nbytes": 16}],
        "weights": {},
        "steps": [{"op": "Add", "name": "add", "in": [0, 1], "out": [2], "attrs": {},
                   "release": [0]}],
        "inputs": [{"name": "x", "shape": [4], "dtype": "<f4", "slot": 0}],
        "outputs": [{"name": "y", "shape": [4], "dtype": "<f4", "slot": 2}],
    }


def payload(document: Any, data: bytes = CONSTANT.tobytes(), *, flags: int = 0,
            version: int = plan_format.FORMAT_VERSION) -> bytes:
    text = document if isinstance(document, bytes) else json.dumps(document).encode()
    return write_frame(plan_format.KIND, version, [text, data], flags=flags)


def load(document: Any, data: bytes = CONSTANT.tobytes(), **kwargs: Any) -> Plan:
    return plan_format.loads(payload(document, data), **kwargs)


def refused(document: Any, match: str | None = None, data: bytes = CONSTANT.tobytes(),
            **kwargs: Any) -> None:
    with pytest.raises(BlobFormatError, match=match):
        load(document, data, **kwargs)


def changed(path: str, value: Any, document: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``document`` (the base one) with the field at ``path`` ("steps.0.in") set."""
    document = copy.deepcopy(base() if document is None else document)
    *parents, last = path.split(".")
    target: Any = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return document


def test_the_base_plan_loads_as_written():
    plan = load(base())
    assert (plan.opset, plan.num_slots, plan.input_slots, plan.output_slots) == (17, 3, [0], [2])
    assert [p.name for p in plan.inputs] == ["x"] and [p.name for p in plan.outputs] == ["y"]
    np.testing.assert_array_equal(plan.constants[1], CONSTANT)
    assert plan.steps == [Step("Add", "add", (0, 1), (2,), {}, (0,))]
    x = np.ones(4, "<f4")
    np.testing.assert_array_equal(plan.run([x])[0], x + CONSTANT)


def test_another_kind_version_or_flag_is_refused():
    text = json.dumps(base()).encode()
    for version in (plan_format.FORMAT_VERSION - 1, plan_format.FORMAT_VERSION + 1):
        with pytest.raises(BlobFormatError):
            plan_format.loads(payload(text, version=version))
    with pytest.raises(BlobFormatError):
        plan_format.loads(write_frame(b"EMCPUPL\0", plan_format.FORMAT_VERSION,
                                      [text, CONSTANT.tobytes()]))
    with pytest.raises(BlobFormatError):  # flag 2 is no flag of this format
        plan_format.loads(payload(text, flags=2))
    assert plan_format.FORMAT_VERSION == 3 and plan_format.KIND == b"EMTPLAN\0"


def test_an_encrypted_topology_needs_the_callbacks_and_the_right_key():
    def encrypt(data: bytes) -> bytes:
        return bytes(b ^ 0x5A for b in data)

    def wrong(data: bytes) -> bytes:
        raise ValueError("not my key")

    text = json.dumps(base()).encode()
    encrypted = payload(encrypt(text), flags=1)
    assert plan_format.loads(encrypted, decrypt=encrypt).num_slots == 3
    with pytest.raises(BlobFormatError, match="encrypted and no callbacks"):
        plan_format.loads(encrypted)
    with pytest.raises(BlobFormatError, match="does not decrypt"):
        plan_format.loads(encrypted, decrypt=wrong)
    # a plain topology is read as it is, whatever callbacks are given
    assert plan_format.loads(payload(text), decrypt=wrong).num_slots == 3
    plan = load(base())
    assert plan_format.loads(plan_format.dumps(plan, encrypt), decrypt=encrypt).num_slots == 3
    with pytest.raises(BlobFormatError, match="encrypted"):
        plan_format.loads(plan_format.dumps(plan, encrypt))


@pytest.mark.parametrize(("opset", "ok"), [(0, False), (1, True), (1000, True), (1001, False),
                                            (True, False), (17.0, False)])
def test_opset_bounds(opset, ok):
    if ok:
        assert load(changed("opset", opset)).opset == opset
    else:
        refused(changed("opset", opset), "opset")


def test_num_slots_bounds():
    refused(changed("num_slots", -1), "num_slots")
    refused(changed("num_slots", (1 << 24) + 1), "num_slots")
    refused(changed("num_slots", "3"), "num_slots")
    # 1 constant, 1 input, 1 step output: 3 writes; one slot more is allowed (an unused one)
    assert load(changed("num_slots", 4)).num_slots == 4
    refused(changed("num_slots", 5), "declares 5 slots")
    refused(changed("num_slots", 1 << 24), "declares")  # in range, but never written


@pytest.mark.parametrize(("slots", "ok"), [([0, 1], True), ([-1, 1], True), ([3, 1], False),
                                           ([-2, 1], False), ([True, 1], False),
                                           ([0.0, 1], False), ("0", False), (None, False)])
def test_a_step_reads_slots_in_range_only(slots, ok):
    document = changed("steps.0.in", slots)
    if not ok:
        refused(document, "slot out of range")
    elif -1 in slots:  # an omitted optional input reads nothing
        assert load(document).steps[0].inputs == (-1, 1)
    else:
        load(document)


def test_the_last_slot_is_in_range_and_the_next_is_not():
    document = changed("num_slots", 4)
    assert load(changed("steps.0.out", [3], changed("outputs.0.slot", 3, document))
                ).output_slots == [3]
    refused(changed("steps.0.out", [4], document), "slot out of range")
    refused(changed("steps.0.release", [4], document), "slot out of range")
    refused(changed("outputs.0.slot", 4, document), "slot out of range")


def test_constants_are_checked_against_their_section():
    refused(changed("constants.0.slot", -1), "no slot")
    refused(changed("constants.0.slot", 3), "slot out of range")
    refused(changed("constants.0.offset", -1), "^a constant field 'offset' has an invalid value")
    refused(changed("constants.0.nbytes", -1), "^a constant field 'nbytes' has an invalid value")
    refused(changed("constants.0.offset", "0"), "offset")
    refused(changed("constants.0.nbytes", 12), "outside")  # not 4 floats
    refused(changed("constants.0.nbytes", 20), "outside")
    refused(changed("constants.0.shape", [5]), "outside")
    # a constant that ends exactly at the section's end fits; one byte further does not
    data = bytes(64) + CONSTANT.tobytes()
    assert load(changed("constants.0.offset", 64), data).constants[1].tolist() == [0, 1, 2, 3]
    refused(changed("constants.0.offset", 65), "outside", data)
    refused(changed("constants.0.offset", 64), "outside", data[:-1])


def test_constants_of_several_dtypes_read_their_own_bytes():
    document = changed("num_slots", 5)
    document["constants"] += [
        {"slot": 3, "dtype": "<i8", "shape": [2], "offset": 64, "nbytes": 16},
        {"slot": 4, "dtype": "<f4", "shape": [2], "offset": 128, "nbytes": 8}]
    data = (CONSTANT.tobytes() + bytes(48) + np.array([7, -7], "<i8").tobytes() + bytes(48)
            + np.array([1.5, 2.5], "<f4").tobytes())
    plan = load(document, data)
    assert plan.constants[3].dtype == np.dtype("<i8") and plan.constants[3].tolist() == [7, -7]
    assert plan.constants[4].dtype == np.dtype("<f4") and plan.constants[4].tolist() == [1.5, 2.5]
    assert plan.constants[1].tolist() == [0, 1, 2, 3]
    refused(changed("constants.1.dtype", "<f3", document), "dtype", data)
    refused(changed("constants.1.dtype", 4, document), "dtype", data)
    refused(changed("constants.1.dtype", "|O", document), "dtype", data)


@pytest.mark.parametrize(("shape", "ok"), [
    ([], True), ([1] * 32, True), ([1] * 33, False), ([0], True), ([-1], False),
    ([True], False), ([1 << 40], True), ([(1 << 40) + 1], False), ([1 << 20, 1 << 20], True),
    ([1 << 20, (1 << 20) + 1], False), ("4", False), ({}, False), (5, False), (None, False),
    ({"1": 1}, False)])
def test_shape_bounds(shape, ok):
    """Through an array attribute: a shape within bounds gets as far as its data's length."""
    attribute = {"ndarray": {"dtype": "<f4", "shape": shape, "data": ""}}
    document = changed("steps.0.attrs", {"value": attribute})
    if ok and shape in ([0],):
        assert load(document).steps[0].attrs["value"].shape == (0,)
    elif ok:
        refused(document, "does not fit its shape")
    elif shape == [1 << 20, (1 << 20) + 1]:
        refused(document, r"^shape \[1048576, 1048577\] is too large$")
    else:
        refused(document, "^invalid shape")


def test_attribute_values_are_read_back_as_written():
    values = {"i": 3, "f": 0.5, "s": "text", "b": True, "n": None, "list": [1, [2, "x"]],
              "array": np.arange(6, dtype="<i4").reshape(2, 3), "bytes": b"\0\1raw",
              "scalar": np.float32(2.5), "empty": np.zeros((0, 2), "<f8")}
    plan = load(base())
    step = plan.steps[0]
    plan.steps[0] = Step(step.op_type, step.name, step.inputs, step.outputs, values, step.release)
    attrs = plan_format.loads(plan_format.dumps(plan)).steps[0].attrs
    assert set(attrs) == set(values)
    for name in ("i", "f", "s", "b", "n", "list", "bytes"):
        assert attrs[name] == values[name] and type(attrs[name]) is type(values[name]), name
    assert attrs["scalar"] == 2.5 and type(attrs["scalar"]) is float
    for name in ("array", "empty"):
        assert attrs[name].dtype == values[name].dtype
        np.testing.assert_array_equal(attrs[name], values[name])
        assert attrs[name].flags.writeable  # a copy, not a view of the topology
    with pytest.raises(TypeError, match="cannot store"):
        plan.steps[0] = Step(step.op_type, step.name, step.inputs, step.outputs,
                             {"x": object()}, step.release)
        plan_format.dumps(plan)


@pytest.mark.parametrize(("value", "match"), [
    ({"bytes": "not base64!"}, "base64"),
    ({"bytes": "AAAA!"}, "base64"),  # valid once the "!" is dropped: it must not be
    ({"bytes": 3}, "bytes"),
    ({"ndarray": {"dtype": "<f4", "shape": [1], "data": "@@@@"}}, "base64"),
    ({"ndarray": {"dtype": "<f4", "shape": [2], "data": "AAAAAA=="}}, "does not fit"),
    ({"ndarray": {"dtype": "<f4", "shape": [1], "data": 5}}, "data"),
    ({"ndarray": {"dtype": "<x4", "shape": [1], "data": "AAAAAA=="}}, "dtype"),
    ({"ndarray": [1]}, "array attribute"),
    ({"tensor": 1}, "unknown attribute encoding"),
    ({}, "unknown attribute encoding"),
])
def test_forged_attribute_encodings_are_refused(value, match):
    refused(changed("steps.0.attrs", {"a": value}), match)
    refused(changed("steps.0.attrs", {"a": [1, value]}), match)


def test_steps_name_known_operators_and_object_attributes():
    refused(changed("steps.0.op", "Det"), "unknown operator")
    refused(changed("steps.0.op", 3), "unknown operator")
    refused(changed("steps.0.attrs", [1]), "not an object")
    refused(changed("steps.0.attrs", "a"), "not an object")
    refused(changed("steps", [5]), "step")
    assert load(changed("steps.0.attrs", None)).steps[0].attrs == {}
    document = base()
    del document["steps"][0]["attrs"], document["steps"][0]["name"]
    step = load(document).steps[0]
    assert (step.name, step.attrs) == ("", {})
    refused(changed("steps", {}), "steps")
    for field in ("in", "out", "release"):
        refused(changed(f"steps.0.{field}", None), "slot out of range")


def test_ports():
    document = changed("num_slots", 4)
    document["inputs"].append({"name": "x", "shape": [4], "dtype": "<f4", "slot": 3})
    refused(document, "two TEMPLATE plan inputs have the same name")
    document["inputs"][1]["name"] = "x2"
    plan = load(document)
    assert [p.name for p in plan.inputs] == ["x", "x2"] and plan.input_slots == [0, 3]
    assert [p.index for p in plan.inputs] == [0, 1]
    document = changed("num_slots", 4)
    document["outputs"].append({"name": "y", "shape": [4], "dtype": "<f4", "slot": 1})
    refused(document, "two TEMPLATE plan outputs have the same name")
    refused(changed("inputs.0", 5), "port")
    refused(changed("inputs.0.dtype", "|O"), "dtype")
    refused(changed("inputs", {}), "inputs")
    refused(changed("outputs.0.slot", None), "slot out of range")
    del_port = base()
    del del_port["outputs"]
    refused(del_port, "outputs")
    assert load(base()).outputs == [Port("y", (4,), np.dtype("<f4"), 0)]


def test_weight_sources():
    plan = load(changed("weights", {"1": ["w", "T"]}))
    assert plan.weight_names == {1: ("w", "T")}
    for source in (["w"], ["w", "T", "x"], ["w", 1], "w", None):
        refused(changed("weights", {"1": source}), "weight source is malformed")
    refused(changed("weights", {"3": ["w", ""]}), "slot out of range")
    refused(changed("weights", {"x": ["w", ""]}), "damaged TEMPLATE plan: ValueError")
    refused(changed("weights", []), "weights")


def weightless(transform: str = "") -> tuple[dict[str, Any], np.ndarray]:
    stored = CONSTANT if transform == "" else np.arange(4, dtype="<f4").reshape(2, 2)
    document = base()
    document["constants"][0] = {"slot": 1, "dtype": "<f4", "shape": list(stored.shape),
                                "initializer": "c", "transform": transform,
                                "checksum": hexdigest(memoryview(np.ascontiguousarray(stored))
                                                      .cast("B"))}
    return document, stored


def test_a_weightless_constant_comes_from_the_model_file_and_is_checked():
    document, stored = weightless()
    plan = load(document, b"", weights={"c": CONSTANT.copy()}.__getitem__)
    np.testing.assert_array_equal(plan.constants[1], CONSTANT)
    refused(document, "no model file was given", b"")
    refused(document, "has no initializer 'c'", b"", weights={}.__getitem__)
    for other in (CONSTANT + 1, CONSTANT.astype("<f8"), CONSTANT.reshape(2, 2)):
        refused(document, "not the one compiled", b"", weights={"c": other}.__getitem__)
    refused(changed("constants.0.checksum", "0" * 63, document), "no valid checksum", b"",
            weights={"c": CONSTANT}.__getitem__)
    # transposed: the stored constant is the initializer's transpose
    document, stored = weightless("T")
    plan = load(changed("constants.0.shape", [2, 2], document), b"",
                weights={"c": stored.T.copy()}.__getitem__)
    np.testing.assert_array_equal(plan.constants[1], stored)
    assert plan.constants[1].flags.c_contiguous
    refused(document, "not the one compiled", b"", weights={"c": stored.copy()}.__getitem__)


def test_a_weights_callback_returning_no_array_is_a_format_error():
    document, _ = weightless("T")
    refused(document, "damaged TEMPLATE plan: AttributeError", b"",
            weights={"c": [[0.0, 1.0], [2.0, 3.0]]}.__getitem__)


def test_dumps_weightless_stores_names_and_checksums_not_bytes():
    plan = load(changed("weights", {"1": ["c", ""]}))
    data = plan_format.dumps(plan, weightless=True)
    assert CONSTANT.tobytes() not in data
    again = plan_format.loads(data, weights={"c": CONSTANT.copy()}.__getitem__)
    np.testing.assert_array_equal(again.constants[1], CONSTANT)
    with pytest.raises(BlobFormatError, match="not the one compiled"):
        plan_format.loads(data, weights={"c": CONSTANT + 1}.__getitem__)
    full = plan_format.dumps(plan)
    assert CONSTANT.tobytes() in full
    np.testing.assert_array_equal(plan_format.loads(full).constants[1], CONSTANT)


def test_validate_follows_what_running_the_plan_does():
    refused(changed("steps.0.in", [2, 1]), "reads slot 2, which nothing wrote")
    two = changed("num_slots", 4)
    two["steps"].append({"op": "Relu", "name": "relu", "in": [0], "out": [3], "attrs": {},
                         "release": []})
    two["outputs"][0]["slot"] = 3
    refused(two, "'relu' \\(Relu\\) reads slot 0")  # released by the step before
    two["steps"][0]["release"] = []
    assert load(two).output_slots == [3]
    assert load(changed("outputs.0.slot", 0, changed("steps.0.release", []))).output_slots == [0]
    refused(changed("outputs.0.slot", 0), "output slot 0 of the plan is never written")
    assert load(changed("outputs.0.slot", 1)).output_slots == [1]  # a constant output
    refused(changed("steps.0.out", [-1]), "output slot 2 of the plan is never written")
    refused(changed("outputs.0.slot", -1), "a port of the plan has no slot")
    refused(changed("inputs.0.slot", -1), "a port of the plan has no slot")
    document = changed("num_slots", 4)
    document["inputs"].append({"name": "x2", "shape": [4], "dtype": "<f4", "slot": 0})
    refused(document, "two inputs of the plan share a slot")
    # an output slot written, then released: not live at the end
    refused(changed("steps.0.release", [2]), "output slot 2 of the plan is never written")


def subgraph(depth: int) -> dict[str, Any]:
    """A subgraph plan nesting ``depth`` more If steps below it; its output is a constant."""
    plan: dict[str, Any] = {
        "opset": 17, "num_slots": 1, "weights": {}, "steps": [], "input_slots": [],
        "output_slots": [0],
        "constants": [{"slot": 0, "dtype": "<f4", "shape": [4], "offset": 0, "nbytes": 16}]}
    if depth:
        plan.update(num_slots=2, output_slots=[1], steps=[_if(subgraph(depth - 1))])
    return plan


def _if(branch: dict[str, Any]) -> dict[str, Any]:
    return {"op": "If", "name": "if", "in": [0], "out": [1],
            "attrs": {"then_branch": {"plan": branch}, "else_branch": 0},
            "release": []}


def nested(depth: int) -> dict[str, Any]:
    """The base plan with an If step whose branches nest ``depth`` subgraphs in all."""
    document = changed("num_slots", 4)
    document["steps"].append(_if(subgraph(depth - 1)))
    document["steps"][1]["in"] = [1]
    document["steps"][1]["out"] = [3]
    return document


def test_subgraphs_nest_at_most_sixteen_deep():
    assert plan_format.MAX_SUBGRAPH_DEPTH == 16
    plan = load(nested(16))
    for _ in range(16):
        plan = plan.steps[-1].attrs["then_branch"]
        assert isinstance(plan, Plan) and plan.inputs == [] and plan.outputs == []
    assert plan.steps == [] and plan.output_slots == [0]
    refused(nested(17), "nests subgraphs deeper than 16")


def test_subgraphs_are_validated_and_their_slots_checked():
    document = nested(1)
    branch = document["steps"][1]["attrs"]["then_branch"]["plan"]
    branch["output_slots"], branch["num_slots"] = [1], 2
    refused(document, "output slot 1 of the plan is never written")
    branch["num_slots"] = 1
    branch["output_slots"] = [2]
    refused(document, "slot out of range")
    branch["output_slots"] = [0]
    branch["input_slots"] = [-1]
    refused(document, "a port of the plan has no slot")
    branch["input_slots"] = None
    refused(document, "slot out of range")
    document["steps"][1]["attrs"]["then_branch"] = {"plan": [1]}
    refused(document, "subgraph plan")
    loaded = load(nested(1)).steps[1].attrs["then_branch"]
    assert (loaded.input_slots, loaded.output_slots, loaded.num_slots) == ([], [0], 1)


def test_subgraph_plans_round_trip_through_dumps():
    plan = load(nested(3))
    again = plan_format.loads(plan_format.dumps(plan))
    inner = again.steps[1].attrs["then_branch"].steps[0].attrs["then_branch"]
    assert isinstance(inner, Plan) and inner.output_slots == [1]
    np.testing.assert_array_equal(inner.constants[0], CONSTANT)


def json_depth_of(document: Any) -> int:
    if isinstance(document, dict):
        return 1 + max((json_depth_of(v) for v in document.values()), default=0)
    if isinstance(document, list):
        return 1 + max((json_depth_of(v) for v in document), default=0)
    return 0


def test_the_topology_nests_at_most_116_levels():
    """16 + 5 * (MAX_SUBGRAPH_DEPTH + 4): room for the deepest plan allowed, and no more."""
    base_depth = json_depth_of(base())  # the attribute value starts at steps.0.attrs.a

    def with_list_of_depth(levels: int) -> dict[str, Any]:
        value: Any = 0
        for _ in range(levels):
            value = [value]
        return changed("steps.0.attrs", {"a": value})

    deepest = 116 - base_depth + 1 - 1  # levels of the list that make the whole 116 deep
    document = with_list_of_depth(deepest)
    while json_depth_of(document) < 116:
        deepest += 1
        document = with_list_of_depth(deepest)
    assert json_depth_of(document) == 116
    assert load(document).steps[0].attrs["a"] is not None
    refused(with_list_of_depth(deepest + 1), "deep")


def test_damaged_topologies_are_format_errors():
    for text in (b"", b"{", b"[]", b"null", b'{"opset": 1e999}', b"\xff\xfe", b'"plan"'):
        with pytest.raises(BlobFormatError):
            plan_format.loads(payload(text))
    for name in ("constants", "steps", "weights", "opset", "num_slots", "inputs"):
        document = base()
        del document[name]
        refused(document, name)


def sparse_frame(path, topology: bytes, data_length: int, topology_length: int | None = None):
    """A frame of the plan's kind whose sections are mostly holes in a sparse file (no disk or
    memory spent on them), mapped read-only."""
    import mmap
    import struct

    topology_length = len(topology) if topology_length is None else topology_length
    data_offset = -(-topology_length // 64) * 64
    table = struct.pack("<QQQQ", 0, topology_length, data_offset, data_length)
    trailer = struct.pack("<8sIII8s", plan_format.KIND, plan_format.FORMAT_VERSION, 0, 2,
                          b"EMFRAME\0")
    size = data_offset + data_length + len(table) + len(trailer)
    with open(path, "wb") as file:
        file.write(topology)
        file.truncate(size)
        file.seek(size - len(table) - len(trailer))
        file.write(table + trailer)
    with open(path, "rb") as file:
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def test_the_data_section_may_hold_a_tebibyte_and_no_more(tmp_path):
    text = json.dumps(base()).encode()
    mapped = sparse_frame(tmp_path / "edge", text, 1 << 40)
    try:
        plan = plan_format.loads(mapped)
        assert plan.constants[1].tolist() == [0.0] * 4  # a hole reads as zeros
        del plan
    finally:
        mapped.close()
    mapped = sparse_frame(tmp_path / "over", text, (1 << 40) + 1)
    try:
        with pytest.raises(BlobFormatError, match=r"^TEMPLATE plan: section 1 has 1099511627777 "
                                                  r"bytes, more than 1099511627776$"):
            plan_format.loads(mapped)
    finally:
        mapped.close()


def test_the_topology_may_hold_256_mib_and_no_more(tmp_path):
    mapped = sparse_frame(tmp_path / "over", b"{}", 0, topology_length=(256 << 20) + 1)
    try:
        with pytest.raises(BlobFormatError, match=r"^TEMPLATE plan: section 0 has 268435457 "
                                                  r"bytes, more than 268435456$"):
            plan_format.loads(mapped)
    finally:
        mapped.close()


def test_a_weightless_constant_does_not_end_the_list_of_constants():
    document, _ = weightless()
    document["num_slots"] = 4
    document["constants"].append({"slot": 3, "dtype": "<f4", "shape": [4], "offset": 0,
                                  "nbytes": 16})
    plan = load(document, weights={"c": CONSTANT.copy()}.__getitem__)
    assert sorted(plan.constants) == [1, 3]
    np.testing.assert_array_equal(plan.constants[3], CONSTANT)


def test_an_empty_constant_is_a_constant():
    document = changed("num_slots", 4)
    document["constants"].append({"slot": 3, "dtype": "<f4", "shape": [0], "offset": 16,
                                  "nbytes": 0})
    plan = load(document)
    assert plan.constants[3].shape == (0,) and plan.constants[3].dtype == np.dtype("<f4")


def test_the_first_unwritten_output_is_named():
    document = changed("steps.0.release", [0, 1])  # neither the input nor the constant live
    document["outputs"] = [
        {"name": "y", "shape": [4], "dtype": "<f4", "slot": 1},
        {"name": "z", "shape": [4], "dtype": "<f4", "slot": 0}]
    refused(document, "output slot 1 of the plan is never written")


def test_an_unknown_attribute_encoding_names_at_most_four_of_its_keys():
    refused(changed("steps.0.attrs", {"a": dict.fromkeys("edcba", 1)}),
            r"unknown attribute encoding \['a', 'b', 'c', 'd'\]$")


def test_constants_are_laid_out_64_byte_aligned():
    """So that import views every weight in place, aligned as numpy's kernels like it."""
    document = changed("num_slots", 5)
    document["constants"] += [
        {"slot": 3, "dtype": "<f4", "shape": [3], "offset": 64, "nbytes": 12},
        {"slot": 4, "dtype": "<i8", "shape": [2], "offset": 128, "nbytes": 16}]
    data = (CONSTANT.tobytes() + bytes(48) + np.ones(3, "<f4").tobytes() + bytes(52)
            + np.arange(2, dtype="<i8").tobytes())
    plan = load(document, data)
    written = plan_format.dumps(plan)
    from ember.plugin import read_frame

    frame = read_frame(written, plan_format.KIND, plan_format.FORMAT_VERSION, sections=2)
    constants = json.loads(bytes(frame.sections[0]))["constants"]
    assert [c["offset"] for c in constants] == [0, 64, 128]
    assert frame.offsets[1] % 64 == 0
    again = plan_format.loads(written)
    assert again.constants[4].tolist() == [0, 1] and again.constants[3].tolist() == [1, 1, 1]


def test_dumps_refuses_a_plan_whose_ports_and_slots_disagree():
    plan = load(base())
    plan.input_slots.append(2)
    with pytest.raises(ValueError):
        plan_format.dumps(plan)
    plan = load(base())
    plan.output_slots.append(0)
    with pytest.raises(ValueError):
        plan_format.dumps(plan)


@pytest.mark.parametrize("dtype", [["<f4"], {"<f4": 1}, None])
def test_a_dtype_that_is_no_string_is_refused_as_such(dtype):
    refused(changed("constants.0.dtype", dtype), "^unsupported constant dtype")


def test_dumps_weightless_keeps_the_constants_after_a_weight():
    document = changed("num_slots", 4)
    document["constants"].append({"slot": 3, "dtype": "<f4", "shape": [4], "offset": 0,
                                  "nbytes": 16})
    plan = load(changed("weights", {"1": ["c", ""]}, document))
    again = plan_format.loads(plan_format.dumps(plan, weightless=True),
                              weights={"c": CONSTANT.copy()}.__getitem__)
    assert sorted(again.constants) == [1, 3]
    np.testing.assert_array_equal(again.constants[3], CONSTANT)


def test_a_plan_of_no_slots_loads():
    """A subgraph that computes nothing (a Loop body with no outputs, say) has no slots."""
    document = {"opset": 17, "num_slots": 0, "constants": [], "weights": {}, "steps": [],
                "inputs": [], "outputs": []}
    plan = load(document, b"")
    assert (plan.num_slots, plan.steps, plan.run([])) == (0, [], [])


def test_the_first_slot_a_step_cannot_read_is_named():
    document = changed("num_slots", 4)
    document["steps"][0]["in"] = [2, 3]
    refused(document, "reads slot 2, which nothing wrote")
