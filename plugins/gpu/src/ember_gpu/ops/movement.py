"""Data movement: each output element is read from one place (or is a padding constant).

Transpose, Slice, Gather, Concat, Pad and Tile are anchors (elementwise consumers fuse behind
them); Split writes one kernel per output. Reshape, Flatten, Squeeze, Unsqueeze, Identity and
Dropout move nothing: their output is an alias of their input's bytes. Shape operands (a Slice's
bounds, Pad's pads, Reshape's target) are known at compile time (see ``graph.SHAPE_OPERANDS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ember_gpu import dtypes, host_ops
from ember_gpu.codegen import KernelWriter, linear
from ember_gpu.graph import Node
from ember_gpu.ir import Value
from ember_gpu.ops.base import (
    AliasOp,
    AnchorOp,
    DeviceNode,
    Inferred,
    StandaloneOp,
    input_at,
    int_list,
)


class Transpose(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        perm = list(node.attrs.get("perm") or reversed(range(len(x.shape))))
        return Inferred([tuple(x.shape[p] for p in perm)], [x.dtype], perm)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        x = dn.inputs[0]
        assert x is not None
        source = [""] * len(x.shape)
        for out_axis, in_axis in enumerate(dn.params):
            source[in_axis] = kw.index()[out_axis]
        return kw.load(x, linear(source, x.shape))


class Slice(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        hosts = [None if v is None else v.host for v in inputs]
        params = host_ops.slice_params(hosts, node.attrs, opset, x.shape)
        return Inferred([tuple(c for _, _, c in params)], [x.dtype], params)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        x = dn.inputs[0]
        assert x is not None
        return kw.load(x, _sliced_offset(kw.index(), dn.params, x.shape))


def _sliced_offset(index: Sequence[str], params: Sequence[tuple[int, int, int]],
                   shape: Sequence[int]) -> str:
    source = []
    for name, (start, step, _) in zip(index, params, strict=True):
        term = name if step == 1 else f"{name} * {step}"
        source.append(term if start == 0 else f"({start} + {term})")
    return linear(source, shape)


class Gather(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        data, indices = inputs[0], inputs[1]
        assert data is not None and indices is not None
        axis = node.attrs.get("axis", 0) % len(data.shape)
        shape = (*data.shape[:axis], *indices.shape, *data.shape[axis + 1:])
        return Inferred([shape], [data.dtype], axis)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        data, indices = dn.inputs[0], dn.inputs[1]
        assert data is not None and indices is not None
        axis, rank = dn.params, len(indices.shape)
        index = kw.index()
        dim = data.shape[axis]
        raw = kw.load(indices, linear(index[axis:axis + rank], indices.shape))
        j = kw.local("long", f"(long){raw}", "j")
        # Negative indices count from the end; anything still out of range is clamped, never
        # read out of bounds.
        k = kw.local(kw.itype, f"({kw.itype})clamp({j} < 0 ? {j} + {dim} : {j}, 0L, {dim - 1}L)",
                     "j")
        source = [*index[:axis], k, *index[axis + rank:]]
        return kw.load(data, linear(source, data.shape))


class Concat(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        present = [v for v in inputs if v is not None]
        axis = node.attrs["axis"] % len(present[0].shape)
        shape = list(present[0].shape)
        shape[axis] = sum(v.shape[axis] for v in present)
        return Inferred([tuple(shape)], [present[0].dtype], axis)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        axis = dn.params
        index = kw.index()
        value = kw.fresh("v")
        ctype = dtypes.compute_type(dn.outputs[0].dtype)
        kw.line(f"{ctype} {value};")
        start, branches = 0, []
        for x in (v for v in dn.inputs if v is not None and v.shape[axis]):
            end = start + x.shape[axis]
            at = [*index[:axis], f"({index[axis]} - {start})", *index[axis + 1:]]
            branches.append((end, f"{value} = {kw.load(x, linear(at, x.shape))};"))
            start = end
        for i, (end, assign) in enumerate(branches):
            if i == len(branches) - 1:
                kw.line(f"else {assign}" if i else assign)
            else:
                kw.line(f"{'else ' if i else ''}if ({index[axis]} < {end}) {assign}")
        return value


class PadParams:
    __slots__ = ("begin", "crop", "kept", "mode", "value")

    def __init__(self, mode: str, begin: tuple[int, ...], crop: tuple[int, ...],
                 kept: tuple[int, ...], value: float | int) -> None:
        self.mode = mode
        self.begin = begin  # after cropping negative pads: the pad before each axis (>= 0)
        self.crop = crop  # elements cropped at the start of each axis
        self.kept = kept  # size of each axis after cropping
        self.value = value


class Pad(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        rank = len(x.shape)
        attrs = node.attrs
        if opset < 11:
            pads = list(attrs.get("pads", attrs.get("paddings")))
            value, axes = attrs.get("value", 0), None
        else:
            pads = int_list(inputs[1]) or []
            constant = input_at(inputs, 2)
            value = 0 if constant is None or constant.host is None or not constant.host.size \
                else constant.host.reshape(-1)[0]
            axes = int_list(input_at(inputs, 3))
        axes = list(range(rank)) if axes is None else [a % rank for a in axes]
        before, after = [0] * rank, [0] * rank
        for i, axis in enumerate(axes):
            before[axis], after[axis] = pads[i], pads[i + len(axes)]
        crop = tuple(max(-b, 0) for b in before)
        kept = tuple(d - max(-b, 0) - max(-e, 0) for d, b, e in zip(x.shape, before, after,
                                                                    strict=True))
        shape = tuple(k + max(b, 0) + max(e, 0) for k, b, e in zip(kept, before, after,
                                                                   strict=True))
        value = np.asarray(value).astype(x.dtype).item()
        params = PadParams(attrs.get("mode", "constant"), tuple(max(b, 0) for b in before),
                           crop, kept, value)
        return Inferred([shape], [x.dtype], params)

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        p: PadParams = dn.params
        x = dn.inputs[0]
        assert x is not None
        it = kw.itype
        source, outside = [], []
        for axis, name in enumerate(kw.index()):
            kept, begin, crop = p.kept[axis], p.begin[axis], p.crop[axis]
            position = name if not begin else f"({name} - {begin})"
            if kept == x.shape[axis] and not begin and name == "0":
                source.append("0")
                continue
            j = kw.local(it, position, "j")
            if p.mode == "constant":
                if begin or kept != kw.shape[axis]:
                    outside.append(f"{j} < 0 || {j} >= {kept}")
            elif p.mode == "edge":
                j = kw.local(it, f"clamp({j}, ({it})0, ({it}){kept - 1})", "j")
            elif p.mode == "wrap":
                j = kw.local(it, f"(({j} % {kept}) + {kept}) % {kept}", "j")
            else:  # reflect, repeatedly for pads wider than the axis
                reflected = kw.fresh("j")
                kw.line(f"{it} {reflected} = {j};")
                if kept > 1:
                    kw.line(f"while ({reflected} < 0 || {reflected} >= {kept}) {reflected} = "
                            f"{reflected} < 0 ? -{reflected} : {2 * (kept - 1)} - {reflected};")
                else:
                    kw.line(f"{reflected} = 0;")
                j = reflected
            source.append(j if not crop else f"({j} + {crop})")
        value = kw.fresh("v")
        kw.line(f"{dtypes.compute_type(x.dtype)} {value} = "
                f"{dtypes.literal(p.value, x.dtype)};")
        load = f"{value} = {kw.load(x, linear(source, x.shape))};"
        kw.line(f"if (!({' || '.join(outside)})) {load}" if outside else load)
        return value


class Tile(AnchorOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        repeats = int_list(inputs[1]) or []
        return Inferred([tuple(d * r for d, r in zip(x.shape, repeats, strict=True))], [x.dtype])

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        x = dn.inputs[0]
        assert x is not None
        source = [name if dim == out else f"({name} % {dim})"
                  for name, dim, out in zip(kw.index(), x.shape, kw.shape, strict=True)]
        return kw.load(x, linear(source, x.shape))


class Split(StandaloneOp):
    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        axis = node.attrs.get("axis", 0) % len(x.shape)
        sizes = int_list(input_at(inputs, 1)) if opset >= 13 else node.attrs.get("split")
        if not sizes:
            parts = node.attrs.get("num_outputs", len(node.outputs))
            dim = x.shape[axis]
            chunk = -(-dim // parts)  # the last part may be smaller (opset 18)
            sizes = [max(min(chunk, dim - i * chunk), 0) for i in range(parts)]
        shapes = [tuple(s if a == axis else d for a, d in enumerate(x.shape)) for s in sizes]
        starts = list(np.cumsum([0, *sizes[:-1]]))
        return Inferred(shapes, [x.dtype] * len(shapes), (axis, [int(s) for s in starts]))

    def emit(self, dn: DeviceNode, new_kernel: Any) -> list[KernelWriter]:
        axis, starts = dn.params
        x = dn.inputs[0]
        assert x is not None
        writers = []
        for output, start in zip(dn.outputs, starts, strict=True):
            kw: KernelWriter = new_kernel(output.shape, f"{dn.label} -> {output.name}")
            params = [(start if a == axis else 0, 1, d) for a, d in enumerate(output.shape)]
            kw.store(output, "gid", kw.load(x, _sliced_offset(kw.index(), params, x.shape)))
            writers.append(kw)
        return writers


class Alias(AliasOp):
    """An output that is its input's bytes under another shape."""

    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        x = inputs[0]
        assert x is not None
        attrs, op = node.attrs, node.op_type
        if op == "Reshape":
            target = int_list(input_at(inputs, 1)) or list(attrs.get("shape", []))
            shape = host_ops.reshape_target(x.shape, target, bool(attrs.get("allowzero", 0)))
        elif op == "Flatten":
            shape = host_ops.flatten_shape(x.shape, attrs.get("axis", 1))
        elif op == "Squeeze":
            axes = int_list(input_at(inputs, 1)) if opset >= 13 else attrs.get("axes")
            shape = host_ops.squeeze_shape(x.shape, axes)
        elif op == "Unsqueeze":
            axes = int_list(input_at(inputs, 1)) if opset >= 13 else attrs.get("axes")
            shape = host_ops.unsqueeze_shape(x.shape, axes or [])
        else:  # Identity, Dropout (its optional mask is not produced)
            shape = list(x.shape)
        return Inferred([tuple(int(d) for d in shape)], [x.dtype])
