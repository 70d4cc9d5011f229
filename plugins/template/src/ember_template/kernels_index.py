"""Indexing, selection and tensor-building kernels for the TEMPLATE device: ArgMax/ArgMin, TopK,
CumSum, the Gather*/Scatter* family, OneHot, NonZero, Trilu, DepthToSpace/SpaceToDepth, Size,
EyeLike, Compress and Einsum.
"""

from __future__ import annotations

import numpy as np

from ember_template.kernel_registry import (
    ONNX_DTYPES,
    Attrs,
    Inputs,
    optional_input,
    register,
    str_attr,
)


def _arg(pick: str) -> None:
    @register(pick)
    def kernel(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
        x, axis = inputs[0], attrs.get("axis", 0) % inputs[0].ndim
        if attrs.get("select_last_index", 0):  # the last of equal extremes: search reversed
            flipped = np.flip(x, axis)
            found = np.argmax(flipped, axis) if pick == "ArgMax" else np.argmin(flipped, axis)
            index = x.shape[axis] - 1 - found
        else:
            index = np.argmax(x, axis) if pick == "ArgMax" else np.argmin(x, axis)
        if attrs.get("keepdims", 1):
            index = np.expand_dims(index, axis)
        return [index.astype(np.int64)]


_arg("ArgMax")
_arg("ArgMin")


@register("TopK")
def top_k(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    k = int(attrs["k"]) if opset < 10 else int(np.asarray(inputs[1]).reshape(-1)[0])
    axis = attrs.get("axis", -1) % x.ndim
    # Equal values keep the lower index first, as ONNX says. Descending: a stable ascending sort
    # of the reversed axis, read backwards (no negation, which unsigned types cannot take).
    if attrs.get("largest", 1):
        order = np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
        order = x.shape[axis] - 1 - order
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    indices = np.take(order, np.arange(k), axis=axis)
    return [np.take_along_axis(x, indices, axis=axis), indices.astype(np.int64)]


@register("CumSum")
def cum_sum(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, axis = inputs[0], int(np.asarray(inputs[1]).reshape(-1)[0]) % inputs[0].ndim
    reverse, exclusive = attrs.get("reverse", 0), attrs.get("exclusive", 0)
    if reverse:
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis, dtype=x.dtype)
    if exclusive:
        y = y - x
    return [np.flip(y, axis) if reverse else y]


@register("GatherElements")
def gather_elements(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, indices, axis = inputs[0], inputs[1], attrs.get("axis", 0) % inputs[0].ndim
    indices = np.where(indices < 0, indices + x.shape[axis], indices)
    return [np.take_along_axis(x, indices.astype(np.int64), axis=axis)]


@register("GatherND")
def gather_nd(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, indices, batch = inputs[0], inputs[1].astype(np.int64), attrs.get("batch_dims", 0)
    depth = indices.shape[-1]
    batch_shape = x.shape[:batch]
    flat_x = x.reshape(-1, *x.shape[batch:])
    flat_i = indices.reshape(-1, *indices.shape[batch:])
    out = []
    for b in range(flat_x.shape[0]):
        points = flat_i[b].reshape(-1, depth)
        points = np.where(points < 0, points + np.array(flat_x.shape[1:1 + depth]), points)
        out.append(np.stack([flat_x[b][tuple(p)] for p in points])
                   if len(points) else np.zeros((0, *flat_x.shape[1 + depth:]), x.dtype))
    result = np.stack(out)
    return [result.reshape(*batch_shape, *indices.shape[batch:-1], *x.shape[batch + depth:])]


_REDUCTIONS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


@register("ScatterND")
def scatter_nd(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, indices, updates = inputs[0], inputs[1].astype(np.int64), inputs[2]
    y = x.copy()
    reduction = str_attr(attrs, "reduction", "none")
    depth = indices.shape[-1]
    points = indices.reshape(-1, depth)
    values = updates.reshape(-1, *x.shape[depth:])
    for point, value in zip(points, values, strict=True):
        where = tuple(point)
        y[where] = value if reduction == "none" else _REDUCTIONS[reduction](y[where], value)
    return [y]


@register("ScatterElements", "Scatter")
def scatter_elements(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, indices, updates = inputs[0], inputs[1].astype(np.int64), inputs[2]
    axis = attrs.get("axis", 0) % x.ndim
    indices = np.where(indices < 0, indices + x.shape[axis], indices)
    y = x.copy()
    reduction = str_attr(attrs, "reduction", "none")
    for position in np.ndindex(*indices.shape):  # in order: later updates win, as ONNX says
        target = list(position)
        target[axis] = indices[position]
        where = tuple(target)
        value = updates[position]
        y[where] = value if reduction == "none" else _REDUCTIONS[reduction](y[where], value)
    return [y]


@register("OneHot")
def one_hot(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    indices, depth, values = inputs[0], int(np.asarray(inputs[1]).reshape(-1)[0]), inputs[2]
    axis = attrs.get("axis", -1)
    axis = axis % (indices.ndim + 1)
    indices = indices.astype(np.int64)
    indices = np.where(indices < 0, indices + depth, indices)
    hot = np.arange(depth).reshape([-1 if a == axis else 1 for a in range(indices.ndim + 1)])
    mask = np.expand_dims(indices, axis) == hot
    return [np.where(mask, values[1], values[0]).astype(values.dtype)]


@register("NonZero")
def non_zero(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    if x.ndim == 0:
        return [np.zeros((0, int(x != 0)), np.int64)]
    return [np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)]


@register("Trilu")
def trilu(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    given = optional_input(inputs, 1)
    k = int(np.asarray(given).reshape(-1)[0]) if given is not None else 0
    return [np.triu(x, k) if attrs.get("upper", 1) else np.tril(x, k)]


@register("DepthToSpace")
def depth_to_space(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, b = inputs[0], attrs["blocksize"]
    n, c, h, w = x.shape
    if str_attr(attrs, "mode", "DCR") == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return [y.reshape(n, c // (b * b), h * b, w * b)]


@register("SpaceToDepth")
def space_to_depth(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, b = inputs[0], attrs["blocksize"]
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return [y.reshape(n, c * b * b, h // b, w // b)]


@register("Size")
def size(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    return [np.array(inputs[0].size, dtype=np.int64)]


@register("EyeLike")
def eye_like(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    dtype = ONNX_DTYPES[attrs["dtype"]] if "dtype" in attrs else x.dtype
    return [np.eye(x.shape[0], x.shape[1], k=attrs.get("k", 0), dtype=dtype)]


@register("Compress")
def compress(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, condition = inputs[0], inputs[1].astype(bool)
    axis = attrs.get("axis")
    return [np.compress(condition, x, axis=axis)]


@register("Einsum")
def einsum(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    equation = str_attr(attrs, "equation", "").replace(" ", "")
    operands = [x for x in inputs if x is not None]
    return [np.asarray(np.einsum(equation, *operands)).astype(operands[0].dtype, copy=False)]

