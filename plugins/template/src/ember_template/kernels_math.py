"""Elementwise math, logic and activation kernels for the TEMPLATE device (beyond kernels.py's).

Each keeps its input's dtype (comparisons and predicates give bool), as ONNX's definitions do;
constants are typed like the input so that float32 math stays float32.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ember_template.kernel_registry import (
    Attrs,
    Inputs,
    elementwise_kernel,
    register,
    stable_sigmoid,
    typed_scalar,
)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(x, typed_scalar(0, x.dtype))


_MATH: dict[str, Callable[..., Any]] = {
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.round,  # halves to even, as ONNX says
    "Reciprocal": np.reciprocal,
    "Sign": np.sign,
    "Sin": np.sin, "Cos": np.cos, "Tan": np.tan,
    "Asin": np.arcsin, "Acos": np.arccos, "Atan": np.arctan,
    "Sinh": np.sinh, "Cosh": np.cosh,
    "Asinh": np.arcsinh, "Acosh": np.arccosh, "Atanh": np.arctanh,
    "Softplus": _softplus,
    "Softsign": lambda x: x / (typed_scalar(1, x.dtype) + np.abs(x)),
    "Mish": lambda x: x * np.tanh(_softplus(x)),
    "Sum": lambda *xs: functools.reduce(np.add, xs),
    "Mean": lambda *xs: functools.reduce(np.add, xs) / typed_scalar(len(xs), xs[0].dtype),
    "PRelu": lambda x, slope: np.where(x < 0, x * slope, x),
    "BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or, "BitwiseXor": np.bitwise_xor,
    "BitwiseNot": np.bitwise_not,
}
for _op, _fn in _MATH.items():
    register(_op)(elementwise_kernel(_fn))

_PREDICATES: dict[str, Callable[..., Any]] = {
    "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor,
    "LessOrEqual": np.less_equal, "GreaterOrEqual": np.greater_equal,
    "IsNaN": np.isnan,
}
for _op, _fn in _PREDICATES.items():
    register(_op)(elementwise_kernel(_fn, dtype_of=None))


@register("IsInf")
def is_inf(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    positive, negative = attrs.get("detect_positive", 1), attrs.get("detect_negative", 1)
    return [np.isinf(x) & (((x > 0) & bool(positive)) | ((x < 0) & bool(negative)))]


@register("Elu")
def elu(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, alpha = inputs[0], typed_scalar(attrs.get("alpha", 1.0), inputs[0].dtype)
    return [np.where(x >= 0, x, alpha * np.expm1(np.minimum(x, typed_scalar(0, x.dtype))))]


@register("Celu")
def celu(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, alpha = inputs[0], typed_scalar(attrs.get("alpha", 1.0), inputs[0].dtype)
    zero = typed_scalar(0, x.dtype)
    return [np.maximum(x, zero) + np.minimum(zero, alpha * np.expm1(np.minimum(x, zero) / alpha))]


@register("Selu")
def selu(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    alpha = typed_scalar(attrs.get("alpha", 1.67326319217681884765625), x.dtype)
    gamma = typed_scalar(attrs.get("gamma", 1.05070102214813232421875), x.dtype)
    return [gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, typed_scalar(0, x.dtype))))]


@register("ThresholdedRelu")
def thresholded_relu(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    alpha = typed_scalar(attrs.get("alpha", 1.0), x.dtype)
    return [np.where(x > alpha, x, typed_scalar(0, x.dtype))]


@register("Shrink")
def shrink(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    bias, lambd = attrs.get("bias", 0.0), attrs.get("lambd", 0.5)
    y = np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0))
    return [y.astype(x.dtype)]


@register("Gelu")
def gelu(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    if attrs.get("approximate", "none") in ("tanh", b"tanh"):
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        return [(0.5 * x * (1 + np.tanh(inner))).astype(x.dtype)]
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return [(0.5 * x * (1 + erf(x / math.sqrt(2)))).astype(x.dtype)]


@register("Swish")
def swish(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    return [x * stable_sigmoid(x * typed_scalar(attrs.get("alpha", 1.0), x.dtype))]


@register("Mod")
def mod(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    a, b = inputs[0], inputs[1]
    if attrs.get("fmod", 0):
        return [np.fmod(a, b)]  # the sign of the dividend, as C's fmod
    if np.issubdtype(a.dtype, np.floating):
        return [np.mod(a, b)]
    return [np.mod(a, b).astype(a.dtype)]  # integers: the sign of the divisor, as Python's


@register("LogSoftmax")
def log_softmax(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    if opset >= 13:
        axis = attrs.get("axis", -1)
        shifted = x - x.max(axis=axis, keepdims=True)
        return [shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))]
    axis = attrs.get("axis", 1) % max(x.ndim, 1)
    flat = x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    shifted = flat - flat.max(axis=1, keepdims=True)
    return [(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).reshape(x.shape)]


@register("Hardmax")
def hardmax(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    if opset < 13:
        axis = attrs.get("axis", 1) % max(x.ndim, 1)
        flat = x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
        return [hardmax([flat], {"axis": 1}, 13)[0].reshape(x.shape)]
    axis = attrs.get("axis", -1) % x.ndim
    first = np.expand_dims(np.argmax(x, axis=axis), axis)  # the first maximum wins
    y = np.zeros_like(x)
    np.put_along_axis(y, first, typed_scalar(1, x.dtype), axis=axis)
    return [y]
