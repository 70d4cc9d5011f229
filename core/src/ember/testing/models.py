"""Small real ONNX models for tests, demos and device plugins' own test suites.

They are built with ``onnx.helper`` from seeded random weights, so they are the same on every run
and need no download. :func:`ppocr_cls_path` finds a real model nobody here wrote: PaddleOCR's
text-direction classifier, one of the files :mod:`ember.testing.model_files` fetches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ember.model.port import Port

OPSET = 17
PPOCR_CLS_FILE = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
#: The input shape PaddleOCR feeds its classifier (batch, channels, height, width).
PPOCR_CLS_INPUT_SHAPE = (1, 3, 48, 192)


def _weights(rng: np.random.Generator, name: str, *shape: int) -> TensorProto:
    scale = 1.0 / np.sqrt(np.prod(shape[1:]) if len(shape) > 1 else shape[0])
    values = (rng.standard_normal(shape) * scale).astype(np.float32)
    return numpy_helper.from_array(values, name)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime we support
    onnx.checker.check_model(model)
    return model


def mlp(seed: int = 0, features: int = 16, hidden: int = 32, classes: int = 10) -> onnx.ModelProto:
    """Gemm -> Relu -> MatMul + Add -> Tanh -> Gemm -> Softmax, with a dynamic batch."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1, name="fc1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("MatMul", ["a1", "w2"], ["m2"], name="fc2"),
        helper.make_node("Add", ["m2", "b2"], ["h2"], name="bias2"),
        helper.make_node("Tanh", ["h2"], ["a2"], name="tanh2"),
        helper.make_node("Gemm", ["a2", "w3", "b3"], ["logits"], name="fc3"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1, name="softmax"),
    ]
    initializers = [
        _weights(rng, "w1", hidden, features), _weights(rng, "b1", hidden),
        _weights(rng, "w2", hidden, hidden), _weights(rng, "b2", hidden),
        _weights(rng, "w3", hidden, classes), _weights(rng, "b3", classes),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])],
        initializers,
    )
    return _model(graph)


def cnn(seed: int = 0, channels: int = 3, size: int = 16, classes: int = 5) -> onnx.ModelProto:
    """Conv+BatchNorm+Relu, depthwise Conv, pools, Concat, Flatten, Gemm: a small classifier."""
    rng = np.random.default_rng(seed)
    width = 8
    bn = [numpy_helper.from_array(v.astype(np.float32), n) for n, v in [
        ("bn_scale", rng.uniform(0.5, 1.5, width)), ("bn_bias", rng.standard_normal(width) * 0.1),
        ("bn_mean", rng.standard_normal(width) * 0.1), ("bn_var", rng.uniform(0.5, 1.5, width)),
    ]]
    nodes = [
        helper.make_node("Conv", ["x", "conv1_w", "conv1_b"], ["c1"], pads=[1, 1, 1, 1],
                         name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
                         ["n1"], epsilon=1e-5, name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "dw_w"], ["c2"], group=width, pads=[1, 1, 1, 1],
                         name="depthwise"),
        helper.make_node("Sigmoid", ["c2"], ["s2"], name="gate"),
        helper.make_node("Mul", ["r1", "s2"], ["g2"], name="gated"),
        helper.make_node("MaxPool", ["g2"], ["p_max"], kernel_shape=[2, 2], strides=[2, 2],
                         name="maxpool"),
        helper.make_node("AveragePool", ["g2"], ["p_avg"], kernel_shape=[2, 2], strides=[2, 2],
                         name="avgpool"),
        helper.make_node("Concat", ["p_max", "p_avg"], ["cat"], axis=1, name="concat"),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    initializers = [
        _weights(rng, "conv1_w", width, channels, 3, 3), _weights(rng, "conv1_b", width),
        *bn,
        _weights(rng, "dw_w", width, 1, 3, 3),
        _weights(rng, "fc_w", classes, 2 * width), _weights(rng, "fc_b", classes),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", channels, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializers,
    )
    return _model(graph)


def dense_stack(layers: int, dim: int, seed: int = 0) -> onnx.ModelProto:
    """``layers`` x (Gemm dim x dim + bias -> Tanh), with a dynamic batch: weight-heavy, so that
    compiling, exporting and moving it take measurable time (4 * dim * dim bytes per layer)."""
    rng = np.random.default_rng(seed)
    nodes, initializers, previous = [], [], "x"
    for i in range(layers):
        weight = (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)
        bias = (rng.standard_normal(dim) * 0.1).astype(np.float32)
        initializers += [numpy_helper.from_array(weight, f"w{i}"),
                         numpy_helper.from_array(bias, f"b{i}")]
        nodes += [helper.make_node("Gemm", [previous, f"w{i}", f"b{i}"], [f"h{i}"], transB=1),
                  helper.make_node("Tanh", [f"h{i}"], [f"a{i}"])]
        previous = f"a{i}"
    graph = helper.make_graph(
        nodes, "dense_stack",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["batch", dim])],
        initializers,
    )
    return _model(graph)


def ppocr_cls_path() -> Path:
    """Path of PaddleOCR's text-direction classifier, from the files of rapidocr-onnxruntime 1.4.4
    (:func:`ember.testing.model_files.model_file`; ``make demo`` and ``make test`` fetch them).

    :raises FileNotFoundError: with the command that fetches it, when it is absent.
    """
    from ember.testing import model_files

    path = model_files.model_file(PPOCR_CLS_FILE)
    if path is None:
        raise FileNotFoundError(f"{PPOCR_CLS_FILE} not found; fetch it with: "
                                f"{model_files.FETCH_COMMAND}")
    return path


def random_inputs(ports: Sequence[Port], seed: int = 0, batch: int = 2) -> dict[str, np.ndarray]:
    """Seeded inputs for a model's ports; dynamic dims become ``batch`` (first) or 16."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for port in ports:
        shape = [d if isinstance(d, int) else (batch if i == 0 else 16)
                 for i, d in enumerate(port.shape)]
        inputs[port.name] = rng.standard_normal(shape).astype(port.dtype)
    return inputs
