"""The GPU device against onnxruntime on the real models that need Resize, ConvTranspose, If and
LSTM (PP-OCRv4's text detector, silero-vad's two ONNX files), and on small models that put
those operators' variants side by side (one program each, so that the builds stay few)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import ember
from ember.testing import reference_outputs
from ember.testing.model_files import FETCH_COMMAND, model_file
from ember.testing.zoo import zoo_model


def onnxruntime_outputs(model: Path | bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # silero's unused initializers are reported as warnings
    session = ort.InferenceSession(str(model) if isinstance(model, Path) else model, options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def assert_matches(got: tuple[np.ndarray, ...], want: list[np.ndarray], rtol: float = 1e-4,
                   atol: float = 1e-5) -> None:
    assert len(got) == len(want)
    for index, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape and g.dtype == w.dtype, index
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"output {index}")


def silero_file(name: str) -> Path:
    path = model_file(name)
    assert path is not None, f"{name} is absent: {FETCH_COMMAND} (make install runs it) adds it"
    return path


def test_ppocr_det_matches_onnxruntime(core: ember.Core, gpu_device: str) -> None:
    """Resize (nearest, scales) and ConvTranspose, in PaddleOCR's text detector."""
    path = zoo_model("ppocr-det").load()
    assert isinstance(path, Path)
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    compiled = core.compile_model(path, gpu_device)
    assert_matches(compiled({"x": x}).to_tuple(), onnxruntime_outputs(path, {"x": x}))


def test_silero_openvino_file_runs_its_lstm(core: ember.Core, gpu_device: str) -> None:
    """The LSTM (one step here) unrolled into kernels; its input shapes are static, so the
    program is built in compile_model."""
    path = silero_file("silero_vad_openvino_16k.onnx")
    rng = np.random.default_rng(1)
    feeds = {"input": (rng.standard_normal((1, 576)) * 0.1).astype(np.float32),
             "state": (rng.standard_normal((2, 1, 128)) * 0.1).astype(np.float32)}
    compiled = core.compile_model(path, gpu_device)
    assert len(compiled.device_model.specialisations) == 1  # built in compile
    assert_matches(compiled(feeds).to_tuple(), onnxruntime_outputs(path, feeds))


def test_silero_ifless_file_takes_the_branch_of_its_sample_rate(core: ember.Core,
                                                                gpu_device: str) -> None:
    """The If's condition depends on the input ``sr``: the device specialises on its value and
    lowers the branch taken."""
    path = silero_file("silero_vad_op18_ifless.onnx")
    rng = np.random.default_rng(2)
    feeds = {"input": (rng.standard_normal((1, 512)) * 0.1).astype(np.float32),
             "sr": np.array(16000, dtype=np.int64),
             "state": (rng.standard_normal((2, 1, 128)) * 0.1).astype(np.float32)}
    compiled = core.compile_model(path, gpu_device)
    assert_matches(compiled(feeds).to_tuple(), onnxruntime_outputs(path, feeds))


# -- the operators' variants, a few programs in all -----------------------------------------------


def _model(nodes: list, inputs: list, outputs: list[str], initializers: list,
           opset: int = 20) -> bytes:
    """A checked model whose outputs have the types and shapes ONNX infers for them."""
    graph = helper.make_graph(nodes, "variants", inputs, [], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    known = {v.name: v for v in inferred.graph.value_info}
    model.graph.output.extend(known[name] for name in outputs)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _tensor(name: str, array: np.ndarray) -> TensorProto:
    return onnx.numpy_helper.from_array(array, name)


def _float(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


RESIZES = [  # (mode, coordinate transformation, extra attributes, scales or sizes)
    ("nearest", "asymmetric", {"nearest_mode": "floor"}, ("scales", [1, 1, 2.0, 3.0])),
    ("nearest", "half_pixel", {"nearest_mode": "round_prefer_ceil"}, ("sizes", [1, 2, 5, 3])),
    ("linear", "half_pixel", {}, ("scales", [1, 1, 0.6, 1.7])),
    ("linear", "align_corners", {}, ("sizes", [1, 2, 7, 9])),
    ("linear", "pytorch_half_pixel", {"antialias": 1}, ("sizes", [1, 2, 3, 2])),
    ("cubic", "half_pixel", {"exclude_outside": 1}, ("scales", [1, 1, 1.5, 0.8])),
    ("cubic", "asymmetric", {"cubic_coeff_a": -0.5}, ("sizes", [1, 2, 8, 8])),
]


def test_resize_variants_match_onnxruntime(core: ember.Core, gpu_device: str) -> None:
    nodes, outputs, initializers = [], [], []
    for i, (mode, transform, extra, (kind, values)) in enumerate(RESIZES):
        array = np.array(values, np.float32 if kind == "scales" else np.int64)
        initializers.append(_tensor(f"{kind}{i}", array))
        operands = ["x", "", f"{kind}{i}"] if kind == "scales" else ["x", "", "", f"sizes{i}"]
        nodes.append(helper.make_node("Resize", operands, [f"y{i}"], mode=mode,
                                      coordinate_transformation_mode=transform, **extra))
        outputs.append(f"y{i}")
    model = _model(nodes, [_float("x", [1, 2, 4, 5])], outputs, initializers)
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 5)).astype(np.float32)
    got = core.compile_model(model, gpu_device)({"x": x}).to_tuple()
    assert_matches(got, onnxruntime_outputs(model, {"x": x}))


def test_resize_tf_crop_and_resize_matches_the_onnx_reference(core: ember.Core,
                                                              gpu_device: str) -> None:
    """A roi reaching outside the input: those positions take extrapolation_value. Compared
    with onnx.reference, which the node tests' expected outputs come from: onnxruntime 1.2x
    reads the roi differently here (it differs from the reference by up to 10)."""
    initializers = [_tensor("roi", np.array([0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3], np.float32)),
                    _tensor("sizes", np.array([1, 2, 4, 5], np.int64))]
    nodes = [helper.make_node("Resize", ["x", "roi", "", "sizes"], ["crop"], mode="linear",
                              extrapolation_value=-7.0,
                              coordinate_transformation_mode="tf_crop_and_resize")]
    model = _model(nodes, [_float("x", [1, 2, 4, 5])], ["crop"], initializers)
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 5)).astype(np.float32)
    (got,) = core.compile_model(model, gpu_device)({"x": x}).to_tuple()
    (want,) = reference_outputs(onnx.load_from_string(model), {"x": x})
    assert (got == -7.0).any() and (got != -7.0).any()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_recurrent_layers_and_conv_transpose_match_onnxruntime(core: ember.Core,
                                                               gpu_device: str) -> None:
    """LSTM bidirectional with peepholes, initial states and unequal lengths on the forward
    layer; GRU both ways of applying the reset gate; RNN with one activation per direction;
    ConvTranspose with strides, pads and output_padding. (onnxruntime runs no layout=1
    recurrent layer: the node tests' *_batchwise cases check that layout.)"""
    rng = np.random.default_rng(4)
    steps, batch, size, hidden = 3, 2, 4, 5

    def weights(name: str, *shape: int) -> TensorProto:
        return _tensor(name, (rng.standard_normal(shape) * 0.5).astype(np.float32))

    initializers = [
        weights("lw", 2, 4 * hidden, size), weights("lr", 2, 4 * hidden, hidden),
        weights("lb", 2, 8 * hidden), weights("lp", 2, 3 * hidden),
        weights("lh", 2, batch, hidden), weights("lc", 2, batch, hidden),
        weights("fw", 1, 4 * hidden, size), weights("fr", 1, 4 * hidden, hidden),
        _tensor("lens", np.array([3, 1], np.int32)),
        weights("gw", 1, 3 * hidden, size), weights("gr", 1, 3 * hidden, hidden),
        weights("gb", 1, 6 * hidden),
        weights("rw", 2, hidden, size), weights("rr", 2, hidden, hidden),
        weights("ct_w", 2, 3, 3, 3), weights("ct_b", 3),
    ]
    nodes = [
        helper.make_node("LSTM", ["x", "lw", "lr", "lb", "", "lh", "lc", "lp"],
                         ["ly", "lyh", "lyc"], hidden_size=hidden, direction="bidirectional"),
        helper.make_node("LSTM", ["x", "fw", "fr", "", "lens"], ["fy", "fyh"],
                         hidden_size=hidden),
        helper.make_node("GRU", ["x", "gw", "gr", "gb"], ["gy"], hidden_size=hidden,
                         direction="reverse"),
        helper.make_node("GRU", ["x", "gw", "gr", "gb"], ["gy1", "gyh1"], hidden_size=hidden,
                         linear_before_reset=1),
        helper.make_node("RNN", ["x", "rw", "rr"], ["ry", "ryh"], hidden_size=hidden,
                         direction="bidirectional", activations=["Relu", "Tanh"]),
        helper.make_node("ConvTranspose", ["image", "ct_w", "ct_b"], ["ct"], strides=[2, 3],
                         pads=[1, 0, 0, 1], output_padding=[1, 2]),
    ]
    outputs = ["ly", "lyh", "lyc", "fy", "fyh", "gy", "gy1", "gyh1", "ry", "ryh", "ct"]
    model = _model(nodes, [_float("x", [steps, batch, size]), _float("image", [1, 2, 4, 3])],
                   outputs, initializers)
    feeds = {"x": rng.standard_normal((steps, batch, size)).astype(np.float32),
             "image": rng.standard_normal((1, 2, 4, 3)).astype(np.float32)}
    got = core.compile_model(model, gpu_device)(feeds).to_tuple()
    assert_matches(got, onnxruntime_outputs(model, feeds))


def test_if_on_a_model_input_specialises_on_its_value(core: ember.Core, gpu_device: str) -> None:
    """Both branches, each read an outer value (captured) and its own initializer."""
    then_graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["then_out"])], "then", [],
        [_float("then_out", [2, 3])], [_tensor("one", np.ones((2, 3), np.float32))])
    else_graph = helper.make_graph(
        [helper.make_node("Mul", ["relu", "relu"], ["else_out"])], "else", [],
        [_float("else_out", [2, 3])])
    nodes = [helper.make_node("Relu", ["x"], ["relu"]),
             helper.make_node("If", ["flag"], ["y"], then_branch=then_graph,
                              else_branch=else_graph),
             helper.make_node("Identity", ["y"], ["out"])]
    model = _model(nodes, [_float("x", [2, 3]),
                           helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
                   ["out"], [])
    compiled = core.compile_model(model, gpu_device)
    x = np.random.default_rng(5).standard_normal((2, 3)).astype(np.float32)
    for flag in (True, False):
        feeds = {"x": x, "flag": np.array(flag)}
        assert_matches(compiled(feeds).to_tuple(), onnxruntime_outputs(model, feeds))
    assert len(compiled.device_model.specialisations) == 2


@pytest.mark.parametrize(("node", "reason"), [
    (helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic",
                      coordinate_transformation_mode="unknown_mode"), "coordinate_transformation"),
    (helper.make_node("Dropout", ["x", "", "training"], ["y"]), "training_mode"),
    (helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16), "bfloat16"),
])
def test_what_lowering_would_refuse_is_refused_in_compile(core: ember.Core, gpu_device: str,
                                                          node: onnx.NodeProto,
                                                          reason: str) -> None:
    """A model with a dynamic dimension is lowered at its first inference: whatever would be
    refused then is refused by compile_model."""
    model = helper.make_model(helper.make_graph(
        [node], "refused", [_float("x", ["batch", 4]),
                            helper.make_tensor_value_info("training", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)],
        [_tensor("scales", np.array([1, 2], np.float32))]),
        opset_imports=[helper.make_opsetid("", 20)])
    with pytest.raises(ember.errors.UnsupportedOperatorError, match=reason):
        core.compile_model(model.SerializeToString(), gpu_device)
