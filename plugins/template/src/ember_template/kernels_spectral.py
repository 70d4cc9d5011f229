"""DFT and STFT for the TEMPLATE device (speech front ends), on numpy's FFT.

Signals carry a last axis of 1 (real) or 2 (real, imaginary); results always have 2. The FFT runs
in the signal's own precision (numpy 2 keeps float32 as complex64), as ONNX's reference does.
"""

from __future__ import annotations

import numpy as np

from ember_template.kernel_registry import Attrs, Inputs, optional_input, register


def _complex(x: np.ndarray) -> np.ndarray:
    """(..., 1 or 2) -> complex (...)."""
    if x.shape[-1] == 1:
        return x[..., 0]
    return x[..., 0] + np.asarray(1j, np.result_type(x.dtype, np.complex64)) * x[..., 1]


def _pairs(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.stack([values.real, values.imag], axis=-1).astype(dtype)


@register("DFT")
def dft(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, length = inputs[0], optional_input(inputs, 1)
    if opset >= 20:
        given = optional_input(inputs, 2)
        axis = int(np.asarray(given).reshape(-1)[0]) if given is not None else -2
    else:
        axis = attrs.get("axis", 1)
    axis = axis % x.ndim  # an axis of x, the last (pair) axis included in the count
    inverse, onesided = attrs.get("inverse", 0), attrs.get("onesided", 0)
    n = int(np.asarray(length).reshape(-1)[0]) if length is not None and np.size(length) else None
    signal = _complex(x)
    if inverse:
        if n is None:
            n = 2 * (x.shape[axis] - 1) if onesided else x.shape[axis]
        if onesided:  # one-sided spectrum in, real signal out
            return [np.fft.irfft(signal, n=n, axis=axis)[..., None].astype(x.dtype)]
        return [_pairs(np.fft.ifft(signal, n=n, axis=axis), x.dtype)]
    n = x.shape[axis] if n is None else n
    spectrum = np.fft.fft(signal, n=n, axis=axis)
    if onesided:
        spectrum = np.take(spectrum, np.arange(n // 2 + 1), axis=axis)
    return [_pairs(spectrum, x.dtype)]


@register("STFT")
def stft(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    x, step = inputs[0], int(np.asarray(inputs[1]).reshape(-1)[0])
    window, length = optional_input(inputs, 2), optional_input(inputs, 3)
    if length is not None:
        frame = int(np.asarray(length).reshape(-1)[0])
    else:
        frame = window.shape[0] if window is not None else x.shape[-2]
    weights = np.ones(frame, x.dtype) if window is None else window
    signal = _complex(x)  # (batch, samples)
    count = 1 + (signal.shape[1] - frame) // step
    frames = np.stack([signal[:, i * step:i * step + frame] for i in range(count)], axis=1)
    spectrum = np.fft.fft(frames * weights, n=frame, axis=-1)
    if attrs.get("onesided", 1):
        spectrum = spectrum[..., : frame // 2 + 1]
    return [_pairs(spectrum, x.dtype)]
