"""TEMPLATE's LSTM, GRU and RNN, If and Loop, end to end through Core, against onnxruntime.

The ONNX node tests cover only the forward direction without sequence lengths; these cases cover
the rest the issue asks for: reverse and bidirectional, with and without initial states and
sequence lengths, layout 1, and subgraphs reading outer values, nested, exported and imported.
"""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ember
from ember.plugin import BlobFormatError, write_frame
from ember.testing.reference import onnxruntime_outputs
from ember_template import plan_format

SEQ, BATCH, INPUT, HIDDEN = 5, 3, 4, 6
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "case", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _tensor(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _recurrent_case(op, direction, initial, lengths, extra=None, layout=0):
    """A one-node model and its inputs; ``layout`` 1 swaps the batch and time (or direction)
    axes of the same values."""
    rng = np.random.default_rng(hash((op, direction, initial, lengths)) % 2**32)
    dirs = 2 if direction == "bidirectional" else 1
    gates = GATES[op]
    weights = {
        "W": rng.standard_normal((dirs, gates * HIDDEN, INPUT)) * 0.5,
        "R": rng.standard_normal((dirs, gates * HIDDEN, HIDDEN)) * 0.5,
        "B": rng.standard_normal((dirs, 2 * gates * HIDDEN)) * 0.1,
    }
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    inputs = [_tensor("X", [SEQ, BATCH, INPUT])]
    feeds = {"X": rng.standard_normal((SEQ, BATCH, INPUT)).astype(np.float32)}
    node_inputs = ["X", "W", "R", "B", "", ""]
    if lengths:
        node_inputs[4] = "lengths"
        inputs.append(_tensor("lengths", [BATCH], TensorProto.INT32))
        feeds["lengths"] = np.array([SEQ, 2, 4], np.int32)
    if initial:
        node_inputs[5] = "h0"
        inputs.append(_tensor("h0", [dirs, BATCH, HIDDEN]))
        feeds["h0"] = rng.standard_normal((dirs, BATCH, HIDDEN)).astype(np.float32)
        if op == "LSTM":
            node_inputs.append("c0")
            inputs.append(_tensor("c0", [dirs, BATCH, HIDDEN]))
            feeds["c0"] = rng.standard_normal((dirs, BATCH, HIDDEN)).astype(np.float32)
    while node_inputs and not node_inputs[-1]:
        node_inputs.pop()
    names = ["Y", "Y_h", "Y_c"][: 3 if op == "LSTM" else 2]
    y_shape, state_shape = [SEQ, dirs, BATCH, HIDDEN], [dirs, BATCH, HIDDEN]
    if layout:
        y_shape, state_shape = [BATCH, SEQ, dirs, HIDDEN], [BATCH, dirs, HIDDEN]
        feeds = {k: v if k == "lengths" else v.swapaxes(0, 1) for k, v in feeds.items()}
        for value in inputs:
            if value.name != "lengths":
                dims = value.type.tensor_type.shape.dim
                dims[0].dim_value, dims[1].dim_value = dims[1].dim_value, dims[0].dim_value
        extra = {**(extra or {}), "layout": 1}
    outputs = [_tensor("Y", y_shape), *[_tensor(n, state_shape) for n in names[1:]]]
    node = helper.make_node(op, node_inputs, names, hidden_size=HIDDEN, direction=direction,
                            name="recurrent", **(extra or {}))
    return _model([node], inputs, outputs, initializers), feeds


def _run_template(model, feeds):
    compiled = ember.Core().compile_model(model.SerializeToString(), "TEMPLATE", {"CACHE_DIR": ""})
    return compiled, list(compiled(feeds).to_tuple())


def _assert_close(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("lengths", [False, True], ids=["full", "sequence_lens"])
@pytest.mark.parametrize("initial", [False, True], ids=["zero_state", "initial_state"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_match_onnxruntime(op, direction, initial, lengths):
    model, feeds = _recurrent_case(op, direction, initial, lengths)
    _, got = _run_template(model, feeds)
    _assert_close(got, onnxruntime_outputs(model, feeds))


def test_gru_linear_before_reset_matches_onnxruntime():
    model, feeds = _recurrent_case("GRU", "bidirectional", True, True,
                                   {"linear_before_reset": 1})
    _, got = _run_template(model, feeds)
    _assert_close(got, onnxruntime_outputs(model, feeds))


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_layout_1_is_layout_0_transposed(op):
    """onnxruntime refuses layout=1, so compare with TEMPLATE's own layout=0 run."""
    model, feeds = _recurrent_case(op, "bidirectional", True, True)
    _, expected = _run_template(model, feeds)
    batchwise, batchwise_feeds = _recurrent_case(op, "bidirectional", True, True, layout=1)
    _, got = _run_template(batchwise, batchwise_feeds)
    np.testing.assert_allclose(got[0], expected[0].transpose(2, 0, 1, 3), rtol=1e-5, atol=1e-6)
    for a, b in zip(got[1:], expected[1:], strict=True):
        np.testing.assert_allclose(a, b.swapaxes(0, 1), rtol=1e-5, atol=1e-6)


# -- If and Loop ------------------------------------------------------------------------------


def _if_model():
    """y = If(sum(x) > 0): x * w (w an outer initializer) else: Loop over x's rows adding them,
    with an If nested in the loop body that reads the outer `x` too."""
    w = numpy_helper.from_array(np.float32([[2.0, -1.0, 0.5]]), "w")
    then_branch = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["then_y"], name="scale")],
        "then", [], [_tensor("then_y", [4, 3])])
    inner_then = helper.make_graph([helper.make_node("Add", ["acc_in", "row"], ["inner_y"])],
                                   "inner_then", [], [_tensor("inner_y", [3])])
    inner_else = helper.make_graph([helper.make_node("Sub", ["acc_in", "row"], ["inner_y2"])],
                                   "inner_else", [], [_tensor("inner_y2", [3])])
    body = helper.make_graph(
        [helper.make_node("Gather", ["x", "i"], ["row"], axis=0, name="row_of_x"),
         helper.make_node("Cast", ["i"], ["i_float"], to=TensorProto.FLOAT),
         helper.make_node("Less", ["i_float", "two"], ["early"]),
         helper.make_node("If", ["early"], ["acc_out"], then_branch=inner_then,
                          else_branch=inner_else, name="nested_if"),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Mul", ["row", "two"], ["scan"])],
        "body",
        [_tensor("i", [], TensorProto.INT64), _tensor("cond_in", [], TensorProto.BOOL),
         _tensor("acc_in", [3])],
        [_tensor("cond_out", [], TensorProto.BOOL), _tensor("acc_out", [3]),
         _tensor("scan", [3])],
        [numpy_helper.from_array(np.float32(2.0), "two")])
    else_branch = helper.make_graph(
        [helper.make_node("Loop", ["trips", "", "zeros"], ["acc", "scans"], body=body,
                          name="rows"),
         helper.make_node("ReduceSum", ["scans", "axes0"], ["summed"], keepdims=1),
         helper.make_node("Add", ["summed", "acc"], ["else_row"]),
         helper.make_node("Expand", ["else_row", "shape43"], ["else_y"])],
        "else", [], [_tensor("else_y", [4, 3])],
        [numpy_helper.from_array(np.int64(4), "trips"),
         numpy_helper.from_array(np.zeros(3, np.float32), "zeros"),
         numpy_helper.from_array(np.int64([0]), "axes0"),
         numpy_helper.from_array(np.int64([4, 3]), "shape43")])
    nodes = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["positive"]),
             helper.make_node("If", ["positive"], ["y"], then_branch=then_branch,
                              else_branch=else_branch, name="branch")]
    return _model(nodes, [_tensor("x", [4, 3])], [_tensor("y", [4, 3])],
                  [w, numpy_helper.from_array(np.float32(0.0), "zero")])


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["then", "else-loop"])
def test_if_and_loop_match_onnxruntime_and_survive_export(sign):
    model = _if_model()
    x = (np.abs(np.random.default_rng(0).standard_normal((4, 3))) * sign).astype(np.float32)
    compiled, got = _run_template(model, {"x": x})
    _assert_close(got, onnxruntime_outputs(model, {"x": x}))
    imported = ember.Core().import_model(compiled.export_model(), "TEMPLATE")
    assert imported({"x": x})[0].tobytes() == got[0].tobytes()


def test_loop_that_runs_zero_times_gives_empty_scans():
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["v_in", "one"], ["v_out"]),
         helper.make_node("Identity", ["v_in"], ["scan"])],
        "body", [_tensor("i", [], TensorProto.INT64), _tensor("cond_in", [], TensorProto.BOOL),
                 _tensor("v_in", [2])],
        [_tensor("cond_out", [], TensorProto.BOOL), _tensor("v_out", [2]), _tensor("scan", [2])],
        [numpy_helper.from_array(np.float32([1.0, 1.0]), "one")])
    model = _model([helper.make_node("Loop", ["trips", "go", "v"], ["v_final", "scans"],
                                     body=body)],
                   [_tensor("trips", [], TensorProto.INT64), _tensor("go", [], TensorProto.BOOL),
                    _tensor("v", [2])],
                   [_tensor("v_final", [2]), _tensor("scans", [None, 2])])
    for trips, go in [(3, True), (0, True), (5, False)]:
        feeds = {"trips": np.array(trips, np.int64), "go": np.array(go),
                 "v": np.float32([1.0, 2.0])}
        _, got = _run_template(model, feeds)
        want = onnxruntime_outputs(model, feeds)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1].reshape(-1, 2).shape[0] == want[1].reshape(-1, 2).shape[0]


def _plan_bytes(document: dict) -> bytes:
    text = json.dumps(document).encode()
    return write_frame(plan_format.KIND, plan_format.FORMAT_VERSION, [text, b""])


def test_nested_subgraphs_are_bounded_when_read_back():
    """A hostile plan nesting subgraph plans without end is a BlobFormatError, not a crash."""
    leaf = {"opset": 17, "num_slots": 1, "constants": [], "weights": {}, "steps": [],
            "input_slots": [0], "output_slots": [0]}
    for _ in range(plan_format.MAX_SUBGRAPH_DEPTH + 2):
        leaf = {**leaf, "steps": [{"op": "If", "name": "n", "in": [0], "out": [0],
                                   "attrs": {"then_branch": {"plan": leaf}}, "release": []}]}
    top = {**leaf, "inputs": [{"name": "x", "shape": [1], "dtype": "<f4", "slot": 0}],
           "outputs": [{"name": "x", "shape": [1], "dtype": "<f4", "slot": 0}]}
    with pytest.raises(BlobFormatError, match="deeper"):
        plan_format.loads(_plan_bytes(top))
    with pytest.raises(BlobFormatError):  # a subgraph without its slots
        del leaf["input_slots"]
        plan_format.loads(_plan_bytes({**top, "steps": [{**top["steps"][0], "attrs": {
            "then_branch": {"plan": leaf}}}]}))


@pytest.mark.parametrize("backwards", [0, 1], ids=["forward", "backward"])
def test_scan_with_axes_directions_and_a_captured_value_matches_onnxruntime(backwards):
    """A running sum over axis 1 of x (scanned forwards or backwards), each step also adding an
    outer value, the per-step outputs stacked along axis 1."""
    body = helper.make_graph(
        [helper.make_node("Add", ["sum_in", "slice"], ["partial"]),
         helper.make_node("Add", ["partial", "offset"], ["sum_out"]),
         helper.make_node("Identity", ["sum_out"], ["step_out"])],
        "body", [_tensor("sum_in", [2]), _tensor("slice", [2])],
        [_tensor("sum_out", [2]), _tensor("step_out", [2])])
    node = helper.make_node("Scan", ["init", "x"], ["final", "steps"], body=body,
                            num_scan_inputs=1, scan_input_axes=[1],
                            scan_input_directions=[backwards], scan_output_axes=[1],
                            scan_output_directions=[backwards], name="running_sum")
    model = _model([node], [_tensor("init", [2]), _tensor("x", [2, 5])],
                   [_tensor("final", [2]), _tensor("steps", [2, 5])],
                   [numpy_helper.from_array(np.float32([0.5, -0.5]), "offset")])
    feeds = {"init": np.float32([1, 2]),
             "x": np.arange(10, dtype=np.float32).reshape(2, 5)}
    compiled, got = _run_template(model, feeds)
    _assert_close(got, onnxruntime_outputs(model, feeds))
    imported = ember.Core().import_model(compiled.export_model(), "TEMPLATE")
    assert imported(feeds)[1].tobytes() == got[1].tobytes()
