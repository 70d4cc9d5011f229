"""Reductions (ReduceSum/Mean/Max/Min, GlobalAveragePool, GlobalMaxPool) and Softmax.

A reduction is an anchor: one work-item per output element loops over the reduced axes. Softmax
needs whole rows, so it writes its own kernel: one work-item per row takes the maximum, sums the
shifted exponentials, then writes every element of the row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ember_gpu import dtypes
from ember_gpu.codegen import KernelWriter, strides
from ember_gpu.graph import Node
from ember_gpu.ir import Value
from ember_gpu.ops.base import AnchorOp, DeviceNode, Inferred, StandaloneOp, input_at, int_list

_MAX_SINCE = 18  # the opset where ReduceMax/Min/Mean's axes became an input
_AXES_SINCE = {"ReduceSum": 13, "ReduceMean": _MAX_SINCE, "ReduceMax": _MAX_SINCE,
               "ReduceMin": _MAX_SINCE}


class ReduceParams:
    __slots__ = ("axes", "keepdims")

    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims


class Reduce(AnchorOp):
    def __init__(self, kind: str, global_pool: bool = False) -> None:
        self.reduction = kind  # "sum", "mean", "max", "min"
        self.global_pool = global_pool

    def _params(self, node: Node, inputs: Sequence[Value | None], opset: int,
                rank: int) -> ReduceParams:
        if self.global_pool:
            return ReduceParams(tuple(range(2, rank)), True)
        since = _AXES_SINCE[node.op_type]
        axes = int_list(input_at(inputs, 1)) if opset >= since else node.attrs.get("axes")
        keepdims = bool(node.attrs.get("keepdims", 1))
        if not axes:
            if node.attrs.get("noop_with_empty_axes", 0):
                return ReduceParams((), keepdims)
            return ReduceParams(tuple(range(rank)), keepdims)
        return ReduceParams(tuple(sorted({a % rank for a in axes})), keepdims)

    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        params = self._params(node, inputs, opset, len(x.shape))
        if params.keepdims:
            shape = tuple(1 if i in params.axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in params.axes)
        return Inferred([shape], [x.dtype], params)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        p: ReduceParams = dn.params
        x = dn.inputs[0]
        assert x is not None
        it, ctype = kw.itype, dtypes.compute_type(x.dtype)
        index = iter(kw.index())
        x_strides = strides(x.shape)
        terms: list[str] = []
        loops: list[str] = []
        for axis, dim in enumerate(x.shape):
            if axis in p.axes:
                if p.keepdims:
                    next(index)
                if dim != 1:
                    loops.append(f"for ({it} r{axis} = 0; r{axis} < {dim}; ++r{axis})")
                    terms.append(f"r{axis} * {x_strides[axis]}")
            else:
                name = next(index)
                if name != "0":
                    terms.append(f"{name} * {x_strides[axis]}")
        acc = kw.fresh("acc")
        start = {"sum": "0", "mean": "0", "max": dtypes.lowest(x.dtype),
                 "min": dtypes.highest(x.dtype)}[self.reduction]
        kw.line(f"{ctype} {acc} = {start};")
        value = kw.load(x, " + ".join(terms) or "0")
        floating = ctype in ("float", "double")
        update = {
            "sum": f"{acc} += {value};", "mean": f"{acc} += {value};",
            "max": f"{acc} = {'fmax' if floating else 'max'}({acc}, ({ctype}){value});",
            "min": f"{acc} = {'fmin' if floating else 'min'}({acc}, ({ctype}){value});",
        }[self.reduction]
        kw.line(" ".join(loops) + (" " if loops else "") + update)
        if self.reduction == "mean":
            count = math.prod(x.shape[a] for a in p.axes)
            return f"({acc} / ({ctype}){count})"
        return acc


class SoftmaxParams:
    __slots__ = ("inner", "length", "outer")

    def __init__(self, outer: int, length: int, inner: int) -> None:
        self.outer = outer
        self.length = length
        self.inner = inner


class Softmax(StandaloneOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        rank = max(len(x.shape), 1)
        if opset >= 13:
            axis = node.attrs.get("axis", -1) % rank
            params = SoftmaxParams(math.prod(x.shape[:axis]), x.shape[axis],
                                   math.prod(x.shape[axis + 1:]))
        else:  # flattened to 2-D at axis, normalised over the rows
            axis = node.attrs.get("axis", 1) % rank
            params = SoftmaxParams(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]), 1)
        return Inferred([x.shape], [x.dtype], params)

    def emit(self, dn: DeviceNode, new_kernel: Any) -> list[KernelWriter]:
        p: SoftmaxParams = dn.params
        x, y = dn.inputs[0], dn.outputs[0]
        assert x is not None
        kw: KernelWriter = new_kernel((p.outer, p.inner), dn.label)
        it, ctype = kw.itype, dtypes.compute_type(x.dtype)
        outer, inner = kw.index()
        base = kw.local(it, f"{outer} * {p.length * p.inner} + {inner}", "base")
        at = f"{base} + l * {p.inner}" if p.inner != 1 else f"{base} + l"
        loop = f"for ({it} l = 0; l < {p.length}; ++l)"
        kw.line(f"{ctype} top = {dtypes.lowest(x.dtype)};")
        kw.line(f"{loop} top = fmax(top, {kw.load(x, at)});")
        kw.line(f"{ctype} sum = 0;")
        kw.line(f"{loop} sum += exp({kw.load(x, at)} - top);")
        kw.line(f"{loop} {{")
        kw.store(y, at, f"exp({kw.load(x, at)} - top) / sum")
        kw.line("}")
        return [kw]
