"""MaxPool and AveragePool: one work-item per output element walks its window.

Positions outside the input are skipped (for max they are -infinity, as padding). The average's
divisor counts the positions that hold input, or with ``count_include_pad`` also those in the
explicit padding, never the overhang that ``ceil_mode`` adds past the end pad.
"""

from __future__ import annotations

from collections.abc import Sequence

from ember_gpu import dtypes
from ember_gpu.codegen import KernelWriter, strides
from ember_gpu.graph import Node
from ember_gpu.ir import Value
from ember_gpu.ops.base import AnchorOp, DeviceNode, Inferred
from ember_gpu.ops.window import Window, always_inside, pool_window


class Pool(AnchorOp):
    def __init__(self, average: bool) -> None:
        self.average = average

    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        window = pool_window(node.attrs, x.shape[2:])
        return Inferred([(*x.shape[:2], *window.out)], [x.dtype], window)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        window: Window = dn.params
        x = dn.inputs[0]
        assert x is not None
        it, ctype = kw.itype, dtypes.compute_type(x.dtype)
        n, c, *out = kw.index()
        nd = len(window.size)
        include_pad = self.average and bool(dn.node.attrs.get("count_include_pad", 0))
        acc, count = kw.fresh("acc"), kw.fresh("count")
        kw.line(f"{ctype} {acc} = {0 if self.average else dtypes.lowest(x.dtype)};")
        if self.average:
            kw.line(f"{it} {count} = 0;")
        x_strides = strides(window.size)
        channels = x.shape[1]
        terms = [f"({n} * {channels} + {c}) * {x_strides[0] * window.size[0]}"]
        inside, padded = [], []
        indent = ""
        for axis in range(nd):
            k, position = f"k{axis}", f"p{axis}"
            kw.line(f"{indent}for ({it} {k} = 0; {k} < {window.kernel[axis]}; ++{k}) {{")
            indent += "  "
            start = f"{out[axis]} * {window.strides[axis]} - {window.begin[axis]}"
            kw.line(f"{indent}const {it} {position} = {start} + {k} * {window.dilations[axis]};")
            if not always_inside(window, axis):
                inside.append(f"{position} >= 0 && {position} < {window.size[axis]}")
            if include_pad:
                pad_end = window.size[axis] + window.end[axis]
                padded.append(f"{position} >= {-window.begin[axis]} && {position} < {pad_end}")
            terms.append(f"{position} * {x_strides[axis]}")
        value = kw.load(x, " + ".join(terms))
        condition = " && ".join(f"({c})" for c in inside)
        if self.average:
            update = f"{acc} += {value};" + ("" if include_pad else f" {count} += 1;")
        else:
            update = f"{acc} = fmax({acc}, {value});" if ctype in ("float", "double") \
                else f"{acc} = max({acc}, ({ctype}){value});"
        kw.line(f"{indent}if ({condition}) {{ {update} }}" if condition else f"{indent}{update}")
        if include_pad:
            pad_condition = " && ".join(f"({c})" for c in padded)
            kw.line(f"{indent}if ({pad_condition}) {count} += 1;")
        for _ in range(nd):
            indent = indent[:-2]
            kw.line(f"{indent}}}")
        return f"({acc} / ({ctype}){count})" if self.average else acc

