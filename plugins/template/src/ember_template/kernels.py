"""Numpy reference kernels for the TEMPLATE device (ONNX default domain "").

``kernel(inputs, attrs, opset) -> outputs``: ``inputs`` in ONNX order (an omitted optional
input is ``None``, trailing ones may be missing), ``attrs`` already decoded to Python values
(TENSOR attributes as ``np.ndarray``; absent ones take their ONNX default here), ``opset`` the
model's default-domain opset for operators whose semantics changed.  Optional extra outputs
(MaxPool's Indices, BatchNormalization's training statistics, Dropout's mask) are not produced.

Kernels never write into their inputs (they may be read-only buffers), keep ONNX dtypes and are
deterministic.  Shape-only ops (Reshape, Transpose, Slice, ...) may return views of their input,
so treat outputs as read-only.  This file is the example new device plugins copy: it favours
clarity, except that Conv and pooling use sliding-window views + matmul to be usable on real models.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ember.plugin import pooled_sizes, window_geometry

# What the rest of the plugin reads from here, once this module has imported every kernel module
# (at its end) and so filled the registry.
from ember_template.kernel_registry import (  # noqa: F401
    CAST_TARGETS,
    KERNELS,
    ONNX_DTYPE_NAMES,
    ONNX_DTYPES,
    Attrs,
    Inputs,
    axes_of,
    elementwise_kernel,
    int_list,
    optional_input,
    reduce_kernel,
    register,
    stable_sigmoid,
    str_attr,
    typed_scalar,
)


# --- elementwise, activations, matmul -------------------------------------------------------
def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not np.issubdtype(a.dtype, np.integer):
        return np.divide(a, b)
    # Numpy's integer division floors, ONNX (like C) truncates toward zero.  Going through
    # float64 would lose precision for large int64 values, so fix up the floored quotient.
    q = np.floor_divide(a, b)
    return q + ((q < 0) & (q * b != a))


def _hard_sigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    y = x * typed_scalar(alpha, x.dtype) + typed_scalar(beta, x.dtype)
    return np.clip(y, typed_scalar(0, x.dtype), typed_scalar(1, x.dtype))


_ELEMENTWISE: dict[str, Callable[..., Any]] = {
    "Identity": lambda x: x,
    "Dropout": lambda x, *_: x,  # identity at inference; the optional mask is not produced
    "Relu": lambda x: np.maximum(x, typed_scalar(0, x.dtype)),
    "Sigmoid": stable_sigmoid,
    "HardSwish": lambda x: x * _hard_sigmoid(x, 1 / 6, 0.5),
    "Tanh": np.tanh,
    "Sqrt": np.sqrt,
    "Exp": np.exp,
    "Log": np.log,
    "Neg": np.negative,
    "Abs": np.abs,
    "Erf": np.vectorize(math.erf, otypes=[np.float64]),  # numpy has no erf; math.erf is exact
    "Not": np.logical_not,
    "GlobalAveragePool": lambda x: x.mean(axis=tuple(range(2, x.ndim)), keepdims=True),
    "GlobalMaxPool": lambda x: x.max(axis=tuple(range(2, x.ndim)), keepdims=True),
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": _div,
    "Pow": np.power,
    "MatMul": np.matmul,
    "Tile": lambda x, repeats: np.tile(x, int_list(repeats)),
    "Min": lambda *xs: functools.reduce(np.minimum, xs),
    "Max": lambda *xs: functools.reduce(np.maximum, xs),
}
for _op, _fn in _ELEMENTWISE.items():
    register(_op)(elementwise_kernel(_fn))
for _op, _fn in {"Equal": np.equal, "Less": np.less, "Greater": np.greater}.items():
    register(_op)(elementwise_kernel(_fn, dtype_of=None))
register("Where")(elementwise_kernel(np.where, dtype_of=1))


@register("LeakyRelu")
def leaky_relu(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    return [np.where(x >= 0, x, x * typed_scalar(attrs.get("alpha", 0.01), x.dtype))]


@register("HardSigmoid")
def hard_sigmoid(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    return [_hard_sigmoid(inputs[0], attrs.get("alpha", 0.2), attrs.get("beta", 0.5))]


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))  # shift by the max to avoid overflow
    return e / e.sum(axis=axis, keepdims=True)


@register("Softmax")
def softmax(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    if opset >= 13:
        return [_softmax(x, attrs.get("axis", -1))]
    # Before opset 13 the input is flattened to 2-D at `axis` and normalised over the rows.
    axis = attrs.get("axis", 1) % max(x.ndim, 1)
    flat = x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return [_softmax(flat, 1).reshape(x.shape)]


@register("Clip")
def clip(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    if opset < 11:
        low, high = attrs.get("min"), attrs.get("max")
    else:
        low, high = optional_input(inputs, 1), optional_input(inputs, 2)
    if low is not None:
        x = np.maximum(x, np.asarray(low, dtype=x.dtype))
    if high is not None:
        x = np.minimum(x, np.asarray(high, dtype=x.dtype))
    return [x]


@register("Gemm")
def gemm(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    a, b, c = inputs[0], inputs[1], optional_input(inputs, 2)
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    y = a @ b if alpha == 1.0 else (a @ b) * typed_scalar(alpha, a.dtype)
    if c is not None:
        y = y + (c if beta == 1.0 else c * typed_scalar(beta, c.dtype))
    return [y]


# --- shape and data movement -----------------------------------------------------------------
@register("Reshape")
def reshape(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    shape = int_list(inputs[1]) if optional_input(inputs, 1) is not None else list(attrs["shape"])
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]  # 0 copies the dim
    return [x.reshape(shape)]


@register("Flatten")
def flatten(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    axis = attrs.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


@register("Transpose")
def transpose(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    perm = attrs.get("perm")
    return [np.transpose(inputs[0], perm if perm else None)]  # default: reverse the axes


@register("Squeeze")
def squeeze(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    axes = axes_of(inputs, attrs, opset, since=13)
    return [np.squeeze(inputs[0], axis=None if axes is None else tuple(axes))]


@register("Unsqueeze")
def unsqueeze(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    # expand_dims resolves negative axes against the output rank, as ONNX does.
    return [np.expand_dims(inputs[0], tuple(axes_of(inputs, attrs, opset, since=13) or ()))]


@register("Concat")
def concat(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    return [np.concatenate([x for x in inputs if x is not None], axis=attrs["axis"])]


@register("Split")
def split(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    axis = attrs.get("axis", 0) % x.ndim
    sizes = optional_input(inputs, 1) if opset >= 13 else attrs.get("split")
    if sizes is None or len(sizes) == 0:
        # Without `split` ONNX splits into len(node.output) parts; a kernel cannot see the node,
        # so the executor must pass that count as `num_outputs` (an attribute since opset 18).
        parts, dim = attrs["num_outputs"], x.shape[axis]
        chunk = -(-dim // parts)  # ceil: the last part may be smaller (opset 18)
        sizes = [max(min(chunk, dim - i * chunk), 0) for i in range(parts)]
    return np.split(x, np.cumsum(int_list(sizes))[:-1], axis=axis)


def _slice_bounds(start: int, end: int, step: int, dim: int) -> slice:
    # ONNX clamps after adding `dim` to negative values.  Python slices clamp differently for
    # negative steps (a start below -dim gives an empty slice), so clamp explicitly.
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        return slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)  # end -1 means "past the front"


@register("Slice")
def slice_(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    if opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends = int_list(inputs[1]), int_list(inputs[2])
        axes, steps = optional_input(inputs, 3), optional_input(inputs, 4)
    axes = range(len(starts)) if axes is None else int_list(axes)
    steps = [1] * len(starts) if steps is None else int_list(steps)
    index = [slice(None)] * x.ndim
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        index[axis] = _slice_bounds(int(start), int(end), step, x.shape[axis])
    return [x[tuple(index)]]


@register("Gather")
def gather(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    # np.take accepts negative indices and counts them from the end, like ONNX.
    return [np.take(inputs[0], inputs[1], axis=attrs.get("axis", 0))]


@register("Expand")
def expand(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    shape = np.broadcast_shapes(x.shape, tuple(int_list(inputs[1])))  # broadcasts both ways
    return [np.array(np.broadcast_to(x, shape))]  # copy: no zero-stride views downstream


@register("Pad")
def pad(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    mode = str_attr(attrs, "mode", "constant")
    if opset < 11:
        pads = list(attrs.get("pads", attrs.get("paddings")))  # Pad-1 called them paddings
        value, axes = attrs.get("value", 0), None
    else:
        pads, cval, axes = int_list(inputs[1]), optional_input(inputs, 2), optional_input(inputs, 3)
        value = cval.reshape(-1)[0] if cval is not None and cval.size else 0
    axes = list(range(x.ndim)) if axes is None else [a % x.ndim for a in int_list(axes)]
    widths = [(0, 0)] * x.ndim
    for i, axis in enumerate(axes):
        widths[axis] = (pads[i], pads[i + len(axes)])
    # Negative pads crop; do that first so np.pad only sees non-negative widths.
    x = x[tuple(slice(max(-b, 0), e if e < 0 else None) for b, e in widths)]
    widths = [(max(b, 0), max(e, 0)) for b, e in widths]
    if mode == "constant":
        return [np.pad(x, widths, mode="constant", constant_values=typed_scalar(value, x.dtype))]
    return [np.pad(x, widths, mode=mode)]  # "reflect", "edge" and "wrap" match numpy's names


# --- tensor creation and type ----------------------------------------------------------------
_CONSTANT_DTYPES = {
    "value": None,
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


@register("Constant")
def constant(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    for name, dtype in _CONSTANT_DTYPES.items():
        if name in attrs:
            return [np.asarray(attrs[name], dtype)]
    raise NotImplementedError(f"Constant with attributes {sorted(attrs)}")  # sparse, strings


@register("ConstantOfShape")
def constant_of_shape(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    value = attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    return [np.full(int_list(inputs[0]), value.reshape(-1)[0], dtype=value.dtype)]


@register("Range")
def range_(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    start, limit, delta = (np.asarray(t).item() for t in inputs[:3])  # in float64, then cast
    return [np.arange(start, limit, delta).astype(inputs[0].dtype)]


@register("Shape")
def shape(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    dims = np.array(inputs[0].shape, dtype=np.int64)
    # Python slicing clamps start/end exactly as ONNX (opset 15+) specifies.
    return [dims[attrs.get("start", 0) : attrs.get("end")]] if opset >= 15 else [dims]


@register("Cast")
def cast(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    to = attrs["to"]
    if isinstance(to, (str, bytes)):  # Cast-1 named the type ("FLOAT")
        to = ONNX_DTYPE_NAMES[to.decode() if isinstance(to, bytes) else to]
    if to not in ONNX_DTYPES:
        raise NotImplementedError(f"Cast to ONNX data type {to} is not supported")
    return [inputs[0].astype(ONNX_DTYPES[to])]


# --- reductions ------------------------------------------------------------------------------
def _extreme(fn: Callable[..., Any], pick: str) -> Callable[..., Any]:
    """np.max / np.min that give ONNX's answer over an empty set: the type's lowest (highest)."""

    def reduce(x: np.ndarray, axis: Any, keepdims: bool) -> Any:
        if x.dtype == np.bool_:
            bound: Any = pick == "min"
        elif np.issubdtype(x.dtype, np.floating):
            bound = np.inf if pick == "min" else -np.inf
        else:
            info = np.iinfo(x.dtype)
            bound = info.max if pick == "min" else info.min
        return fn(x, axis=axis, keepdims=keepdims, initial=bound)

    return reduce


register("ReduceMean")(reduce_kernel(np.mean, since=18))
register("ReduceMax")(reduce_kernel(_extreme(np.max, "max"), since=18))
register("ReduceMin")(reduce_kernel(_extreme(np.min, "min"), since=18))
register("ReduceSum")(reduce_kernel(np.sum, since=13))


# --- convolution and pooling -----------------------------------------------------------------
def _windows(
    x: np.ndarray, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]
) -> np.ndarray:
    """A (N, C, *out, *kernel) view of every window over x's spatial axes, without copying."""
    nd = len(kernel)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    view = sliding_window_view(x, spans, axis=tuple(range(2, 2 + nd)))
    steps = [slice(None, None, s) for s in strides] + [slice(None, None, d) for d in dilations]
    return view[(slice(None), slice(None), *steps)]


@register("Conv")
def conv(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, w, bias = inputs[0], inputs[1], optional_input(inputs, 2)
    nd, group, kernel = x.ndim - 2, attrs.get("group", 1), w.shape[2:]
    strides, dilations, pads = window_geometry(attrs, x.shape[2:], kernel)
    if any(b or e for b, e in pads):
        x = np.pad(x, [(0, 0), (0, 0), *pads])
    windows = _windows(x, kernel, strides, dilations)
    out_shape = windows.shape[2 : 2 + nd]
    # im2col: put (C, *kernel) next to each other and flatten the output pixels, so every
    # group is a single (M/G, C/G*K) @ (C/G*K, pixels) product and one batched matmul does all
    # groups at once (depthwise convs included).
    cols = windows.transpose(0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))
    cols = cols.reshape(x.shape[0], group, -1, math.prod(out_shape))
    y = np.matmul(w.reshape(group, w.shape[0] // group, -1), cols)
    y = y.reshape(x.shape[0], w.shape[0], *out_shape)
    if bias is not None:
        y += bias.reshape(-1, *[1] * nd)  # y is a fresh array, adding in place is safe
    return [y]


def _pool(inputs: Inputs, attrs: Attrs, average: bool) -> np.ndarray:
    x, kernel = inputs[0], list(attrs["kernel_shape"])
    nd = len(kernel)
    strides, dilations, pads, out_shape = pooled_sizes(attrs, x.shape[2:], kernel)
    # ceil_mode allows a last window that hangs past the end padding; that overhang is padded
    # too, but never counts (-inf for max, left out of the average's divisor).
    overhang = [max((out - 1) * s + (k - 1) * d + 1 - (n + b + e), 0)
                for n, k, s, d, (b, e), out
                in zip(x.shape[2:], kernel, strides, dilations, pads, out_shape, strict=True)]
    full = [(b, e + o) for (b, e), o in zip(pads, overhang, strict=True)]
    crop = (slice(None), slice(None), *(slice(o) for o in out_shape))
    window_axes = tuple(range(-nd, 0))
    if not average:
        floor = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        padded = np.pad(x, [(0, 0), (0, 0), *full], constant_values=floor)
        return _windows(padded, kernel, strides, dilations)[crop].max(axis=window_axes)
    padded = np.pad(x, [(0, 0), (0, 0), *full])
    sums = _windows(padded, kernel, strides, dilations)[crop].sum(axis=window_axes)
    # The divisor counts the cells of each window that hold input (and explicit padding when
    # count_include_pad=1), computed by pooling a mask of ones the same way.
    include_pad = attrs.get("count_include_pad", 0)
    mask = np.pad(np.ones(x.shape[2:], x.dtype), pads, constant_values=include_pad)
    mask = np.pad(mask, [(0, o) for o in overhang])
    counts = _windows(mask[None, None], kernel, strides, dilations)[crop].sum(axis=window_axes)
    return sums / counts


# MaxPool's optional Indices output is not produced.
register("MaxPool")(lambda inputs, attrs, opset: [_pool(inputs, attrs, average=False)])
register("AveragePool")(lambda inputs, attrs, opset: [_pool(inputs, attrs, average=True)])


# --- normalisation ---------------------------------------------------------------------------
@register("BatchNormalization")
def batch_normalization(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    # Inference mode only: normalise with the stored statistics; training outputs are omitted.
    x = inputs[0]
    shape = (-1,) + (1,) * (x.ndim - 2)  # per-channel parameters broadcast over (C, *spatial)
    scale, bias, mean, var = (t.astype(x.dtype, copy=False).reshape(shape) for t in inputs[1:5])
    eps = typed_scalar(attrs.get("epsilon", 1e-5), x.dtype)
    return [scale * (x - mean) / np.sqrt(var + eps) + bias]


# The kernels of the other modules register themselves into KERNELS when imported.
from ember_template import (  # noqa: E402, F401
    control_flow,
    kernels_conv_transpose,
    kernels_detection,
    kernels_index,
    kernels_math,
    kernels_norm,
    kernels_quant,
    kernels_recurrent,
    kernels_resize,
    kernels_sampling,
    kernels_spectral,
    kernels_transformer,
)
