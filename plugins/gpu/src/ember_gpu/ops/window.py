"""Sliding-window geometry shared by Conv and pooling: strides, dilations, pads, output sizes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ember.plugin import pooled_sizes, window_geometry


class Window:
    __slots__ = ("begin", "dilations", "end", "kernel", "out", "size", "strides")

    def __init__(self, size: tuple[int, ...], kernel: tuple[int, ...], strides: tuple[int, ...],
                 dilations: tuple[int, ...], begin: tuple[int, ...], end: tuple[int, ...],
                 out: tuple[int, ...]) -> None:
        self.size = size  # input spatial dims
        self.kernel = kernel
        self.strides = strides
        self.dilations = dilations
        self.begin = begin  # pads before each spatial dim
        self.end = end  # pads after (a ceil_mode overhang is not padding: not counted)
        self.out = out


def conv_window(attrs: Mapping[str, Any], size: Sequence[int], kernel: Sequence[int]) -> Window:
    strides, dilations, pads = window_geometry(attrs, size, kernel)
    out = tuple((n + b + e - (k - 1) * d - 1) // s + 1 for n, k, s, d, (b, e)
                in zip(size, kernel, strides, dilations, pads, strict=True))
    return Window(tuple(size), tuple(kernel), tuple(strides), tuple(dilations),
                  tuple(b for b, _ in pads), tuple(e for _, e in pads), out)


def pool_window(attrs: Mapping[str, Any], size: Sequence[int]) -> Window:
    """The window of a pooling node; with ceil_mode the last window may hang past the end pad,
    and that overhang never counts (it is not padding)."""
    kernel = list(attrs["kernel_shape"])
    strides, dilations, pads, out = pooled_sizes(attrs, size, kernel)
    return Window(tuple(size), tuple(kernel), tuple(strides), tuple(dilations),
                  tuple(b for b, _ in pads), tuple(e for _, e in pads), tuple(out))


def always_inside(window: Window, axis: int) -> bool:
    """True when no window position along ``axis`` falls outside the input (no check needed)."""
    last = (window.out[axis] - 1) * window.strides[axis] - window.begin[axis] \
        + (window.kernel[axis] - 1) * window.dilations[axis]
    return window.begin[axis] == 0 and last < window.size[axis]
