"""Sliding-window geometry shared by Conv and pooling: strides, dilations, pads, output sizes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


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


def geometry(attrs: Mapping[str, Any], size: Sequence[int],
             kernel: Sequence[int]) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """Strides, dilations and (begin, end) pads per spatial axis, resolving auto_pad."""
    nd = len(size)
    strides = list(attrs.get("strides") or [1] * nd)
    dilations = list(attrs.get("dilations") or [1] * nd)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for n, k, s, d in zip(size, kernel, strides, dilations, strict=True):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)  # output is ceil(n / s)
            small, large = total // 2, total - total // 2
            pads.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
    elif auto_pad == "VALID":
        pads = [(0, 0)] * nd
    else:
        flat = list(attrs.get("pads") or [0] * 2 * nd)
        pads = list(zip(flat[:nd], flat[nd:], strict=True))
    return strides, dilations, pads


def conv_window(attrs: Mapping[str, Any], size: Sequence[int], kernel: Sequence[int]) -> Window:
    strides, dilations, pads = geometry(attrs, size, kernel)
    out = tuple((n + b + e - (k - 1) * d - 1) // s + 1 for n, k, s, d, (b, e)
                in zip(size, kernel, strides, dilations, pads, strict=True))
    return Window(tuple(size), tuple(kernel), tuple(strides), tuple(dilations),
                  tuple(b for b, _ in pads), tuple(e for _, e in pads), out)


def pool_window(attrs: Mapping[str, Any], size: Sequence[int]) -> Window:
    """The window of a pooling node; with ceil_mode the last window may hang past the end pad,
    and that overhang never counts (it is not padding)."""
    kernel = list(attrs["kernel_shape"])
    strides, dilations, pads = geometry(attrs, size, kernel)
    out = []
    for n, k, s, d, (b, e) in zip(size, kernel, strides, dilations, pads, strict=True):
        span, room = (k - 1) * d + 1, n + b + e
        if attrs.get("ceil_mode", 0):
            count = -(-(room - span) // s) + 1
            if (count - 1) * s >= n + b:  # the last window must start inside input or begin pad
                count -= 1
        else:
            count = (room - span) // s + 1
        out.append(count)
    return Window(tuple(size), tuple(kernel), tuple(strides), tuple(dilations),
                  tuple(b for b, _ in pads), tuple(e for _, e in pads), tuple(out))


def always_inside(window: Window, axis: int) -> bool:
    """True when no window position along ``axis`` falls outside the input (no check needed)."""
    last = (window.out[axis] - 1) * window.strides[axis] - window.begin[axis] \
        + (window.kernel[axis] - 1) * window.dilations[axis]
    return window.begin[axis] == 0 and last < window.size[axis]
