"""Normalisation and reduction kernels for the TEMPLATE device, beyond kernels.py's:
LayerNormalization, InstanceNormalization, GroupNormalization, LpNormalization,
MeanVarianceNormalization, and the Reduce* operators other than Sum, Mean, Max and Min.
"""

from __future__ import annotations

import numpy as np

from ember_template.kernel_registry import (
    Attrs,
    Inputs,
    optional_input,
    reduce_kernel,
    register,
    typed_scalar,
)


@register("LayerNormalization")
def layer_normalization(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, scale, bias = inputs[0], inputs[1], optional_input(inputs, 2)
    axis = attrs.get("axis", -1) % x.ndim
    axes = tuple(range(axis, x.ndim))
    # In float32 at least, as ONNX's stash_type=1 asks; back to the input's type at the end.
    work = x.astype(np.float32) if x.dtype.itemsize < 4 else x
    mean = work.mean(axis=axes, keepdims=True)
    variance = ((work - mean) ** 2).mean(axis=axes, keepdims=True)
    inverse = 1 / np.sqrt(variance + typed_scalar(attrs.get("epsilon", 1e-5), work.dtype))
    y = (work - mean) * inverse * scale
    if bias is not None:
        y = y + bias
    return [y.astype(x.dtype), mean.astype(x.dtype), inverse.astype(x.dtype)]


@register("InstanceNormalization")
def instance_normalization(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, scale, bias = inputs
    axes = tuple(range(2, x.ndim))
    shape = (-1,) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes, keepdims=True)
    variance = x.var(axis=axes, keepdims=True)
    eps = typed_scalar(attrs.get("epsilon", 1e-5), x.dtype)
    return [(x - mean) / np.sqrt(variance + eps) * scale.reshape(shape) + bias.reshape(shape)]


@register("GroupNormalization")
def group_normalization(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, scale, bias = inputs
    groups = attrs["num_groups"]
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, -1)
    mean = grouped.mean(axis=-1, keepdims=True)
    variance = grouped.var(axis=-1, keepdims=True)
    eps = typed_scalar(attrs.get("epsilon", 1e-5), x.dtype)
    y = ((grouped - mean) / np.sqrt(variance + eps)).reshape(x.shape)
    # Opset 18 had one scale per group, opset 21 one per channel.
    if scale.shape[0] != c:
        scale, bias = np.repeat(scale, c // groups), np.repeat(bias, c // groups)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return [(y * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype)]


@register("LpNormalization")
def lp_normalization(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, axis, p = inputs[0], attrs.get("axis", -1), attrs.get("p", 2)
    norm = (np.abs(x).sum(axis=axis, keepdims=True) if p == 1
            else np.sqrt((x * x).sum(axis=axis, keepdims=True)))
    safe = np.where(norm == 0, 1, norm)  # a zero vector stays zero
    return [np.where(norm == 0, 0, x / safe).astype(x.dtype)]


@register("MeanVarianceNormalization")
def mean_variance_normalization(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    axes = tuple(attrs.get("axes", (0, 2, 3)))
    mean = x.mean(axis=axes, keepdims=True)
    deviation = np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True))
    return [((x - mean) / (deviation + typed_scalar(1e-9, x.dtype))).astype(x.dtype)]


def _log_sum_exp(x: np.ndarray, axis: object, keepdims: bool) -> np.ndarray:
    if x.size == 0:
        return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    total = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return total if keepdims else np.squeeze(total, axis=axis)


register("ReduceProd")(reduce_kernel(np.prod, since=18))
register("ReduceL1")(reduce_kernel(lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis,
                                                              keepdims=keepdims), since=18))
register("ReduceL2")(reduce_kernel(lambda x, axis, keepdims: np.sqrt(np.sum(
    x.astype(np.float64) * x, axis=axis, keepdims=keepdims)), since=18))
register("ReduceSumSquare")(reduce_kernel(lambda x, axis, keepdims: np.sum(x * x, axis=axis,
                                                                     keepdims=keepdims), since=18))
register("ReduceLogSum")(reduce_kernel(lambda x, axis, keepdims: np.log(np.sum(
    x, axis=axis, keepdims=keepdims)), since=18))
register("ReduceLogSumExp")(reduce_kernel(_log_sum_exp, since=18))
