"""GridSample for the TEMPLATE device: sample an image (2-D) or volume (3-D) at the points of a
grid of normalised coordinates in [-1, 1], with nearest, linear or cubic interpolation and zeros,
border or reflection padding, as ONNX defines it (opset 16 and 20 names both accepted).

Interpolation is separable: each output point is a weighted sum over taps (2 per axis for linear,
4 for cubic, 1 for nearest), gathered for all points at once.
"""

from __future__ import annotations

import itertools

import numpy as np

from ember_template.kernel_registry import Attrs, Inputs, register, str_attr

_MODES = {"bilinear": "linear", "bicubic": "cubic"}  # opset 16's names


@register("GridSample")
def grid_sample(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, grid = inputs[0], inputs[1]
    mode = str_attr(attrs, "mode", "linear" if opset >= 20 else "bilinear")
    mode = _MODES.get(mode, mode)
    padding = str_attr(attrs, "padding_mode", "zeros")
    corners = bool(attrs.get("align_corners", 0))
    sizes = x.shape[2:]
    nd = len(sizes)
    # grid[..., 0] is the last axis (x), so reverse to the order of x's spatial axes.
    coords = [grid[..., nd - 1 - i].astype(np.float32) for i in range(nd)]
    low = [np.float32(0 if corners else -0.5)] * nd
    high = [np.float32(n - 1 if corners else n - 0.5) for n in sizes]
    points = []
    for c, n, lo, hi in zip(coords, sizes, low, high, strict=True):
        p = (c + 1) / 2 * (n - 1) if corners else ((c + 1) * n - 1) / 2
        p = p.astype(np.float32)
        if mode == "nearest":
            p = np.rint(p)
        if padding == "border":
            p = np.where((p < lo) | (p > hi), np.clip(p, 0, n - 1), p)
        elif padding == "reflection":
            p = _reflect(p, lo, hi)
        points.append(p)

    taps_per_axis = []
    for p in points:
        if mode == "nearest":
            taps_per_axis.append([(p.astype(np.int64), np.ones_like(p))])
            continue
        base = np.floor(p)
        t = p - base
        base = base.astype(np.int64)
        if mode == "linear":
            taps_per_axis.append([(base, 1 - t), (base + 1, t)])
        else:
            weights = _cubic(t)
            taps_per_axis.append([(base + k - 1, weights[k]) for k in range(4)])

    n_batch, channels = x.shape[:2]
    out_points = grid.shape[1:-1]
    y = np.zeros((n_batch, channels, *out_points), dtype=np.float64)
    batch = np.arange(n_batch).reshape(-1, *[1] * len(out_points))
    for combination in itertools.product(*taps_per_axis):
        weight = np.ones(1, np.float64)
        index, valid = [], np.ones(1, bool)
        for (tap, w), n, lo, hi in zip(combination, sizes, low, high, strict=True):
            weight = weight * w
            if padding == "zeros":
                valid = valid & (tap >= 0) & (tap < n)
                tap = np.clip(tap, 0, n - 1)
            elif padding == "border":
                tap = np.clip(tap, 0, n - 1)
            else:
                tap = np.clip(_reflect(tap.astype(np.float64), lo, hi).astype(np.int64), 0, n - 1)
            index.append(tap)
        y += _gather(x, batch, index) * np.where(valid, weight, 0)[:, None]
    return [y.astype(x.dtype)]


def _gather(x: np.ndarray, batch: np.ndarray, index: list[np.ndarray]) -> np.ndarray:
    """x[n, :, i0, i1...] for every output point: (N, C, *points)."""
    picked = x[(np.broadcast_to(batch, index[0].shape), slice(None), *index)]
    # Advanced indices around a slice put the broadcast axes first: (N, *points, C).
    return np.moveaxis(picked, -1, 1)


def _reflect(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect coordinates off the borders until they fall between them, as ONNX's reference."""
    span = hi - lo
    below, above = lo - p, p - hi
    out = p.astype(np.float64)
    for distance, near, far, mask in ((below, lo, hi, p < lo), (above, hi, lo, p > hi)):
        d = distance.astype(np.float64)
        folds = np.trunc(d / span)
        rest = d - folds * span
        even = folds % 2 == 0
        toward = np.where(near == lo, 1.0, -1.0)
        reflected = np.where(even, near + toward * rest, far - toward * rest)
        out = np.where(mask, reflected, out)
    return out.astype(p.dtype)


def _cubic(t: np.ndarray, a: float = -0.75) -> list[np.ndarray]:
    def near(d: np.ndarray) -> np.ndarray:
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: np.ndarray) -> np.ndarray:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]
