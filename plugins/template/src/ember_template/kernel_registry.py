"""The TEMPLATE device's kernel registry: ``KERNELS`` (operator name -> kernel), ``register``,
the kernel signature's types, and the helpers kernels share (optional inputs, attributes, typed
scalars, elementwise and reduction kernels).

Kernel modules (``kernels.py``, ``kernels_*.py``, ``control_flow.py``) import this module and
register into it; it imports none of them, so that no import runs in a circle. Importing
``ember_template.kernels`` imports every kernel module, and so fills ``KERNELS``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

# ONNX's TensorProto.DataType numbers, for Cast. Written out rather than imported from onnx: a warm
# start imports this module to run a cached plan, and importing onnx would cost it more than the
# rest of the start.
ONNX_DTYPES: dict[int, np.dtype] = {
    number: np.dtype(name) for number, name in {
        1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
        9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    }.items()
}
#: The ONNX data types Cast can produce here (others are refused when a model is compiled).
CAST_TARGETS = frozenset(ONNX_DTYPES)
ONNX_DTYPE_NAMES = {"FLOAT": 1, "UINT8": 2, "INT8": 3, "UINT16": 4, "INT16": 5, "INT32": 6,
                     "INT64": 7, "BOOL": 9, "FLOAT16": 10, "DOUBLE": 11, "UINT32": 12,
                     "UINT64": 13}

Inputs = Sequence["np.ndarray | None"]
Attrs = Mapping[str, Any]
Kernel = Callable[[Inputs, Attrs, int], list[np.ndarray]]

KERNELS: dict[str, Kernel] = {}


def register(*op_types: str) -> Callable[[Kernel], Kernel]:
    """Register a kernel under one or more op types."""

    def decorate(fn: Kernel) -> Kernel:
        @functools.wraps(fn)
        def kernel(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
            # Numpy ufuncs turn 0-d arrays into numpy scalars; callers always get ndarrays.
            return [np.asarray(out) for out in fn(inputs, attrs, opset)]

        KERNELS.update(dict.fromkeys(op_types, kernel))
        return kernel

    return decorate


# --- helpers ---------------------------------------------------------------------------------
def optional_input(inputs: Inputs, index: int) -> np.ndarray | None:
    return inputs[index] if len(inputs) > index else None


def int_list(values: Any) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def str_attr(attrs: Attrs, name: str, default: str) -> str:
    value = attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def axes_of(inputs: Inputs, attrs: Attrs, opset: int, since: int) -> list[int] | None:
    """Axes that moved from the ``axes`` attribute to input 1 at opset ``since``."""
    axes = optional_input(inputs, 1) if opset >= since else attrs.get("axes")
    return None if axes is None else int_list(axes)


def typed_scalar(value: float, dtype: np.dtype) -> np.generic:
    # Explicitly typed constants: float32 math must never be promoted to float64.
    return np.dtype(dtype).type(value)


def elementwise_kernel(fn: Callable[..., Any], dtype_of: int | None = 0) -> Kernel:
    """Kernel applying fn to all inputs, cast to input `dtype_of`'s dtype (None: bool).

    The cast matters for mixed-dtype ops such as Pow with an int or float64 exponent.
    """

    def kernel(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
        dtype = np.bool_ if dtype_of is None else inputs[dtype_of].dtype
        return [np.asarray(fn(*inputs)).astype(dtype, copy=False)]

    return kernel


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # never overflows; pick the matching formula for each sign
    one = typed_scalar(1, x.dtype)
    return np.where(x >= 0, one / (one + e), e / (one + e))


def reduce_kernel(fn: Callable[..., Any], since: int) -> Kernel:
    """Reduce* kernel; `since` is the opset where `axes` became an input."""

    def kernel(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
        x, axes = inputs[0], axes_of(inputs, attrs, opset, since)
        if not axes and attrs.get("noop_with_empty_axes", 0):
            return [x]
        keepdims = bool(attrs.get("keepdims", 1))
        y = fn(x, axis=tuple(axes) if axes else None, keepdims=keepdims)  # no axes: all of them
        return [np.asarray(y).astype(x.dtype, copy=False)]  # np.mean of ints gives float64

    return kernel
