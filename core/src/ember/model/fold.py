"""Rewrites of constants that every device may make, ONNX's arithmetic written once.

The graph walks differ from device to device (TEMPLATE rewrites ONNX nodes, the GPU its own
graph); what a rewrite computes does not, and lives here.
"""

from __future__ import annotations

import numpy as np


def batchnorm_into_conv(
    weight: np.ndarray, bias: np.ndarray | None, scale: np.ndarray, shift: np.ndarray,
    mean: np.ndarray, var: np.ndarray, epsilon: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """The weight and bias of one Conv equal to Conv(weight, bias) followed by an inference-mode
    BatchNormalization (scale, shift, mean, var, epsilon), in the weight's dtype.

    ``bias`` is None for a Conv without one.
    """
    factor = scale / np.sqrt(var + np.asarray(epsilon, dtype=var.dtype))
    new_weight = (weight * factor.reshape(-1, *[1] * (weight.ndim - 1))).astype(weight.dtype)
    new_bias = (((0.0 if bias is None else bias) - mean) * factor + shift).astype(weight.dtype)
    return new_weight, new_bias
