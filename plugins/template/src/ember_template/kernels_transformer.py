"""Transformer pieces for the TEMPLATE device: RMSNormalization and RotaryEmbedding (opset 23).
The Attention operator is not a kernel yet; models that spell it out (MatMul, Softmax...) run."""

from __future__ import annotations

import numpy as np

from ember_template.kernel_registry import Attrs, Inputs, optional_input, register, typed_scalar


@register("RMSNormalization")
def rms_normalization(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, scale = inputs[0], inputs[1]
    axis = attrs.get("axis", -1) % x.ndim
    work = x.astype(np.float32) if x.dtype.itemsize < 4 else x  # stash_type 1: float32
    mean_square = np.mean(work * work, axis=tuple(range(axis, x.ndim)), keepdims=True)
    rms = np.sqrt(mean_square + typed_scalar(attrs.get("epsilon", 1e-5), work.dtype))
    return [(work / rms * scale).astype(x.dtype)]


@register("RotaryEmbedding")
def rotary_embedding(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, cos, sin, positions = inputs[0], inputs[1], inputs[2], optional_input(inputs, 3)
    # Work on (batch, sequence, heads, head_size): 4-D inputs come as (batch, heads, seq, size),
    # 3-D ones as (batch, seq, heads * size).
    if x.ndim == 4:
        work = x.transpose(0, 2, 1, 3)
    else:
        heads = attrs["num_heads"]
        work = x.reshape(x.shape[0], x.shape[1], heads, x.shape[2] // heads)
    dim = attrs.get("rotary_embedding_dim", 0) or work.shape[3]
    rotate, keep = work[..., :dim], work[..., dim:]
    if positions is not None:
        cos, sin = cos[positions], sin[positions]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    if attrs.get("interleaved", 0):
        x1, x2 = rotate[..., 0::2], rotate[..., 1::2]
    else:
        x1, x2 = rotate[..., : dim // 2], rotate[..., dim // 2:]
    real, imaginary = cos * x1 - sin * x2, sin * x1 + cos * x2
    if attrs.get("interleaved", 0):
        rotated = np.stack([real, imaginary], axis=-1).reshape(rotate.shape)
    else:
        rotated = np.concatenate([real, imaginary], axis=-1)
    out = np.concatenate([rotated, keep], axis=-1).astype(x.dtype)
    return [out.transpose(0, 2, 1, 3) if x.ndim == 4 else out.reshape(x.shape)]
