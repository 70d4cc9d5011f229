"""Resize: the sampling positions and weights of every output coordinate computed on the host.

Resize is separable: along each resized axis, output coordinate ``o`` reads a few input
positions (``taps``: 1 for nearest, 2 for linear, 4 for cubic, more with antialias) with fixed
weights. Those depend only on shapes and attributes, so they are computed here in float64
exactly as ``onnx.reference`` computes them (coordinate transformation, ``nearest_mode``,
``exclude_outside``, ``cubic_coeff_a``, antialias, ``keep_aspect_ratio_policy``, roi), and the
kernel reads them from the constant arena: it only multiplies and adds. A ``tf_crop_and_resize``
position outside the input gives ``extrapolation_value``. Axes that stay the same are not
resampled. Float tensors only; opset 11 and later (Resize-10 is refused).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ember_gpu import dtypes
from ember_gpu.codegen import KernelWriter, linear
from ember_gpu.graph import Node
from ember_gpu.ir import Value
from ember_gpu.ops.base import AnchorOp, DeviceNode, Inferred, Refused, input_at

Coefficients = Callable[[float, float], np.ndarray]


class AxisTaps:
    """One resized axis: ``index[o, t]`` (clamped into the input) and ``weight[o, t]``; with
    ``outside``, a per-``o`` flag: that output coordinate is the extrapolation value."""

    __slots__ = ("axis", "index", "outside", "weight")

    def __init__(self, axis: int, index: Value, weight: Value, outside: Value | None) -> None:
        self.axis = axis
        self.index = index
        self.weight = weight
        self.outside = outside


class ResizeParams:
    __slots__ = ("axes", "extrapolation")

    def __init__(self, axes: list[AxisTaps], extrapolation: float) -> None:
        self.axes = axes
        self.extrapolation = extrapolation


def _nearest(mode: str) -> Coefficients:
    def coefficients(ratio: float, scale: float) -> np.ndarray:
        if float(ratio).is_integer():
            return np.array([0.0, 1.0])
        if mode == "round_prefer_floor":
            return np.array([ratio <= 0.5, ratio > 0.5], dtype=np.float64)
        if mode == "round_prefer_ceil":
            return np.array([ratio < 0.5, ratio >= 0.5], dtype=np.float64)
        if mode == "floor":
            return np.array([1.0, 0.0])
        if mode == "ceil":
            return np.array([0.0, 1.0])
        raise Refused(f"nearest_mode {mode!r}")

    return coefficients


def _linear(antialias: bool) -> Coefficients:
    def coefficients(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([1 - ratio, ratio])
        scale = min(scale, 1.0)
        start = int(np.floor(-1 / scale) + 1)
        args = (np.arange(start, start + 2 - 2 * start) - ratio) * scale
        found = np.clip(1 - np.abs(args), 0, 1)
        return found / found.sum()

    return coefficients


def _cubic(a: float, antialias: bool) -> Coefficients:
    def kernel(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        if x < 2:
            return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
        return 0.0

    def coefficients(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([kernel(ratio + 1), kernel(ratio), kernel(1 - ratio),
                             kernel(2 - ratio)])
        scale = min(scale, 1.0)
        start = int(np.floor(-2 / scale) + 1)
        found = np.array([kernel(scale * (i - ratio)) for i in range(start, 2 - start)])
        return found / found.sum()

    return coefficients


def _source_positions(mode: str, out: np.ndarray, scale: float, size: int, out_size: int,
                      roi: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The input coordinate of each output coordinate, and (tf_crop_and_resize) which fall
    outside the input."""
    width = scale * size
    if mode == "align_corners":
        return (np.zeros(out_size) if width == 1 else out * (size - 1) / (width - 1)), None
    if mode == "asymmetric":
        return out / scale, None
    if mode == "tf_crop_and_resize":
        start, end = roi if roi is not None else (0.0, 1.0)
        if width == 1:
            x = np.full(out_size, (end - start) * (size - 1) / 2)
        else:
            x = out * (end - start) * (size - 1) / (width - 1)
        x = x + start * (size - 1)
        return x, (x < 0) | (x > size - 1)
    if mode == "pytorch_half_pixel":
        return (np.full(out_size, -0.5) if width == 1 else (out + 0.5) / scale - 0.5), None
    if mode == "half_pixel":
        return (out + 0.5) / scale - 0.5, None
    if mode == "half_pixel_symmetric":
        offset = size / 2 * (1 - out_size / width)
        return offset + (out + 0.5) / scale - 0.5, None
    raise Refused(f"coordinate_transformation_mode {mode!r}")


def axis_taps(size: int, out_size: int, scale: float, roi: tuple[float, float] | None,
              coefficients: Coefficients, transform: str,
              exclude_outside: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(index [out, taps], weight [out, taps], outside [out] or None) along one axis."""
    x, outside = _source_positions(transform, np.arange(out_size, dtype=np.float64), scale,
                                   size, out_size, roi)
    floor = np.floor(x)
    ratios = np.where(x == floor, 1.0, x - floor)
    weights = np.array([coefficients(float(r), scale) for r in ratios], dtype=np.float64)
    taps = weights.shape[1]
    pad = math.ceil(taps / 2)
    padded = x + pad
    whole = np.floor(padded).astype(np.int64)
    frac = padded - whole
    if taps % 2 == 0:  # windows centred between integers; ties go to the lower one
        shift = np.where(frac == 0, -(taps // 2), -(taps // 2) + 1)
    else:
        base = -((taps - 1) // 2)
        shift = np.where(frac <= 0.5, base, base + 1)
    index = (whole + shift)[:, None] + np.arange(taps)[None, :] - pad
    if exclude_outside:
        weights = np.where((index < 0) | (index >= size), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    index = np.clip(index, 0, size - 1)
    if np.all(np.count_nonzero(weights, axis=1) <= 1):  # nearest: keep the one tap
        pick = np.argmax(weights != 0, axis=1)
        rows = np.arange(out_size)
        index, weights = index[rows, pick][:, None], weights[rows, pick][:, None]
    return index, weights, outside


class Resize(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        if opset < 11:
            raise Refused("Resize-10 (opset 10)")
        if not dtypes.is_float(x.dtype):
            raise Refused(f"{x.dtype} tensors (floats only)")
        attrs = node.attrs
        rank = len(x.shape)
        roi_v, scales_v, sizes_v = (input_at(inputs, i) for i in (1, 2, 3))
        for value in (roi_v, scales_v, sizes_v):
            if value is not None and value.host is None:
                raise Refused("roi, scales and sizes must be known at compile time")
        axes = [int(a) % rank for a in attrs.get("axes") or range(rank)]
        scales = (None if scales_v is None or scales_v.host.size == 0  # type: ignore[union-attr]
                  else [float(s) for s in scales_v.host.reshape(-1)])  # type: ignore[union-attr]
        sizes = (None if sizes_v is None or sizes_v.host.size == 0  # type: ignore[union-attr]
                 else [int(s) for s in sizes_v.host.reshape(-1)])  # type: ignore[union-attr]
        roi_raw = (None if roi_v is None or roi_v.host.size == 0  # type: ignore[union-attr]
                   else [float(r) for r in roi_v.host.reshape(-1)])  # type: ignore[union-attr]
        scale, out = _scales_and_sizes(x.shape, axes, scales, sizes,
                                       attrs.get("keep_aspect_ratio_policy", "stretch"))
        roi: list[tuple[float, float] | None] = [None] * rank
        if roi_raw is not None:
            count = len(roi_raw) // 2
            listed = axes if count == len(axes) else list(range(rank))
            for i, axis in enumerate(listed[:count]):
                roi[axis] = (roi_raw[i], roi_raw[count + i])
        coefficients = _coefficients(attrs)
        transform = attrs.get("coordinate_transformation_mode", "half_pixel")
        exclude = bool(attrs.get("exclude_outside", 0))
        taps: list[AxisTaps] = []
        for axis in axes:
            window = roi[axis]
            if (math.isclose(scale[axis], 1.0) and out[axis] == x.shape[axis]
                    and (window is None or (math.isclose(window[0], 0.0)
                                            and math.isclose(window[1], 1.0)))):
                continue  # the identity along this axis, as the reference skips it
            if out[axis] == 0:
                continue
            index, weight, outside = axis_taps(x.shape[axis], out[axis], scale[axis], window,
                                               coefficients, transform, exclude)
            name = f"{node.name}:resize{axis}"
            taps.append(AxisTaps(
                axis, Value.known(f"{name}:index", index.astype(np.int32)),
                Value.known(f"{name}:weight", weight.astype(np.float32)),
                None if outside is None or not outside.any()
                else Value.known(f"{name}:outside", outside.astype(np.uint8))))
        extrapolation = float(attrs.get("extrapolation_value", 0.0))
        return Inferred([tuple(out)], [x.dtype], ResizeParams(taps, extrapolation))

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        p: ResizeParams = dn.params
        x = dn.inputs[0]
        assert x is not None
        index = kw.index()
        if not p.axes:  # nothing resampled: a copy
            return kw.load(x, linear(index, x.shape))
        ctype = dtypes.compute_type(x.dtype)
        acc = kw.fresh("acc")
        kw.line(f"{ctype} {acc} = 0;")
        source = list(index)
        weights = []
        indent = ""
        for taps in p.axes:
            count = taps.index.shape[1]
            t, at = f"t{taps.axis}", f"s{taps.axis}"
            row = index[taps.axis]
            kw.line(f"{indent}for (int {t} = 0; {t} < {count}; ++{t}) {{")
            indent += "  "
            kw.line(f"{indent}const int {at} = {kw.load(taps.index, f'{row} * {count} + {t}')};")
            weights.append(kw.load(taps.weight, f"{row} * {count} + {t}"))
            source[taps.axis] = at
        term = f"{kw.load(x, linear(source, x.shape))} * {' * '.join(weights)}"
        kw.line(f"{indent}{acc} += {term};")
        for _ in p.axes:
            indent = indent[:-2]
            kw.line(f"{indent}}}")
        flags = [kw.load(t.outside, index[t.axis]) for t in p.axes if t.outside is not None]
        if flags:
            value = dtypes.literal(p.extrapolation, x.dtype)
            return f"(({' || '.join(flags)}) ? {value} : {acc})"
        return acc


def _coefficients(attrs: Any) -> Coefficients:
    mode = attrs.get("mode", "nearest")
    antialias = bool(attrs.get("antialias", 0))
    if mode == "nearest":
        if antialias:
            raise Refused("antialias with mode 'nearest'")
        return _nearest(attrs.get("nearest_mode", "round_prefer_floor"))
    if mode == "linear":
        return _linear(antialias)
    if mode == "cubic":
        return _cubic(float(attrs.get("cubic_coeff_a", -0.75)), antialias)
    raise Refused(f"mode {mode!r}")


def _scales_and_sizes(shape: Sequence[int], axes: list[int], scales: list[float] | None,
                      sizes: list[int] | None, policy: str) -> tuple[list[float], list[int]]:
    """Per-axis scale and output size, as the reference derives them."""
    rank = len(shape)
    if sizes is not None:
        if len(sizes) != len(axes):
            raise Refused(f"{len(sizes)} sizes for {len(axes)} axes")
        out = list(shape)
        for axis, size in zip(axes, sizes, strict=True):
            out[axis] = size
        scale = [out[i] / shape[i] if shape[i] else 1.0 for i in range(rank)]
        if policy != "stretch":
            chosen = [scale[a] for a in axes]
            if policy == "not_larger":
                common = min(chosen)
            elif policy == "not_smaller":
                common = max(chosen)
            else:
                raise Refused(f"keep_aspect_ratio_policy {policy!r}")
            scale = [common if i in axes else 1.0 for i in range(rank)]
            out = [int(common * shape[i] + 0.5) if i in axes else shape[i] for i in range(rank)]
        return scale, out
    if scales is None:
        raise Refused("neither scales nor sizes")
    if len(scales) != len(axes):
        raise Refused(f"{len(scales)} scales for {len(axes)} axes")
    scale = [1.0] * rank
    for axis, value in zip(axes, scales, strict=True):
        scale[axis] = value
    out = [int(scale[i] * shape[i]) for i in range(rank)]
    return scale, out
