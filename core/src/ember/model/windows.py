"""ONNX's window geometry (Conv, ConvTranspose, MaxPool, AveragePool...), in one place for every
device: strides, dilations, the padding ``auto_pad`` resolves to, and pooling's output sizes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def window_geometry(
    attrs: Mapping[str, Any], size: Sequence[int], kernel: Sequence[int]
) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """Strides, dilations and (begin, end) pads per spatial axis of a windowed operator.

    :param attrs: the node's attributes (``strides``, ``dilations``, ``pads``, ``auto_pad``;
        absent ones take ONNX's defaults).
    :param size: the input's spatial sizes.
    :param kernel: the window's sizes.
    """
    nd = len(size)
    strides = list(attrs.get("strides") or [1] * nd)
    dilations = list(attrs.get("dilations") or [1] * nd)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
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


def pooled_sizes(
    attrs: Mapping[str, Any], size: Sequence[int], kernel: Sequence[int]
) -> tuple[list[int], list[int], list[tuple[int, int]], list[int]]:
    """Strides, dilations, (begin, end) pads and the output size per spatial axis of a pooling
    node (MaxPool, AveragePool, LpPool).

    With ``ceil_mode`` the last window may hang past the end pad; that overhang is not padding
    (a device must not count it in an average, nor let it win a maximum), and a window that
    would start past the input and the begin pad is not one.
    """
    strides, dilations, pads = window_geometry(attrs, size, kernel)
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
    return strides, dilations, pads, out
