"""Quantisation kernels for the TEMPLATE device (integer types numpy has: 8- and 16-bit, and int32
for DequantizeLinear): QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
ConvInteger, QLinearMatMul and QLinearConv. The float8, 4- and 2-bit variants are refused when the
model is compiled (numpy has no such types)."""

from __future__ import annotations

import numpy as np

from ember_template.kernel_registry import (
    KERNELS,
    ONNX_DTYPES,
    Attrs,
    Inputs,
    optional_input,
    register,
)


def _per_axis(value: np.ndarray, shape: tuple[int, ...], axis: int, block: int) -> np.ndarray:
    """A scale or zero point broadcastable to ``shape``: one value, one per index of ``axis``, or
    (with ``block``) one per block of ``block`` indices along it."""
    if value.size == 1:
        return value.reshape(())
    if not block:
        dims = [1] * len(shape)
        dims[axis] = value.size
        return value.reshape(dims)
    value = np.repeat(value, block, axis=axis)
    return np.take(value, np.arange(shape[axis]), axis=axis)


def _saturate(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(values, info.min, info.max).astype(dtype)


@register("QuantizeLinear")
def quantize_linear(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, scale, zero_point = inputs[0], inputs[1], optional_input(inputs, 2)
    axis, block = attrs.get("axis", 1) % max(x.ndim, 1), attrs.get("block_size", 0)
    if zero_point is not None:
        dtype = zero_point.dtype
    elif attrs.get("output_dtype"):
        dtype = ONNX_DTYPES[attrs["output_dtype"]]
    else:
        dtype = np.dtype(np.uint8)
    scaled = np.rint(x / _per_axis(scale, x.shape, axis, block)).astype(np.int64)
    if zero_point is not None:
        scaled = scaled + _per_axis(zero_point, x.shape, axis, block)
    return [_saturate(scaled, dtype)]


@register("DequantizeLinear")
def dequantize_linear(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, scale, zero_point = inputs[0], inputs[1], optional_input(inputs, 2)
    axis, block = attrs.get("axis", 1) % max(x.ndim, 1), attrs.get("block_size", 0)
    values = x.astype(np.int64)
    if zero_point is not None:
        values = values - _per_axis(zero_point, x.shape, axis, block)
    dtype = ONNX_DTYPES[attrs["output_dtype"]] if attrs.get("output_dtype") else scale.dtype
    return [(values * _per_axis(scale, x.shape, axis, block)).astype(dtype)]


@register("DynamicQuantizeLinear")
def dynamic_quantize_linear(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    low, high = min(float(x.min(initial=0)), 0.0), max(float(x.max(initial=0)), 0.0)
    scale = np.float32((high - low) / 255)
    zero_point = _saturate(np.rint(np.float32(0) - np.float32(low) / scale), np.dtype(np.uint8))
    y = _saturate(np.rint(x / scale) + zero_point.astype(np.int64), np.dtype(np.uint8))
    return [y, np.array(scale, np.float32), np.array(zero_point, np.uint8)]


@register("MatMulInteger")
def matmul_integer(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    a, b = inputs[0].astype(np.int32), inputs[1].astype(np.int32)
    a_zero, b_zero = optional_input(inputs, 2), optional_input(inputs, 3)
    if a_zero is not None:  # one value, or one per row of a
        a = a - (a_zero.reshape(-1, 1) if a_zero.size > 1 else a_zero.reshape(()))
    if b_zero is not None:  # one value, or one per column of b
        b = b - b_zero.reshape(()) if b_zero.size == 1 else b - b_zero
    return [np.matmul(a, b).astype(np.int32)]


def _conv_integer(x: np.ndarray, x_zero: np.ndarray | None, w: np.ndarray,
                  w_zero: np.ndarray | None, attrs: Attrs, opset: int) -> np.ndarray:
    x = x.astype(np.int32) - (0 if x_zero is None else x_zero.astype(np.int32).reshape(()))
    w = w.astype(np.int32)
    if w_zero is not None:  # one value, or one per output channel
        w = w - (w_zero.reshape(-1, *[1] * (w.ndim - 1)) if w_zero.size > 1
                 else w_zero.reshape(())).astype(np.int32)
    return KERNELS["Conv"]([x, w], attrs, opset)[0].astype(np.int32)


@register("ConvInteger")
def conv_integer(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    return [_conv_integer(inputs[0], optional_input(inputs, 2), inputs[1],
                          optional_input(inputs, 3), attrs, opset)]


def _requantize(accumulated: np.ndarray, factor: np.ndarray,
                zero_point: np.ndarray) -> np.ndarray:
    result = np.rint(accumulated * factor) + zero_point.astype(np.float64)
    return _saturate(result, zero_point.dtype)


@register("QLinearMatMul")
def qlinear_matmul(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero = inputs[:8]
    a = a.astype(np.int32) - a_zero.astype(np.int32)
    b = b.astype(np.int32) - b_zero.astype(np.int32)
    factor = (a_scale.astype(np.float64) * b_scale / y_scale)
    return [_requantize(np.matmul(a, b).astype(np.float64), factor, y_zero)]


@register("QLinearConv")
def qlinear_conv(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero = inputs[:8]
    bias = optional_input(inputs, 8)
    accumulated = _conv_integer(x, x_zero, w, w_zero, attrs, opset)
    if bias is not None:
        accumulated = accumulated + bias.reshape(-1, *[1] * (x.ndim - 2))
    w_scale = w_scale.reshape(-1, *[1] * (x.ndim - 2)) if w_scale.size > 1 else w_scale
    factor = x_scale.astype(np.float64) * w_scale / y_scale
    return [_requantize(accumulated.astype(np.float64), factor, y_zero)]
