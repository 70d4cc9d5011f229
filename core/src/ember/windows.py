"""ONNX's window geometry (Conv, ConvTranspose, MaxPool, AveragePool...), in one place for every
device: strides, dilations and the padding ``auto_pad`` resolves to."""

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
