"""What the CPU device refuses at compile, although onnxruntime would build a session for it:
each case is one that onnxruntime, unguarded, fails or answers wrongly at the first inference."""

import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ember
from ember.errors import UnsupportedOperatorError


def _model(node, inputs, outputs, initializers=(), opset=19):
    graph = helper.make_graph([node], "limit", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _value(name, dtype, shape):
    """A value; ``None``: four dimensions of unknown size."""
    return helper.make_tensor_value_info(name, dtype,
                                         ["a", "b", "c", "d"] if shape is None else shape)


F = TensorProto.FLOAT


def _resize(scales):
    initializers = [] if scales is None else [numpy_helper.from_array(np.float32(scales), "s")]
    inputs = [_value("x", F, [1, 1, 2, 4])] + ([] if scales else [_value("s", F, [4])])
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="resize", mode="linear",
                            coordinate_transformation_mode="align_corners")
    return _model(node, inputs, [_value("y", F, None)], initializers)


def _dropout(training):
    initializers = [numpy_helper.from_array(np.array(training), "t")]
    node = helper.make_node("Dropout", ["x", "", "t"], ["y"], name="dropout")
    return _model(node, [_value("x", F, [3])], [_value("y", F, [3])], initializers)


REFUSED = {
    "bfloat16 input": (_model(
        helper.make_node("Cast", ["x"], ["y"], to=F, name="widen"),
        [_value("x", TensorProto.BFLOAT16, [2])], [_value("y", F, [2])]), "Cast", "BFLOAT16"),
    "float8 output": (_model(
        helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E5M2, name="narrow"),
        [_value("x", F, [2])], [_value("y", TensorProto.FLOAT8E5M2, [2])]), "Cast",
        "FLOAT8E5M2"),
    "training Dropout": (_dropout(True), "Dropout", "random"),
    "align_corners downsampling": (_resize([1, 1, 0.6, 0.6]), "Resize", "align_corners"),
    "align_corners with scales at run time": (_resize(None), "Resize", "align_corners"),
    "MaxUnpool with output_shape": (_model(
        helper.make_node("MaxUnpool", ["x", "i", "shape"], ["y"], kernel_shape=[2, 2],
                         strides=[2, 2], name="unpool"),
        [_value("x", F, [1, 1, 2, 2]), _value("i", TensorProto.INT64, [1, 1, 2, 2]),
         _value("shape", TensorProto.INT64, [4])], [_value("y", F, None)]), "MaxUnpool",
        "output_shape"),
    "ConvInteger with per-channel zero points": (_model(
        helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], name="qconv"),
        [_value("x", TensorProto.UINT8, [1, 1, 3, 3]),
         _value("w", TensorProto.UINT8, [2, 1, 2, 2]),
         _value("xz", TensorProto.UINT8, []), _value("wz", TensorProto.UINT8, [2])],
        [_value("y", TensorProto.INT32, None)], opset=10), "ConvInteger", "zero point"),
    "batch-first LSTM": (_model(
        helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=2, layout=1, name="rnn"),
        [_value("x", F, [1, 3, 2]), _value("w", F, [1, 8, 2]), _value("r", F, [1, 8, 2])],
        [_value("y", F, None)]), "LSTM", "layout"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_at_compile_naming_the_node_and_why(case):
    model, op_type, why = REFUSED[case]
    with pytest.raises(UnsupportedOperatorError) as caught:
        ember.Core().compile_model(model, "CPU", {"CACHE_DIR": ""})
    assert caught.value.op_type == op_type and caught.value.node_name
    assert why in str(caught.value) and why in caught.value.reason


ACCEPTED = {
    "align_corners upsampling by whole numbers": (_resize([1, 1, 2, 2]),
                                                  {"x": np.arange(8, dtype=np.float32)
                                                   .reshape(1, 1, 2, 4)}),
    "Dropout with training_mode false": (_dropout(False), {"x": np.float32([1, 2, 3])}),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_what_runs_right_is_accepted(case):
    model, feeds = ACCEPTED[case]
    compiled = ember.Core().compile_model(model, "CPU", {"CACHE_DIR": ""})
    from ember.testing.reference import reference_outputs

    expected = reference_outputs(onnx.load_from_string(model), feeds)
    np.testing.assert_allclose(compiled(feeds)[0], expected[0], rtol=1e-5)


def test_a_warm_start_runs_no_check(tmp_path):
    """The checks read the ONNX graph: a model imported from the cache never loads them."""
    script = textwrap.dedent(f"""
        import sys
        import ember
        from ember.testing import ppocr_cls_path
        compiled = ember.Core().compile_model(ppocr_cls_path(), "CPU",
                                              {{"CACHE_DIR": {str(tmp_path)!r}}})
        print(compiled.get_property("LOADED_FROM_CACHE"), "ember_cpu.limits" in sys.modules)
    """)
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(2)]
    assert runs == [["False", "True"], ["True", "False"]]


def test_the_graph_is_parsed_only_for_a_model_a_rule_may_be_about(tmp_path):
    """needs_graph looks for the rules' operators (as op_type bytes) and port types in the
    header: a model without them is compiled without parsing (nor importing onnx)."""
    from ember.testing import mlp, ppocr_cls_path
    from ember_cpu.limits import _RULES, needs_graph

    core = ember.Core()
    assert not needs_graph(core.read_model(ppocr_cls_path()))
    assert not needs_graph(core.read_model(mlp().SerializeToString()))
    def one_node(op, **attributes):
        node = helper.make_node(op, ["x"], ["y"], name="n", **attributes)
        graph = helper.make_graph([node], "g", [_value("x", F, [1])], [_value("y", F, [1])])
        return core.read_model(helper.make_model(graph).SerializeToString())

    about = {"Resize": {"coordinate_transformation_mode": "align_corners"},
             "LSTM": {"layout": 1}, "GRU": {"layout": 1}, "RNN": {"layout": 1}}
    for op in _RULES:
        assert needs_graph(one_node(op, **about.get(op, {}))), op
    # what such a rule is about is absent: nearest Resize (PP-OCR det's), batch-second layers
    assert not needs_graph(one_node("Resize", mode="nearest"))
    assert not needs_graph(one_node("LSTM", hidden_size=2))
    bf16 = mlp()
    bf16.graph.output[0].type.tensor_type.elem_type = TensorProto.BFLOAT16
    assert needs_graph(core.read_model(bf16.SerializeToString()))
    reshaped = core.read_model(mlp().SerializeToString())
    reshaped.reshape([2, 16])
    assert needs_graph(reshaped)  # its graph is built for onnxruntime anyway
    code = (f"import sys, ember; ember.Core().compile_model({str(ppocr_cls_path())!r}, 'CPU'); "
            "print('onnx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
