"""Resize (opsets 10 to 19) and Upsample (opsets 7 and 9) for the TEMPLATE device.

Resizing is separable: each resized axis is interpolated on its own, one after the other, as
ONNX's reference does. For one axis, every output index maps to a source coordinate (the
``coordinate_transformation_mode``), then to ``n`` neighbouring input indices and their weights
(``mode``: nearest, linear or cubic; ``antialias`` widens the linear and cubic footprints when
downsampling). Nearest neighbours are gathered with ``np.take`` and keep the input's dtype; linear
and cubic are weighted sums in float64, cast back (integers rounded and saturated) at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ember_template.kernel_registry import Attrs, Inputs, optional_input, register, str_attr

#: ONNX's defaults for Resize-11 and later; Resize-10 and Upsample behave like ``asymmetric``
#: with ``floor`` for nearest neighbours.
_MODERN_DEFAULTS = {"coordinate_transformation_mode": "half_pixel",
                    "nearest_mode": "round_prefer_floor"}
_LEGACY_DEFAULTS = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}

Coefficients = Callable[[np.ndarray, float], np.ndarray]


@register("Resize")
def resize(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x = inputs[0]
    if opset < 11:
        roi, scales, sizes = None, inputs[1], None
    else:
        roi, scales, sizes = (optional_input(inputs, i) for i in (1, 2, 3))
    return [_resize(x, roi, scales, sizes, attrs, opset)]


@register("Upsample")
def upsample(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    scales = attrs["scales"] if opset < 9 else inputs[1]
    return [_resize(inputs[0], None, np.asarray(scales, np.float32), None, attrs, 10)]


def _resize(x: np.ndarray, roi: np.ndarray | None, scales: np.ndarray | None,
            sizes: np.ndarray | None, attrs: Attrs, opset: int) -> np.ndarray:
    defaults = _MODERN_DEFAULTS if opset >= 11 else _LEGACY_DEFAULTS
    transform = str_attr(attrs, "coordinate_transformation_mode",
                     defaults["coordinate_transformation_mode"])
    mode = str_attr(attrs, "mode", "nearest")
    rank = x.ndim
    axes = [a % rank for a in attrs.get("axes", range(rank))]
    policy = str_attr(attrs, "keep_aspect_ratio_policy", "stretch")

    # Per axis of x: the scale factor and the output size (axes left out keep theirs).
    factors, out_sizes = [1.0] * rank, list(x.shape)
    if sizes is not None and sizes.size:
        wanted = [int(s) for s in sizes.reshape(-1)]
        for axis, size in zip(axes, wanted, strict=True):
            factors[axis], out_sizes[axis] = size / x.shape[axis], size
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            common = pick(factors[a] for a in axes)
            for axis in axes:  # round half up, as ONNX says
                factors[axis], out_sizes[axis] = common, int(common * x.shape[axis] + 0.5)
    else:
        assert scales is not None, "Resize needs scales or sizes"
        for axis, scale in zip(axes, scales.reshape(-1).tolist(), strict=True):
            factors[axis], out_sizes[axis] = scale, math.floor(x.shape[axis] * scale)

    # roi holds starts then ends for `axes`, as fractions of the input; only tf_crop_and_resize
    # reads it.
    bounds = [(0.0, 1.0)] * rank
    if roi is not None and roi.size and transform == "tf_crop_and_resize":
        values = roi.reshape(-1).tolist()
        for i, axis in enumerate(axes):
            bounds[axis] = (values[i], values[i + len(axes)])

    coefficients = _coefficients(mode, attrs, defaults["nearest_mode"])
    result = x
    for axis in axes:
        if (math.isclose(factors[axis], 1.0) and out_sizes[axis] == x.shape[axis]
                and bounds[axis] == (0.0, 1.0)):
            continue  # this axis keeps its size and its sampling points
        result = _resize_axis(result, axis, factors[axis], out_sizes[axis], bounds[axis],
                              transform, coefficients, mode == "nearest", attrs)
    if result.dtype != x.dtype:
        result = _cast_back(result, x.dtype)
    return result


def _source_coordinates(transform: str, out_size: int, in_size: int, factor: float,
                        bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray | None]:
    """For each output index, its coordinate in the input; and, for tf_crop_and_resize, which
    ones fall outside the input (they take ``extrapolation_value``)."""
    y = np.arange(out_size, dtype=np.float64)
    scaled_width = factor * in_size  # ONNX uses the unrounded output width here
    outside = None
    if transform == "align_corners":
        x = np.zeros(out_size) if scaled_width == 1 else y * (in_size - 1) / (scaled_width - 1)
    elif transform == "asymmetric":
        x = y / factor
    elif transform == "tf_crop_and_resize":
        start, end = bounds
        if scaled_width == 1:
            x = np.full(out_size, (end - start) * (in_size - 1) / 2)
        else:
            x = y * (end - start) * (in_size - 1) / (scaled_width - 1)
        x = x + start * (in_size - 1)
        outside = (x < 0) | (x > in_size - 1)
    elif transform == "pytorch_half_pixel":
        x = np.full(out_size, -0.5) if scaled_width == 1 else (y + 0.5) / factor - 0.5
    elif transform == "half_pixel":
        x = (y + 0.5) / factor - 0.5
    elif transform == "half_pixel_symmetric":
        # The centre of the input maps to the centre of the output even when the output size
        # was rounded.
        offset = in_size / 2 * (1 - out_size / scaled_width)
        x = offset + (y + 0.5) / factor - 0.5
    else:
        raise ValueError(f"unknown coordinate_transformation_mode {transform!r}")
    return x, outside


def _resize_axis(x: np.ndarray, axis: int, factor: float, out_size: int,
                 bounds: tuple[float, float], transform: str, coefficients: Coefficients,
                 nearest: bool, attrs: Attrs) -> np.ndarray:
    in_size = x.shape[axis]
    if out_size == 0 or in_size == 0:
        shape = list(x.shape)
        shape[axis] = out_size
        return np.zeros(shape, x.dtype)
    source, outside = _source_coordinates(transform, out_size, in_size, factor, bounds)
    below = np.floor(source)
    # The ratio lies in (0, 1]: an exact integer coordinate counts as 1 past the index before it.
    ratio = np.where(source == below, 1.0, source - below)
    weights = coefficients(ratio, factor)  # (out_size, n), n even
    n = weights.shape[1]
    first = np.where(source == below, below - n // 2, below - n // 2 + 1).astype(np.int64)
    neighbours = first[:, None] + np.arange(n)[None, :]
    if attrs.get("exclude_outside", 0):
        weights = np.where((neighbours < 0) | (neighbours >= in_size), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    neighbours = np.clip(neighbours, 0, in_size - 1)  # the edge repeats beyond the input

    if nearest:  # exactly one weight per row is 1: gather, keeping the dtype
        picked = neighbours[np.arange(out_size), np.argmax(weights, axis=1)]
        result = np.take(x, picked, axis=axis)
    else:
        # A dense (out_size, in_size) matrix: small for the axes models resize.
        matrix = np.zeros((out_size, in_size))
        np.add.at(matrix, (np.repeat(np.arange(out_size), n), neighbours.reshape(-1)),
                  weights.reshape(-1))
        moved = np.moveaxis(x, axis, -1).astype(np.float64, copy=False)
        result = np.moveaxis(moved @ matrix.T, -1, axis)
    if outside is not None and outside.any():
        shape = [1] * x.ndim
        shape[axis] = out_size
        value = attrs.get("extrapolation_value", 0.0)
        result = np.where(outside.reshape(shape), np.asarray(value, result.dtype), result)
    return result


def _cast_back(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):  # round, then saturate, as ONNX's reference does
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


# -- the interpolation weights: (ratio per output, scale) -> (outputs, n) ------------------------


def _coefficients(mode: str, attrs: Attrs, default_nearest: str) -> Coefficients:
    antialias = bool(attrs.get("antialias", 0))
    if mode == "nearest":
        return _nearest(str_attr(attrs, "nearest_mode", default_nearest))
    if mode == "linear":
        return _linear_antialias if antialias else _linear
    if mode == "cubic":
        a = float(attrs.get("cubic_coeff_a", -0.75))
        if antialias:
            return lambda ratio, scale: _cubic_antialias(ratio, scale, a)
        return lambda ratio, scale: _cubic(ratio, a)
    raise ValueError(f"unknown Resize mode {mode!r}")


def _nearest(rounding: str) -> Coefficients:
    def coefficients(ratio: np.ndarray, scale: float) -> np.ndarray:
        if rounding == "round_prefer_floor":
            upper = ratio > 0.5
        elif rounding == "round_prefer_ceil":
            upper = ratio >= 0.5
        elif rounding == "floor":
            upper = np.zeros(ratio.shape, bool)
        elif rounding == "ceil":
            upper = np.ones(ratio.shape, bool)
        else:
            raise ValueError(f"unknown nearest_mode {rounding!r}")
        upper = upper | (ratio == 1.0)  # an exact coordinate is the upper neighbour
        return np.stack([~upper, upper], axis=1).astype(np.float64)

    return coefficients


def _linear(ratio: np.ndarray, scale: float) -> np.ndarray:
    return np.stack([1 - ratio, ratio], axis=1)


def _linear_antialias(ratio: np.ndarray, scale: float) -> np.ndarray:
    scale = min(scale, 1.0)
    start = int(np.floor(-1 / scale) + 1)
    taps = np.arange(start, 2 - start, dtype=np.float64)
    weights = np.clip(1 - np.abs((taps[None, :] - ratio[:, None]) * scale), 0, 1)
    return weights / weights.sum(axis=1, keepdims=True)


def _cubic(ratio: np.ndarray, a: float) -> np.ndarray:
    return np.stack([_keys(ratio + 1, a), _keys(ratio, a), _keys(1 - ratio, a),
                     _keys(2 - ratio, a)], axis=1)


def _cubic_antialias(ratio: np.ndarray, scale: float, a: float) -> np.ndarray:
    scale = min(scale, 1.0)
    start = int(np.floor(-2 / scale) + 1)
    taps = np.arange(start, 2 - start, dtype=np.float64)
    weights = _keys(scale * (taps[None, :] - ratio[:, None]), a)
    return weights / weights.sum(axis=1, keepdims=True)


def _keys(distance: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter ``a``."""
    d = np.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))

