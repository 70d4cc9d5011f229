"""LSTM, GRU and RNN as the nodes of their steps: the recurrence unrolled at specialisation time.

The number of steps is a dimension of the input, so once the input shapes are known each step
is ordinary nodes (Gather the step's input, two Gemms, the gates' activations, the state
update) that the device runs as kernels, in order, on its in-order queue: the host never waits
between steps, and the weights' slices (a direction's ``W``, a gate's bias) fold on the host.
Fusion makes each step a few kernels. ``sequence_lens`` must be known at compile time (it is a
shape operand, see ``graph.SHAPE_OPERANDS``): a batch entry past its length keeps its state and
outputs zeros, as onnxruntime does.

Supported: forward, reverse and bidirectional; ``layout`` 0 and 1; initial states; biases;
LSTM peepholes and ``input_forget``; GRU ``linear_before_reset``; ``clip``; the activations
Sigmoid, Tanh and Relu. Refused (UnsupportedOperatorError, at the first specialisation):
other activations, and a reverse direction with unequal sequence lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.plugin import UnsupportedOperatorError
from ember_gpu.graph import Node
from ember_gpu.ir import Value

RECURRENT = frozenset({"LSTM", "GRU", "RNN"})
#: Gates per step and the default activations of one direction.
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                        "RNN": ["Tanh"]}
_ACTIVATIONS = frozenset({"Sigmoid", "Tanh", "Relu"})


def _refuse(device_name: str, node: Node, reason: str) -> UnsupportedOperatorError:
    error = UnsupportedOperatorError(device_name, node.op_type, node.name)
    error.args = (f"{error.args[0]}: {reason}",)
    return error


class _Builder:
    """Writes nodes and constants with names private to the layer being expanded."""

    def __init__(self, node: Node, dtype: np.dtype) -> None:
        self.prefix = node.name
        self.dtype = dtype
        self.nodes: list[Node] = []
        self.known: dict[str, np.ndarray] = {}
        self._count = 0

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{self.prefix}::{kind}{self._count}"

    def const(self, array: Any, dtype: Any = None) -> str:
        name = self._name("c")
        self.known[name] = np.array(array, dtype=dtype or self.dtype, order="C")  # 0-d stays 0-d
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        out = self._name("v")
        self.nodes.append(Node(op_type, f"{self.prefix}/{op_type}{self._count}", tuple(inputs),
                               (out,), attrs))
        return out

    def take(self, value: str, index: int | Sequence[int], axis: int) -> str:
        return self.op("Gather", value, self.const(index, np.int64), axis=axis)

    def reshape(self, value: str, shape: Sequence[int]) -> str:
        return self.op("Reshape", value, self.const(list(shape), np.int64))

    def concat(self, values: list[str], axis: int) -> str:
        return values[0] if len(values) == 1 else self.op("Concat", *values, axis=axis)


def expand_recurrent(node: Node, values: Sequence[Value | None], opset: int,
                     device_name: str) -> tuple[list[Node], dict[str, np.ndarray]]:
    """The nodes computing ``node`` step by step, and the constants they read."""
    x = values[0]
    assert x is not None
    if opset < 7:
        raise _refuse(device_name, node, "only opset 7 and later is supported")
    attrs = node.attrs
    layout = int(attrs.get("layout", 0))
    steps, batch = (x.shape[1], x.shape[0]) if layout else (x.shape[0], x.shape[1])
    if steps == 0:
        raise _refuse(device_name, node, "an empty sequence")
    r = values[2]
    assert r is not None
    hidden = int(attrs.get("hidden_size", r.shape[-1]))
    direction = attrs.get("direction", "forward")
    directions = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    kind = node.op_type
    activations = list(attrs.get("activations") or _DEFAULT_ACTIVATIONS[kind] * len(directions))
    if not set(activations) <= _ACTIVATIONS or "activation_alpha" in attrs \
            or "activation_beta" in attrs:
        raise _refuse(device_name, node, f"activations {activations} (the device runs "
                                         f"{sorted(_ACTIVATIONS)} without parameters)")
    lengths = values[4] if len(values) > 4 else None
    if lengths is not None and lengths.host is None:
        raise _refuse(device_name, node, "its sequence_lens must be known at compile time")
    lens = (np.full(batch, steps, np.int64) if lengths is None
            else np.clip(lengths.host.reshape(-1).astype(np.int64), 0, steps))
    if "reverse" in directions and np.any(lens != steps):
        raise _refuse(device_name, node, "a reverse direction with unequal sequence lengths")
    b = _Builder(node, x.dtype)
    names = [*node.inputs, *[""] * 8]
    per_direction = len(_DEFAULT_ACTIVATIONS[kind])
    ys, hs, cs = [], [], []
    for d, way in enumerate(directions):
        acts = activations[d * per_direction:(d + 1) * per_direction]
        y, h, c = _direction(b, kind, names, d, way, steps, batch, hidden, layout, lens, acts,
                             attrs)
        ys.append(y)
        hs.append(h)
        cs.append(c)
    outputs: list[str] = []
    # Y: [steps, directions, batch, hidden] (layout 0) or [batch, steps, directions, hidden]
    step_axis, dir_axis = (1, 2) if layout else (0, 1)
    one = [batch, 1, 1, hidden] if layout else [1, 1, batch, hidden]
    per_step = [b.concat([b.reshape(ys[d][t], one) for d in range(len(directions))], dir_axis)
                for t in range(steps)]
    outputs.append(b.concat(per_step, step_axis))
    state = [batch, 1, hidden] if layout else [1, batch, hidden]
    outputs.append(b.concat([b.reshape(h, state) for h in hs], 1 if layout else 0))
    if kind == "LSTM":
        outputs.append(b.concat([b.reshape(c, state) for c in cs], 1 if layout else 0))
    for name, produced in zip(node.outputs, outputs, strict=False):
        if name:
            b.nodes.append(Node("Identity", f"{node.name}/out:{name}", (produced,), (name,), {}))
    return b.nodes, b.known


def _direction(b: _Builder, kind: str, names: list[str], d: int, way: str, steps: int,
               batch: int, hidden: int, layout: int, lens: np.ndarray, acts: list[str],
               attrs: Any) -> tuple[list[str], str, str]:
    """One direction's steps: the output of each step (in time order), the last h and c."""
    gates = _GATES[kind]
    x_name, w_name, r_name, bias_name = names[0], names[1], names[2], names[3]
    init_h, init_c, peep = names[5], names[6], names[7]
    w = b.take(w_name, d, 0)  # [gates*H, I]
    r = b.take(r_name, d, 0)  # [gates*H, H]
    wb = rb = None
    if bias_name:
        bias = b.take(bias_name, d, 0)  # [2*gates*H]
        wb = b.take(bias, list(range(gates * hidden)), 0)
        rb = b.take(bias, list(range(gates * hidden, 2 * gates * hidden)), 0)
    state_axis = 1 if layout else 0
    zeros = b.const(np.zeros((batch, hidden)))
    h = b.take(init_h, d, state_axis) if init_h else zeros
    c = (b.take(init_c, d, state_axis) if init_c else zeros) if kind == "LSTM" else ""
    clip = attrs.get("clip")
    clip_names = (b.const(float(clip)), b.const(-float(clip))) if clip is not None else None

    def act(name: str, value: str) -> str:
        if clip_names is not None:
            value = b.op("Max", b.op("Min", value, clip_names[0]), clip_names[1])
        return b.op(name, value)

    def gate(value: str, index: int) -> str:
        return b.take(value, list(range(index * hidden, (index + 1) * hidden)), 1)

    peepholes = [b.take(b.take(peep, d, 0), list(range(i * hidden, (i + 1) * hidden)), 0)
                 for i in range(3)] if kind == "LSTM" and peep else None
    order = range(steps) if way == "forward" else range(steps - 1, -1, -1)
    outputs: dict[int, str] = {}
    for t in order:
        x_t = b.take(x_name, t, 1 if layout else 0)  # [B, I]
        xw = b.op("Gemm", x_t, w, *([wb] if wb else []), transB=1)  # [B, gates*H]
        if kind == "GRU":
            h_new = _gru_step(b, xw, h, r, rb, hidden, acts, act, gate,
                              int(attrs.get("linear_before_reset", 0)))
            c_new = ""
        else:
            pre = b.op("Gemm", h, r, b.op("Add", xw, rb) if rb else xw, transB=1)
            if kind == "RNN":
                h_new, c_new = act(acts[0], pre), ""
            else:
                h_new, c_new = _lstm_step(b, pre, c, peepholes, acts, act, gate,
                                          bool(attrs.get("input_forget", 0)))
        live = t < lens
        if live.all():
            h, c, y = h_new, c_new, h_new
        elif not live.any():
            y = zeros
        else:  # entries past their length keep their state and output zeros
            mask = b.const(live.reshape(batch, 1), np.bool_)
            y = b.op("Where", mask, h_new, zeros)
            h = b.op("Where", mask, h_new, h)
            if c:
                c = b.op("Where", mask, c_new, c)
        outputs[t] = y
    return [outputs[t] for t in range(steps)], h, c


def _lstm_step(b: _Builder, pre: str, c: str, peepholes: list[str] | None, acts: list[str],
               act: Any, gate: Any, input_forget: bool) -> tuple[str, str]:
    """Gates in ONNX's order i, o, f, c."""
    i_pre, o_pre, f_pre, c_pre = (gate(pre, k) for k in range(4))
    if peepholes is not None:
        i_pre = b.op("Add", i_pre, b.op("Mul", peepholes[0], c))
        f_pre = b.op("Add", f_pre, b.op("Mul", peepholes[2], c))
    i = act(acts[0], i_pre)
    f = b.op("Sub", b.const(1.0), i) if input_forget else act(acts[0], f_pre)
    c_new = b.op("Add", b.op("Mul", f, c), b.op("Mul", i, act(acts[1], c_pre)))
    if peepholes is not None:
        o_pre = b.op("Add", o_pre, b.op("Mul", peepholes[1], c_new))
    o = act(acts[0], o_pre)
    return b.op("Mul", o, act(acts[2], c_new)), c_new


def _gru_step(b: _Builder, xw: str, h: str, r: str, rb: str | None, hidden: int,
              acts: list[str], act: Any, gate: Any, linear_before_reset: int) -> str:
    """Gates in ONNX's order z, r, h."""
    xz, xr, xh = (gate(xw, k) for k in range(3))
    if linear_before_reset:
        hr = b.op("Gemm", h, r, *([rb] if rb else []), transB=1)  # [B, 3H]
        hz, hr_, hh = (gate(hr, k) for k in range(3))
        z = act(acts[0], b.op("Add", xz, hz))
        reset = act(acts[0], b.op("Add", xr, hr_))
        candidate = act(acts[1], b.op("Add", xh, b.op("Mul", reset, hh)))
    else:
        rows_zr, rows_h = list(range(2 * hidden)), list(range(2 * hidden, 3 * hidden))
        r_zr, r_h = b.take(r, rows_zr, 0), b.take(r, rows_h, 0)
        rb_zr = [b.take(rb, rows_zr, 0)] if rb else []
        rb_h = [b.take(rb, rows_h, 0)] if rb else []
        hzr = b.op("Gemm", h, r_zr, *rb_zr, transB=1)  # [B, 2H]
        z = act(acts[0], b.op("Add", xz, gate(hzr, 0)))
        reset = act(acts[0], b.op("Add", xr, gate(hzr, 1)))
        hh = b.op("Gemm", b.op("Mul", reset, h), r_h, *rb_h, transB=1)
        candidate = act(acts[1], b.op("Add", xh, hh))
    keep = b.op("Mul", z, h)
    return b.op("Add", b.op("Mul", b.op("Sub", b.const(1.0), z), candidate), keep)
