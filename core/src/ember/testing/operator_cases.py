"""ONNX operator cases for checking a device's kernels: one-node models and their oracle.

TEMPLATE's kernel tests and the GPU device's operator tests run these cases, and a new device
can too: each case is ``pytest.param(op, inputs, attrs, opset, n_out, kernel_attrs, oracle,
id=...)``, checked against ``onnx.reference`` or, where the reference deviates from the ONNX
specification (noted next to the case), against onnxruntime. ``make_model`` builds a case's
model; ``combined_model`` puts many cases of one opset into one model (one build for devices
whose builds are slow); ``run_oracle`` gives the expected outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

REQUIRED_OPS = [
    "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Softmax", "Conv",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization",
    "Reshape", "Flatten", "Transpose", "Concat", "Identity", "Constant", "Clip", "HardSigmoid",
    "HardSwish", "LeakyRelu", "Cast", "Shape", "Slice", "Unsqueeze", "Squeeze", "Gather",
    "ConstantOfShape", "Pad", "ReduceMean", "ReduceSum", "ReduceMax", "Sqrt", "Exp", "Log", "Pow",
    "Neg", "Abs", "Erf", "Min", "Max", "Where", "Equal", "Less", "Greater", "Not", "Expand",
    "Tile", "Split", "Dropout", "Range",
]
# fmt: on

INT64_MAX = np.iinfo(np.int64).max
ORT = "onnxruntime"
rng = np.random.default_rng(20240601)


def f(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def pos(*shape: int) -> np.ndarray:
    return (rng.random(shape) + 0.1).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def case(
    op: str,
    inputs: list[np.ndarray | None],
    attrs: dict[str, Any] | None = None,
    opset: int = 17,
    n_out: int = 1,
    kernel_attrs: dict[str, Any] | None = None,
    id: str | None = None,
    oracle: str = "reference",
) -> Any:
    """One table row.

    kernel_attrs are extra attributes only the kernel sees.  oracle="onnxruntime" marks the few
    cases where onnx.reference deviates from the ONNX spec (noted next to each case).
    """
    name = id or f"{op}-{opset}"
    values = (op, inputs, attrs or {}, opset, n_out, kernel_attrs or {}, oracle)
    return pytest.param(*values, id=name)


def conv(
    x: np.ndarray, m: int, k: tuple[int, ...], group: int = 1, bias: bool = True, **attrs: Any
) -> tuple[list[np.ndarray | None], dict[str, Any]]:
    w = f(m, x.shape[1] // group, *k)
    return [x, w, f(m) if bias else None], {"group": group, **attrs}


def conv_case(id: str, *args: Any, **kwargs: Any) -> Any:
    inputs, attrs = conv(*args, **kwargs)
    return case("Conv", inputs, attrs, id=f"Conv-{id}")


def bn_inputs(x: np.ndarray) -> list[np.ndarray]:
    c = x.shape[1]
    return [x, f(c), f(c), f(c), pos(c)]


CASES = [
    # linear algebra
    case("MatMul", [f(3, 4), f(4, 5)], id="MatMul-2d"),
    case("MatMul", [f(2, 3, 4), f(4, 5)], id="MatMul-batched"),
    case("MatMul", [f(4), f(2, 4, 3)], id="MatMul-vector"),
    case("MatMul", [f(2, 1, 3, 4), f(3, 4, 2)], id="MatMul-broadcast"),
    case("Gemm", [f(3, 4), f(4, 5)], id="Gemm-noC"),
    case("Gemm", [f(3, 4), f(4, 5), f(5)], id="Gemm-Crow"),
    case("Gemm", [f(4, 3), f(4, 5), f(3, 1)], {"transA": 1}, id="Gemm-transA"),
    case(
        "Gemm",
        [f(3, 4), f(5, 4), f(3, 5)],
        {"transB": 1, "alpha": 0.5, "beta": 2.0},
        id="Gemm-transB-alpha-beta",
    ),
    case(
        "Gemm", [f(4, 3), f(5, 4), f(1)], {"transA": 1, "transB": 1, "beta": 0.25}, id="Gemm-both"
    ),
    # elementwise arithmetic
    case("Add", [f(2, 3, 4), f(4)], id="Add-broadcast"),
    case("Add", [i64(1, 2, 3), i64(4)], id="Add-int"),
    case("Sub", [f(2, 1, 4), f(3, 1)], id="Sub"),
    case("Mul", [f(2, 3), f(2, 3)], id="Mul"),
    case("Div", [f(2, 3), pos(3)], id="Div"),
    case("Div", [i64(7, -7, 7, -7, 6, -1, 0), i64(2, 2, -2, -2, 3, 5, 3)], id="Div-int-trunc"),
    case("Pow", [pos(2, 3), f(2, 3)], id="Pow"),
    case("Pow", [f(2, 3), np.array(2.0, np.float32)], id="Pow-scalar"),
    case("Sqrt", [pos(3, 4)]),
    case("Exp", [f(3, 4)]),
    case("Log", [pos(3, 4)]),
    case("Neg", [f(3, 4)]),
    case("Abs", [f(3, 4)]),
    case("Erf", [f(3, 4) * 2]),
    case("Min", [f(2, 3), f(3), f(1, 3)], id="Min-3"),
    case("Max", [f(2, 3), f(3), f(1, 3)], id="Max-3"),
    case("Max", [f(2, 3)], id="Max-1"),
    case("Where", [f(2, 3) > 0, f(2, 3), f(3)]),
    case("Equal", [np.array([1, 2, 3], np.float32), np.array([1, 0, 3], np.float32)]),
    case("Equal", [i64(1, 2, 3), i64(2)], id="Equal-int"),
    case("Less", [f(2, 3), f(3)]),
    case("Greater", [f(2, 3), f(3)]),
    case("Not", [f(2, 3) > 0]),
    case("Identity", [f(2, 3)]),
    case("Dropout", [f(2, 3)]),
    # activations
    case("Relu", [f(3, 4)]),
    case("Sigmoid", [f(3, 4) * 30], id="Sigmoid-wide-range"),
    case("Tanh", [f(3, 4)]),
    case("LeakyRelu", [f(3, 4)], id="LeakyRelu-default"),
    case("LeakyRelu", [f(3, 4)], {"alpha": 0.3}, id="LeakyRelu-alpha"),
    case("HardSigmoid", [f(3, 4) * 4], id="HardSigmoid-default"),
    case("HardSigmoid", [f(3, 4) * 4], {"alpha": 0.3, "beta": 0.4}, id="HardSigmoid-attrs"),
    case("HardSwish", [f(3, 4) * 4]),
    case("Softmax", [f(2, 3, 4)], id="Softmax-default-17"),
    case("Softmax", [f(2, 3, 4)], {"axis": 1}, id="Softmax-axis1-17"),
    case("Softmax", [f(2, 3, 4)], {"axis": 0}, id="Softmax-axis0-17"),
    # onnx.reference ignores the pre-13 "flatten to 2-D at axis" semantics.
    case("Softmax", [f(2, 3, 4)], opset=11, id="Softmax-default-11", oracle=ORT),
    case("Softmax", [f(2, 3, 4, 5)], {"axis": 2}, opset=11, id="Softmax-axis2-11", oracle=ORT),
    case("Softmax", [f(2, 3, 4)], {"axis": -1}, opset=11, id="Softmax-neg-11"),
    case("Clip", [f(3, 4)], {"min": -0.5, "max": 0.5}, opset=6, id="Clip-attrs-6"),
    case("Clip", [f(3, 4)], {"max": 0.1}, opset=6, id="Clip-max-only-6"),
    case(
        "Clip", [f(3, 4), np.array(-0.5, np.float32), np.array(0.5, np.float32)], id="Clip-inputs"
    ),
    case("Clip", [f(3, 4), None, np.array(0.2, np.float32)], id="Clip-max-input"),
    case("Clip", [f(3, 4), np.array(0.0, np.float32)], id="Clip-min-input"),
    case("Clip", [f(3, 4)], id="Clip-none"),
    case("Clip", [i64(-5, 0, 5), i64(-2), i64(3)], id="Clip-int"),
    # convolution
    conv_case("3x3-pad1", f(1, 3, 8, 8), 4, (3, 3), pads=[1, 1, 1, 1]),
    conv_case("stride2", f(2, 3, 9, 7), 5, (3, 3), strides=[2, 2], pads=[1, 1, 1, 1]),
    conv_case("dilation2", f(1, 2, 10, 10), 3, (3, 3), dilations=[2, 2]),
    conv_case("asym-pads", f(1, 2, 6, 7), 3, (3, 2), pads=[0, 1, 2, 0]),
    conv_case("group2", f(1, 4, 6, 6), 6, (3, 3), group=2, pads=[1, 1, 1, 1]),
    conv_case("depthwise", f(2, 6, 9, 9), 6, (3, 3), group=6, strides=[2, 2], pads=[1, 1, 1, 1]),
    conv_case("depthwise-mult2", f(1, 3, 7, 7), 6, (3, 3), group=3, pads=[1, 1, 1, 1]),
    conv_case("1x1", f(1, 8, 5, 6), 4, (1, 1)),
    conv_case("no-bias", f(1, 3, 6, 6), 2, (3, 3), bias=False),
    conv_case("same-upper", f(1, 2, 7, 8), 3, (3, 3), auto_pad="SAME_UPPER", strides=[2, 2]),
    conv_case("same-lower", f(1, 2, 7, 8), 3, (4, 4), auto_pad="SAME_LOWER", strides=[2, 2]),
    conv_case("same-upper-even", f(1, 2, 6, 6), 3, (2, 2), auto_pad="SAME_UPPER"),
    conv_case("valid", f(1, 2, 7, 8), 3, (3, 3), auto_pad="VALID", strides=[2, 1]),
    conv_case("1d", f(2, 4, 11), 6, (3,), pads=[1, 1]),
    conv_case("1d-group-stride", f(1, 4, 12), 4, (5,), group=2, strides=[3], dilations=[2]),
    conv_case("3d", f(1, 2, 4, 5, 6), 3, (2, 3, 3), pads=[0, 1, 1, 1, 1, 0]),
    # pooling
    case("MaxPool", [f(1, 3, 8, 8)], {"kernel_shape": [2, 2], "strides": [2, 2]}, id="MaxPool-2x2"),
    case(
        "MaxPool",
        [f(2, 3, 9, 9)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
        id="MaxPool-pads",
    ),
    case(
        "MaxPool",
        [f(1, 2, 7, 8)],
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
        id="MaxPool-ceil",
    ),
    case(
        "MaxPool",
        [f(1, 2, 7, 7)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
        id="MaxPool-ceil-pads",
    ),
    case(
        "MaxPool",
        [f(1, 2, 9, 9)],
        {"kernel_shape": [2, 2], "dilations": [2, 2]},
        id="MaxPool-dilations",
    ),
    case(
        "MaxPool",
        [f(1, 2, 7, 8)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
        id="MaxPool-same-upper",
    ),
    # onnx.reference gets the output shape of strided SAME_LOWER max pooling wrong.
    case(
        "MaxPool",
        [f(1, 2, 7, 8)],
        {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_LOWER"},
        id="MaxPool-same-lower",
        oracle=ORT,
    ),
    case(
        "MaxPool",
        [f(1, 2, 7, 7)],
        {"kernel_shape": [3, 3], "strides": [3, 3], "ceil_mode": 1},
        id="MaxPool-ceil-stride3",
    ),
    case("MaxPool", [f(2, 3, 10)], {"kernel_shape": [3], "strides": [2]}, id="MaxPool-1d"),
    case(
        "MaxPool",
        [-pos(1, 1, 4, 4)],
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
        id="MaxPool-negative-pads-not-zero",
    ),
    case(
        "AveragePool",
        [f(1, 3, 8, 8)],
        {"kernel_shape": [2, 2], "strides": [2, 2]},
        id="AveragePool-2x2",
    ),
    case(
        "AveragePool",
        [f(1, 2, 7, 7)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
        id="AveragePool-pads-exclude",
    ),
    case(
        "AveragePool",
        [f(1, 2, 7, 7)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        id="AveragePool-pads-include",
    ),
    case(
        "AveragePool",
        [f(1, 2, 7, 8)],
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
        id="AveragePool-ceil",
    ),
    case(
        "AveragePool",
        [f(1, 2, 8, 8)],
        {
            "kernel_shape": [3, 3],
            "strides": [2, 2],
            "pads": [1, 1, 1, 1],
            "ceil_mode": 1,
            "count_include_pad": 1,
        },
        id="AveragePool-ceil-include",
    ),
    case(
        "AveragePool",
        [f(1, 2, 6, 6)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 1, 1, 0], "ceil_mode": 1},
        id="AveragePool-ceil-asym",
    ),
    case(
        "AveragePool",
        [f(1, 2, 7, 8)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
        id="AveragePool-same-upper",
    ),
    case("AveragePool", [f(2, 3, 10)], {"kernel_shape": [4], "strides": [3]}, id="AveragePool-1d"),
    case(
        "AveragePool",
        [f(1, 2, 7, 7)],
        {"kernel_shape": [3, 3], "strides": [3, 3], "ceil_mode": 1, "pads": [1, 0, 0, 1]},
        id="AveragePool-ceil-stride3",
    ),
    case("GlobalAveragePool", [f(2, 3, 5, 6)]),
    case("GlobalAveragePool", [f(2, 3, 5)], id="GlobalAveragePool-1d"),
    case("GlobalMaxPool", [f(2, 3, 5, 6)]),
    case("BatchNormalization", bn_inputs(f(2, 3, 4, 5)), id="BatchNormalization-4d"),
    case("BatchNormalization", bn_inputs(f(4, 3)), {"epsilon": 1e-3}, id="BatchNormalization-2d"),
    # shape manipulation
    case("Reshape", [f(2, 3, 4), i64(0, -1)], id="Reshape-zero-copy"),
    case("Reshape", [f(2, 3, 4), i64(4, 3, 2)], id="Reshape"),
    case("Reshape", [f(0, 3), i64(3, 0)], {"allowzero": 1}, id="Reshape-allowzero"),
    case("Flatten", [f(2, 3, 4)], id="Flatten-default"),
    case("Flatten", [f(2, 3, 4)], {"axis": 0}, id="Flatten-0"),
    case("Flatten", [f(2, 3, 4)], {"axis": -1}, id="Flatten-neg"),
    case("Transpose", [f(2, 3, 4)], id="Transpose-default"),
    case("Transpose", [f(2, 3, 4)], {"perm": [1, 2, 0]}, id="Transpose-perm"),
    case("Concat", [f(2, 3), f(2, 1), f(2, 2)], {"axis": 1}, id="Concat-axis1"),
    case("Concat", [f(1, 2, 3), f(1, 2, 3)], {"axis": -3}, id="Concat-neg"),
    case("Unsqueeze", [f(2, 3), i64(0, -1)], id="Unsqueeze-17"),
    case("Unsqueeze", [f(2, 3), i64(1)], id="Unsqueeze-17-middle"),
    case("Unsqueeze", [f(2, 3)], {"axes": [0, 3]}, opset=11, id="Unsqueeze-11"),
    case("Squeeze", [f(1, 3, 1, 2), i64(-2)], id="Squeeze-17"),
    case("Squeeze", [f(1, 3, 1, 2)], id="Squeeze-17-all"),
    case("Squeeze", [f(1, 3, 1, 2)], {"axes": [0]}, opset=11, id="Squeeze-11"),
    case("Squeeze", [f(1, 3, 1, 2)], opset=11, id="Squeeze-11-all"),
    case("Slice", [f(5, 6), i64(1, 0), i64(4, INT64_MAX)], id="Slice-basic"),
    case("Slice", [f(5, 6), i64(-1), i64(-INT64_MAX), i64(1), i64(-1)], id="Slice-reverse"),
    case("Slice", [f(5, 6), i64(-100), i64(2), i64(0), i64(-2)], id="Slice-neg-step-clamp"),
    case("Slice", [f(5, 6), i64(100), i64(-100), i64(-1), i64(-3)], id="Slice-step-neg3"),
    case("Slice", [f(5, 6, 7), i64(1, 2), i64(5, 7), i64(-1, 0), i64(2, 1)], id="Slice-axes-steps"),
    case("Slice", [f(4), i64(3), i64(1)], id="Slice-empty"),
    case(
        "Slice", [f(5, 6)], {"starts": [1], "ends": [INT64_MAX], "axes": [1]}, opset=9, id="Slice-9"
    ),
    case("Slice", [f(5, 6)], {"starts": [-3, 1], "ends": [-1, 100]}, opset=9, id="Slice-9-noaxes"),
    case("Gather", [f(5, 3), i64(0, 2, -1)], id="Gather-axis0"),
    case("Gather", [f(2, 5, 3), i64(1, -2, 4).reshape(3, 1)], {"axis": 1}, id="Gather-axis1"),
    case("Gather", [i64(3, 4, 5), np.array(-1, np.int64)], id="Gather-scalar"),
    case("Gather", [f(2, 5), np.array([0, 4], np.int32)], {"axis": -1}, id="Gather-int32"),
    case("Expand", [f(3, 1), i64(2, 3, 4)], id="Expand"),
    case("Expand", [f(3, 4), i64(1, 1)], id="Expand-smaller-shape"),
    case("Tile", [f(2, 3), i64(2, 3)]),
    case("Split", [f(4, 6)], {"axis": 1, "split": [2, 4]}, opset=11, n_out=2, id="Split-11"),
    case(
        "Split", [f(6, 2)], opset=11, n_out=3, kernel_attrs={"num_outputs": 3}, id="Split-11-equal"
    ),
    case("Split", [f(4, 6), i64(1, 2, 3)], {"axis": -1}, n_out=3, id="Split-17-input"),
    case(
        "Split",
        [f(4, 6)],
        {"axis": 1},
        n_out=2,
        kernel_attrs={"num_outputs": 2},
        id="Split-17-equal",
    ),
    case("Split", [f(7, 2)], {"num_outputs": 3}, opset=18, n_out=3, id="Split-18-uneven"),
    case("Pad", [f(2, 3), i64(1, 0, 2, 3)], id="Pad-constant"),
    case("Pad", [f(2, 3), i64(0, 1, 1, 2), np.array(1.5, np.float32)], id="Pad-value"),
    # onnx.reference hands negative pads straight to np.pad, which rejects them.
    case("Pad", [f(3, 4), i64(-1, 1, 0, -2)], id="Pad-negative", oracle=ORT),
    case("Pad", [f(3, 4), i64(2, 1, 1, 2)], {"mode": "reflect"}, id="Pad-reflect"),
    case("Pad", [f(3, 4), i64(2, 1, 1, 2)], {"mode": "edge"}, id="Pad-edge"),
    case("Pad", [f(1, 2, 3, 4), i64(1, 2, 3, 4), None, i64(2, -1)], opset=18, id="Pad-axes"),
    case("Pad", [f(2, 3)], {"pads": [1, 0, 2, 3], "value": 2.0}, opset=2, id="Pad-2"),
    case(
        "Pad", [f(3, 4)], {"pads": [1, 1, 1, 1], "mode": "reflect"}, opset=10, id="Pad-10-reflect"
    ),
    # reductions
    case("ReduceMean", [f(2, 3, 4)], {"axes": [1]}, id="ReduceMean-17"),
    case("ReduceMean", [f(2, 3, 4)], {"axes": [-1, 0], "keepdims": 0}, id="ReduceMean-17-nokeep"),
    case("ReduceMean", [f(2, 3, 4)], id="ReduceMean-17-all"),
    case("ReduceMean", [f(2, 3, 4), i64(2)], opset=18, id="ReduceMean-18"),
    case("ReduceSum", [f(2, 3, 4), i64(1)], id="ReduceSum-17"),
    case("ReduceSum", [f(2, 3, 4)], {"keepdims": 0}, id="ReduceSum-17-all"),
    case("ReduceSum", [f(2, 3, 4)], {"noop_with_empty_axes": 1}, id="ReduceSum-17-noop"),
    case("ReduceSum", [f(2, 3, 4)], {"axes": [0, 2]}, opset=11, id="ReduceSum-11"),
    case("ReduceSum", [i64(1, 2, 3, 4).reshape(2, 2), i64(0)], id="ReduceSum-int"),
    case("ReduceMax", [f(2, 3, 4)], {"axes": [1], "keepdims": 0}, id="ReduceMax-17"),
    case("ReduceMax", [f(2, 3, 4), i64(-1)], opset=18, id="ReduceMax-18"),
    # creation and type
    case("Constant", [], {"value": f(2, 3)}, id="Constant-tensor"),
    case("Constant", [], {"value_float": 1.5}, id="Constant-float"),
    case("Constant", [], {"value_floats": [1.5, -2.0]}, id="Constant-floats"),
    case("Constant", [], {"value_int": 7}, id="Constant-int"),
    case("Constant", [], {"value_ints": [1, -2, 3]}, id="Constant-ints"),
    case("ConstantOfShape", [i64(2, 3)], id="ConstantOfShape-default"),
    case(
        "ConstantOfShape", [i64(2, 3)], {"value": np.array([5], np.int64)}, id="ConstantOfShape-int"
    ),
    case(
        "ConstantOfShape",
        [i64()],
        {"value": np.array([2.5], np.float32)},
        id="ConstantOfShape-scalar",
    ),
    case(
        "Range",
        [np.array(1, np.float32), np.array(3.2, np.float32), np.array(0.3, np.float32)],
        id="Range-float",
    ),
    case(
        "Range",
        [np.array(10, np.int64), np.array(2, np.int64), np.array(-3, np.int64)],
        id="Range-int-negative",
    ),
    case(
        "Range",
        [np.array(5, np.int64), np.array(2, np.int64), np.array(1, np.int64)],
        id="Range-empty",
    ),
    case("Shape", [f(2, 3, 4)], id="Shape"),
    case("Shape", [f(2, 3, 4)], {"start": 1}, id="Shape-start"),
    case("Shape", [f(2, 3, 4, 5)], {"start": -3, "end": -1}, id="Shape-start-end"),
    case("Shape", [f(2, 3, 4)], opset=13, id="Shape-13"),
    case("Cast", [f(3, 4) * 10], {"to": onnx.TensorProto.INT64}, id="Cast-to-int64"),
    case("Cast", [i64(1, -2, 3)], {"to": onnx.TensorProto.FLOAT}, id="Cast-to-float"),
    case("Cast", [f(3, 4)], {"to": onnx.TensorProto.FLOAT16}, id="Cast-to-float16"),
    case("Cast", [f(3, 4)], {"to": onnx.TensorProto.BOOL}, id="Cast-to-bool"),
]


def make_model(
    op: str, inputs: list[np.ndarray | None], attrs: dict[str, Any], opset: int, n_out: int
) -> onnx.ModelProto:
    """The case as its own one-node model (inputs in0, in1...; outputs out0, out1...)."""
    return combined_model([("", op, inputs, attrs, n_out)], opset)


def combined_model(cases: list[tuple[str, str, list[np.ndarray | None], dict[str, Any], int]],
                   opset: int) -> onnx.ModelProto:
    """One model holding one node per case, each with its own inputs and outputs: the case
    prefix ``p`` names them ``{p}in0``, ``{p}out0``..."""
    nodes, graph_inputs, graph_outputs = [], [], []
    for prefix, op, inputs, attrs, n_out in cases:
        names = ["" if x is None else f"{prefix}in{i}" for i, x in enumerate(inputs)]
        graph_inputs += [
            helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
            for name, x in zip(names, inputs, strict=True)
            if x is not None
        ]
        outputs = [f"{prefix}out{i}" for i in range(n_out)]
        node_attrs = {k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v
                      for k, v in attrs.items()}
        nodes.append(helper.make_node(op, names, outputs, name=f"{prefix}{op}", **node_attrs))
        graph_outputs += [helper.make_empty_tensor_value_info(o) for o in outputs]
    graph = helper.make_graph(nodes, "cases", graph_inputs, graph_outputs)
    # IR 8 covers every opset used here and is old enough for the installed onnxruntime.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def run_oracle(
    model: onnx.ModelProto, inputs: list[np.ndarray | None], oracle: str = "reference"
) -> list[np.ndarray]:
    feeds = {f"in{i}": x for i, x in enumerate(inputs) if x is not None}
    if oracle == ORT:
        import onnxruntime as ort  # only for the cases onnx.reference gets wrong

        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        return [np.asarray(o) for o in session.run(None, feeds)]
    return [np.asarray(o) for o in ReferenceEvaluator(model).run(None, feeds)]
