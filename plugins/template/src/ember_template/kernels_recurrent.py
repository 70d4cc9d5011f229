"""LSTM, GRU and RNN for the TEMPLATE device: a Python loop over time steps, numpy inside a step.

All three share the frame here: ``layout`` 1 is turned into 0 on the way in and back on the way
out; each direction runs forward over time (``reverse`` reverses each batch entry's valid prefix,
``sequence_lens`` long, runs forward and reverses the outputs back); past a batch entry's length
its state stays as it was and its output is zero, as ONNX defines. Only the cell (what one step
computes from the input projection and the previous state) differs between the operators.

Input projections for every time step are one matmul before the loop; the loop does only the
recurrent matmul and the gates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ember_template.kernel_registry import (
    Attrs,
    Inputs,
    optional_input,
    register,
    stable_sigmoid,
    str_attr,
)

Activation = Callable[[np.ndarray], np.ndarray]

#: name -> (function of x, alpha, beta; default alpha; default beta), as ONNX's RNN docs list them.
_ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray, float, float], np.ndarray],
                              float | None, float | None]] = {
    "relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: stable_sigmoid(x), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1)), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: np.logaddexp(x, 0), None, None),
}

#: (gates per step, default activations, states) of each operator.
_SHAPES = {"LSTM": (4, ("Sigmoid", "Tanh", "Tanh"), 2), "GRU": (3, ("Sigmoid", "Tanh"), 1),
           "RNN": (1, ("Tanh",), 1)}


def activations(attrs: Attrs, op_type: str, directions: int) -> list[list[Activation]]:
    """The activation functions of each direction, alphas and betas consumed in order by the
    functions that take them (ONNX's defaults when the lists run out)."""
    names = [n.decode() if isinstance(n, bytes) else n
             for n in attrs.get("activations") or []] or list(_SHAPES[op_type][1]) * directions
    alphas = list(attrs.get("activation_alpha") or [])
    betas = list(attrs.get("activation_beta") or [])
    functions = []
    for name in names:
        fn, default_alpha, default_beta = _ACTIVATIONS[name.lower()]
        alpha = alphas.pop(0) if default_alpha is not None and alphas else default_alpha
        beta = betas.pop(0) if default_beta is not None and betas else default_beta

        def bound(x: np.ndarray, fn: Any = fn, alpha: Any = alpha, beta: Any = beta) -> Any:
            return np.asarray(fn(x, alpha, beta)).astype(x.dtype, copy=False)

        functions.append(bound)
    per_direction = len(functions) // directions
    return [functions[d * per_direction:(d + 1) * per_direction] for d in range(directions)]


def _recurrent(op_type: str) -> Callable[[Inputs, Attrs, int], list[np.ndarray]]:
    gates, _, states = _SHAPES[op_type]

    def kernel(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
        x, w, r = inputs[0], inputs[1], inputs[2]
        bias, lengths = optional_input(inputs, 3), optional_input(inputs, 4)
        initial = [optional_input(inputs, 5 + i) for i in range(states)]
        peepholes = optional_input(inputs, 7) if op_type == "LSTM" else None
        layout = attrs.get("layout", 0)
        if layout:
            x = x.swapaxes(0, 1)
            initial = [None if s is None else s.swapaxes(0, 1) for s in initial]
        steps, batch, _ = x.shape
        hidden = r.shape[-1]
        direction = str_attr(attrs, "direction", "forward")
        directions = w.shape[0]
        functions = activations(attrs, op_type, directions)
        lengths = (np.full(batch, steps, np.int64) if lengths is None
                   else lengths.astype(np.int64))
        clip = attrs.get("clip")

        ys, finals = [], []
        for d in range(directions):
            reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
            b = (np.zeros(2 * gates * hidden, x.dtype) if bias is None else bias[d])
            state = [np.zeros((batch, hidden), x.dtype) if s is None else s[d] for s in initial]
            xs = _reverse_prefixes(x, lengths) if reverse else x
            # Every step's input projection at once, with the input bias.
            projected = xs @ w[d].T + b[: gates * hidden]
            cell = _CELLS[op_type](r[d], b[gates * hidden:], functions[d], clip, attrs,
                                   None if peepholes is None else peepholes[d])
            y = np.zeros((steps, batch, hidden), x.dtype)
            for t in range(steps):
                active = (t < lengths)[:, None]
                new = cell(projected[t], state)
                state = [np.where(active, n, s) for n, s in zip(new, state, strict=True)]
                y[t] = np.where(active, new[0], 0)
            ys.append(_reverse_prefixes(y, lengths) if reverse else y)
            finals.append(state)

        y = np.stack(ys, axis=1)  # (steps, directions, batch, hidden)
        outs = [np.stack([f[i] for f in finals]) for i in range(states)]  # (dirs, batch, hidden)
        if layout:
            y = y.transpose(2, 0, 1, 3)
            outs = [o.swapaxes(0, 1) for o in outs]
        return [y, *outs]

    return kernel


def _reverse_prefixes(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``values`` (time, batch, ...) with each batch entry's first ``lengths[b]`` steps reversed."""
    if np.all(lengths == values.shape[0]):
        return values[::-1]
    out = np.zeros_like(values)
    for b, n in enumerate(lengths.tolist()):
        out[:n, b] = values[:n, b][::-1]
    return out


def _clip(values: np.ndarray, clip: float | None) -> np.ndarray:
    return values if clip is None else np.clip(values, -clip, clip)


Cell = Callable[[np.ndarray, list[np.ndarray]], list[np.ndarray]]


def _lstm_cell(r: np.ndarray, recurrent_bias: np.ndarray, fns: Sequence[Activation],
               clip: float | None, attrs: Attrs, peepholes: np.ndarray | None) -> Cell:
    f, g, h = fns
    hidden = r.shape[-1]
    p_i, p_o, p_f = ((None, None, None) if peepholes is None
                     else (peepholes[:hidden], peepholes[hidden:2 * hidden],
                           peepholes[2 * hidden:]))
    couple = bool(attrs.get("input_forget", 0))

    def cell(projected: np.ndarray, state: list[np.ndarray]) -> list[np.ndarray]:
        h_prev, c_prev = state
        z = projected + h_prev @ r.T + recurrent_bias
        zi, zo, zf, zc = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))  # i, o, f, c
        if p_i is not None:
            zi, zf = zi + p_i * c_prev, zf + p_f * c_prev
        i = f(_clip(zi, clip))
        forget = 1 - i if couple else f(_clip(zf, clip))
        c = forget * c_prev + i * g(_clip(zc, clip))
        if p_o is not None:
            zo = zo + p_o * c
        o = f(_clip(zo, clip))
        return [o * h(c), c]

    return cell


def _gru_cell(r: np.ndarray, recurrent_bias: np.ndarray, fns: Sequence[Activation],
              clip: float | None, attrs: Attrs, peepholes: np.ndarray | None) -> Cell:
    f, g = fns
    hidden = r.shape[-1]
    r_zr, r_h = r[: 2 * hidden], r[2 * hidden:]
    b_zr, b_h = recurrent_bias[: 2 * hidden], recurrent_bias[2 * hidden:]
    before_reset = bool(attrs.get("linear_before_reset", 0))

    def cell(projected: np.ndarray, state: list[np.ndarray]) -> list[np.ndarray]:
        (h_prev,) = state
        zr = f(_clip(projected[:, : 2 * hidden] + h_prev @ r_zr.T + b_zr, clip))
        z, reset = zr[:, :hidden], zr[:, hidden:]
        # linear_before_reset applies the reset gate after the recurrent matmul (cuDNN's way)
        recurrent = (reset * (h_prev @ r_h.T + b_h) if before_reset
                     else (reset * h_prev) @ r_h.T + b_h)
        candidate = g(_clip(projected[:, 2 * hidden:] + recurrent, clip))
        return [(1 - z) * candidate + z * h_prev]

    return cell


def _rnn_cell(r: np.ndarray, recurrent_bias: np.ndarray, fns: Sequence[Activation],
              clip: float | None, attrs: Attrs, peepholes: np.ndarray | None) -> Cell:
    (f,) = fns

    def cell(projected: np.ndarray, state: list[np.ndarray]) -> list[np.ndarray]:
        return [f(_clip(projected + state[0] @ r.T + recurrent_bias, clip))]

    return cell


_CELLS = {"LSTM": _lstm_cell, "GRU": _gru_cell, "RNN": _rnn_cell}
for _op in _CELLS:
    register(_op)(_recurrent(_op))
