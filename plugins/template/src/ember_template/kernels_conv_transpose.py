"""ConvTranspose for the TEMPLATE device: the gradient of Conv, as a scatter of matmul results.

Each input pixel multiplies the whole kernel (one batched matmul per group gives every pixel's
contribution for every kernel tap); each tap's contributions are then added into the output at
stride steps, offset by the tap's dilated position. The full output is then cropped by the pads
(or grown by ``output_padding``) to the size ONNX defines.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ember_template.kernel_registry import Attrs, Inputs, optional_input, register, str_attr


@register("ConvTranspose")
def conv_transpose(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, w, bias = inputs[0], inputs[1], optional_input(inputs, 2)
    nd, group = x.ndim - 2, attrs.get("group", 1)
    kernel = list(w.shape[2:])
    strides = list(attrs.get("strides") or [1] * nd)
    dilations = list(attrs.get("dilations") or [1] * nd)
    extra = list(attrs.get("output_padding") or [0] * nd)
    begins, out_shape = _padding(attrs, list(x.shape[2:]), kernel, strides, dilations, extra)

    n, channels = x.shape[0], x.shape[1]
    out_channels = w.shape[1] * group
    pixels = math.prod(x.shape[2:])
    # (N, G, C/G, P) and (G, C/G, M/G * K): each pixel's contribution to every output channel and
    # kernel tap, as (N, G, M/G * K, P).
    cols = x.reshape(n, group, channels // group, pixels)
    weights = w.reshape(group, channels // group, -1)
    taps = np.matmul(weights.transpose(0, 2, 1), cols)
    taps = taps.reshape(n, out_channels, *kernel, *x.shape[2:])

    full = [s * (i - 1) + (k - 1) * d + 1
            for s, i, k, d in zip(strides, x.shape[2:], kernel, dilations, strict=True)]
    y = np.zeros((n, out_channels, *full), dtype=np.result_type(x.dtype, w.dtype))
    for tap in itertools.product(*(range(k) for k in kernel)):
        index = tuple(slice(t * d, t * d + s * (i - 1) + 1, s)
                      for t, d, s, i in zip(tap, dilations, strides, x.shape[2:], strict=True))
        y[(slice(None), slice(None), *index)] += taps[(slice(None), slice(None), *tap)]

    # Crop the begin pads, then take out_shape (zeros past the end: output_padding).
    result = np.zeros((n, out_channels, *out_shape), dtype=y.dtype)
    source = tuple(slice(max(b, 0), max(b, 0) + o) for b, o in zip(begins, out_shape, strict=True))
    cropped = y[(slice(None), slice(None), *source)]
    target = tuple(slice(max(-b, 0), max(-b, 0) + c)
                   for b, c in zip(begins, cropped.shape[2:], strict=True))
    result[(slice(None), slice(None), *target)] = cropped
    if bias is not None:
        result += bias.reshape(-1, *[1] * nd)
    return [result.astype(x.dtype, copy=False)]


def _padding(attrs: Attrs, in_shape: list[int], kernel: list[int], strides: list[int],
             dilations: list[int], extra: list[int]) -> tuple[list[int], list[int]]:
    """The begin pad and the output size of each spatial axis, as ONNX defines them."""
    nd = len(in_shape)
    auto_pad = str_attr(attrs, "auto_pad", "NOTSET")
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    natural = [s * (i - 1) + o + span
               for s, i, o, span in zip(strides, in_shape, extra, spans, strict=True)]
    output_shape = attrs.get("output_shape")
    if output_shape is not None and len(output_shape) > nd:
        output_shape = list(output_shape)[-nd:]  # given with the batch and channel axes
    if output_shape is None and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        pads = list(attrs.get("pads") or [0] * (2 * nd))
        return pads[:nd], [n - pads[i] - pads[i + nd] for i, n in enumerate(natural)]
    if output_shape is None:
        output_shape = [i * s for i, s in zip(in_shape, strides, strict=True)]
    begins = []
    for total in (n - o for n, o in zip(natural, output_shape, strict=True)):
        # SAME_UPPER puts the odd pad at the end; otherwise (and by default) at the beginning.
        begins.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    return begins, [int(o) for o in output_shape]
