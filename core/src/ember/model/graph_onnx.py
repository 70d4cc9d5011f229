"""Built graphs (:mod:`ember.model.graph` nodes) to ONNX nodes, and ONNX graphs to nodes.

``emit`` writes the ONNX operators that compute some outputs of a built graph, for a given
default-domain opset (11 and later: Resize, Pad and Clip take their sizes as inputs from 11,
Squeeze and Unsqueeze their axes from 13). The names OpenVINO gives operators are kept on the
built nodes; the ONNX operators they become are listed in ``ONNX_OF``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.errors import NotSupportedError
from ember.model.graph import Node, Output

if TYPE_CHECKING:
    import onnx

MIN_OPSET = 11
#: The opset a built model declares (the version the ONNX of every device here reads).
BUILD_OPSET = 17

#: OpenVINO's operator names that ONNX spells otherwise (the rest are the same).
ONNX_OF = {
    "Convert": "Cast", "ShapeOf": "Shape", "Interpolate": "Resize", "Multiply": "Mul",
    "Subtract": "Sub", "Divide": "Div", "Maximum": "Max", "Minimum": "Min", "Power": "Pow",
    "Ceiling": "Ceil", "Clamp": "Clip", "Select": "Where",
}


class Emitter:
    """Writes ONNX nodes for built nodes, naming each output once."""

    def __init__(self, opset: int, prefix: str, bound: dict[Output, str] | None = None,
                 taken: Iterable[str] = ()) -> None:
        if opset < MIN_OPSET:
            raise NotSupportedError(f"the model's opset is {opset}; Ember adds operators to "
                                    f"models of opset {MIN_OPSET} and later")
        self.opset = opset
        self.prefix = prefix
        self.names: dict[Output, str] = dict(bound or {})
        self.taken = set(taken) | set(self.names.values())
        self.nodes: list[onnx.NodeProto] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        name = f"{self.prefix}{hint}"
        while name in self.taken:
            self._count += 1
            name = f"{self.prefix}{hint}_{self._count}"
        self.taken.add(name)
        return name

    def name_of(self, output: Output) -> str:
        """The ONNX name of ``output``, emitting what computes it first."""
        if output in self.names:
            return self.names[output]
        self._emit_node(output.node)
        return self.names[output]

    def _emit_node(self, node: Node) -> None:
        for source in node.input_values:  # iterative enough: built graphs are shallow
            self.name_of(source)
        if node.type_name == "Parameter":
            raise NotSupportedError(f"parameter {node.friendly_name!r} is not an input of the "
                                    "model being built: list it in Model(results, parameters)")
        if getattr(node, "onnx", None) is not None or getattr(node, "_tensor", None) is not None:
            self._emit_read(node)
            return
        outs = [self.fresh(f"{node.friendly_name}_{i}") for i in range(len(node.out))]
        for i, name in enumerate(outs):
            self.names[Output(node, i)] = name
        emit = _EMITTERS.get(node.type_name, _same_name)
        emit(self, node, [self.names[s] for s in node.input_values], outs)
        for written in reversed(self.nodes):  # the ONNX op computing it keeps the node's name
            if outs and outs[0] in written.output:
                written.name = self.fresh(node.friendly_name)
                break

    def _emit_read(self, node: Node) -> None:
        """A node of a graph read from ONNX, written back as it was, under its own names (a
        subgraph inside it may refer to them)."""
        from onnx import helper, numpy_helper

        if getattr(node, "onnx", None) is not None:
            copy = helper.make_node("Identity", [], [])
            copy.CopyFrom(node.onnx)  # type: ignore[attr-defined]
            self.nodes.append(copy)
            outs = list(copy.output)
        else:
            tensor = node._tensor  # type: ignore[attr-defined]
            outs = [tensor.name]
            self.nodes.append(helper.make_node("Constant", [], outs, name=self.fresh("weights"),
                                               value=numpy_helper.from_array(
                                                   numpy_helper.to_array(tensor), tensor.name)))
        for i, name in enumerate(outs):
            self.names[Output(node, i)] = name
            self.taken.add(name)

    def add(self, op_type: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, outputs,
                                           name=self.fresh(op_type.lower()), **attrs))

    def const(self, value: np.ndarray, hint: str = "const") -> str:
        from onnx import numpy_helper

        name = self.fresh(hint)
        self.add("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))
        return name

    def as_i64(self, name: str) -> str:
        out = self.fresh("i64")
        self.add("Cast", [name], [out], to=7)  # TensorProto.INT64
        return out


def _elem(dtype: Any) -> int:
    from onnx import helper

    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


def _same_name(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    op_type = ONNX_OF.get(node.type_name, node.type_name)
    if op_type in ("Relu", "Floor", "Ceil", "Sqrt", "Abs", "Exp", "Log", "Sigmoid", "Round",
                   "Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Greater", "Less", "Equal",
                   "Where"):
        e.add(op_type, ins, outs)
        return
    raise NotSupportedError(f"Ember cannot write OpenVINO's {node.type_name} as ONNX")


def _constant(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    from onnx import numpy_helper

    e.add("Constant", [], outs, value=numpy_helper.from_array(node.get_data(), outs[0]))


def _result(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    e.add("Identity", ins, outs)


def _convert(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    e.add("Cast", ins, outs, to=_elem(node.out[0][0]))


def _shape_of(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    if node.out[0][0] == np.int64:
        e.add("Shape", ins, outs)
    else:
        shape = e.fresh("shape")
        e.add("Shape", ins, [shape])
        e.add("Cast", [shape], outs, to=_elem(node.out[0][0]))


def _gather(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    e.add("Gather", ins[:2], outs, axis=node.attrs["axis"])


def _concat(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    e.add("Concat", ins, outs, axis=node.attrs["axis"])


def _softmax(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    e.add("Softmax", ins, outs, axis=node.attrs["axis"])


def _reshape(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    shape = node.input_values[1]
    literal_zero = not node.attrs["special_zero"] and (
        shape.node.type_name != "Constant" or 0 in shape.node.get_data())
    if literal_zero and e.opset < 14:
        raise NotSupportedError("reshape with special_zero=False to a zero size needs opset 14")
    extra = {"allowzero": 1} if literal_zero else {}
    e.add("Reshape", [ins[0], e.as_i64(ins[1])], outs, **extra)


def _transpose(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    perm = [int(v) for v in node.input_values[1].node.get_data().reshape(-1)]
    e.add("Transpose", ins[:1], outs, perm=perm)


def _axes_op(op_type: str) -> Any:
    def emit(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
        if len(ins) == 1:
            e.add(op_type, ins, outs)
        elif e.opset >= 13:
            e.add(op_type, [ins[0], e.as_i64(ins[1])], outs)
        else:
            axes = node.input_values[1]
            if axes.node.type_name != "Constant":
                raise NotSupportedError(f"{op_type} axes before opset 13 must be constant")
            e.add(op_type, ins[:1], outs,
                  axes=[int(a) for a in axes.node.get_data().reshape(-1)])
    return emit


def _slice(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    start, stop, step = (e.as_i64(n) for n in ins[1:4])
    axes = e.as_i64(ins[4]) if len(ins) > 4 else ""
    e.add("Slice", [ins[0], start, stop, axes, step], outs)


def _pad(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    pads = e.fresh("pads")
    e.add("Concat", [e.as_i64(ins[1]), e.as_i64(ins[2])], [pads], axis=0)
    value = ins[3] if len(ins) > 3 else ""
    e.add("Pad", [ins[0], pads, value], outs, mode=node.attrs["pad_mode"])


def _clamp(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    dtype = node.out[0][0]
    low = e.const(np.asarray(node.attrs["min"], dtype=dtype), "min")
    high = e.const(np.asarray(node.attrs["max"], dtype=dtype), "max")
    e.add("Clip", [ins[0], low, high], outs)


def _topk(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    k = e.fresh("k")
    e.add("Reshape", [e.as_i64(ins[1]), e.const(np.asarray([1], dtype=np.int64), "one")], [k])
    indices = outs[1] if node.out[1][0] == np.int64 else e.fresh("indices")
    e.add("TopK", [ins[0], k], [outs[0], indices], axis=node.attrs["axis"],
          largest=int(node.attrs["mode"] == "max"), sorted=1)
    if indices != outs[1]:
        e.add("Cast", [indices], [outs[1]], to=_elem(node.out[1][0]))


def _range(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    e.add("Range", ins, outs)


def _interpolate(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    attrs = node.attrs
    by_sizes = attrs["shape_calculation_mode"] == "sizes"
    target = e.as_i64(ins[1]) if by_sizes else ins[1]
    if len(ins) > 2:  # the sizes or scales of some axes: ONNX (before 18) wants all of them
        target = _full_target(e, node, ins[0], target, by_sizes)
    roi = ""
    extra: dict[str, Any] = {}
    if attrs["mode"] == "nearest":
        extra["nearest_mode"] = attrs["nearest_mode"]
    if attrs["mode"] == "cubic":
        extra["cubic_coeff_a"] = attrs["cube_coeff"]
    scales = "" if by_sizes else target
    sizes = [target] if by_sizes else []
    if by_sizes and e.opset < 13:  # Resize-11 wants its scales input present, even if empty
        scales = e.const(np.zeros(0, dtype=np.float32), "no_scales")
        roi = e.const(np.zeros(0, dtype=np.float32), "no_roi")
    e.add("Resize", [ins[0], roi, scales, *sizes], outs, mode=attrs["mode"],
          coordinate_transformation_mode=attrs["coordinate_transformation_mode"], **extra)


def _full_target(e: Emitter, node: Node, image: str, target: str, by_sizes: bool) -> str:
    """The sizes (or scales) of every axis, from those of ``axes``: a dimension left alone keeps
    its size (scale 1). Built from Shape, Gather and Concat, which every device here runs."""
    dims = node.input_values[0].shape_dims
    if dims is None:
        raise NotSupportedError("interpolate over some axes of a tensor of unknown rank")
    axes = [int(a) % len(dims) for a in node.input_values[2].node.get_data().reshape(-1)]
    given = node.input_values[1]
    constant = given.node.get_data().reshape(-1) if given.node.type_name == "Constant" else None
    shape = ""
    pieces = []
    for axis, dim in enumerate(dims):
        if axis in axes:
            j = axes.index(axis)
            if constant is not None:
                value = np.asarray([constant[j]], dtype=np.int64 if by_sizes else np.float32)
                pieces.append(e.const(value, "size"))
            else:
                piece = e.fresh("size")
                e.add("Gather", [target, e.const(np.asarray([j], dtype=np.int64), "index")],
                      [piece], axis=0)
                pieces.append(piece)
        elif not by_sizes:
            pieces.append(e.const(np.ones(1, dtype=np.float32), "one"))
        elif isinstance(dim, int):
            pieces.append(e.const(np.asarray([dim], dtype=np.int64), "size"))
        else:
            if not shape:
                shape = e.fresh("shape")
                e.add("Shape", [image], [shape])
            piece = e.fresh("size")
            e.add("Gather", [shape, e.const(np.asarray([axis], dtype=np.int64), "index")],
                  [piece], axis=0)
            pieces.append(piece)
    if constant is not None and all(isinstance(d, int) for i, d in enumerate(dims)
                                    if i not in axes):
        values = [constant[axes.index(i)] if i in axes else (d if by_sizes else 1.0)
                  for i, d in enumerate(dims)]
        del e.nodes[len(e.nodes) - len(pieces):]  # one constant instead of the pieces
        return e.const(np.asarray(values, dtype=np.int64 if by_sizes else np.float32), "sizes")
    full = e.fresh("full")
    e.add("Concat", pieces, [full], axis=0)
    return full


def _if(e: Emitter, node: Node, ins: list[str], outs: list[str]) -> None:
    from onnx import helper

    graphs = {}
    for branch, body in (("then", node.then_body), ("else", node.else_body)):  # type: ignore[attr-defined]
        if body is None:
            raise NotSupportedError(f"If {node.friendly_name!r} has no {branch} body")
        bound = {p.output(0): e.name_of(outer)
                 for p, outer in node.body_inputs[branch]}  # type: ignore[attr-defined]
        inner = Emitter(e.opset, f"{e.prefix}{branch}{node.id}_", bound, e.taken)
        wanted = [pair[0 if branch == "then" else 1] for pair in node.body_outputs]  # type: ignore[attr-defined]
        out_names = []
        outputs = []
        for result in wanted:
            source = result.input_values[0] if result.type_name == "Result" else result.output(0)
            name = inner.fresh("out")
            inner.add("Identity", [inner.name_of(source)], [name])
            out_names.append(name)
            outputs.append(value_info(name, source.dtype, source.shape_dims))
        e.taken |= inner.taken
        graphs[branch] = helper.make_graph(inner.nodes, f"{node.friendly_name}_{branch}", [],
                                           outputs)
    e.add("If", ins[:1], outs, then_branch=graphs["then"], else_branch=graphs["else"])


_EMITTERS = {
    "Constant": _constant, "Result": _result, "Convert": _convert, "ShapeOf": _shape_of,
    "Gather": _gather, "Concat": _concat, "Softmax": _softmax, "Reshape": _reshape,
    "Transpose": _transpose, "Squeeze": _axes_op("Squeeze"), "Unsqueeze": _axes_op("Unsqueeze"),
    "Slice": _slice, "Pad": _pad, "Clamp": _clamp, "Range": _range, "Interpolate": _interpolate,
    "TopK": _topk,
    "If": _if,
}


def value_info(name: str, dtype: Any, dims: tuple[Any, ...] | None) -> onnx.ValueInfoProto:
    from onnx import helper

    shape = None if dims is None else [d if isinstance(d, int | str) else None for d in dims]
    return helper.make_tensor_value_info(name, _elem(dtype), shape)


def build_model(results: list[Node], parameters: list[Node], name: str) -> onnx.ModelProto:
    """An ONNX model computing ``results`` from ``parameters`` (``ember.Model(results, ...)``)."""
    from onnx import helper

    bound: dict[Output, str] = {}
    inputs = []
    for i, param in enumerate(parameters):
        input_name = param.friendly_name if param.friendly_name not in bound.values() \
            else f"{param.friendly_name}_{i}"
        bound[param.output(0)] = input_name
        inputs.append(value_info(input_name, param.out[0][0], param.out[0][1]))
    opsets = _read_opsets([*results, *parameters])
    e = Emitter(opsets.get("", BUILD_OPSET), "", bound)
    outputs: list[onnx.ValueInfoProto] = []
    for result in results:
        source = result.input_values[0] if result.type_name == "Result" else result.output(0)
        wanted = result.friendly_name if result.type_name == "Result" else "output"
        inner = e.name_of(source)
        out_name = wanted if wanted not in e.taken else e.fresh(wanted)
        e.taken.add(out_name)
        producer = next((n for n in e.nodes if inner in n.output), None)
        if producer is not None and inner not in {o.name for o in outputs}:
            _rename_value(e, inner, out_name)  # the op itself writes the output: no Identity
        else:
            e.add("Identity", [inner], [out_name])
        outputs.append(value_info(out_name, source.dtype, source.shape_dims))
    graph = helper.make_graph(e.nodes, name or "model", inputs, outputs)
    imports = {"": BUILD_OPSET, **opsets}
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                    for d, v in sorted(imports.items())])
    model.ir_version = 8
    return model


def _read_opsets(roots: list[Node]) -> dict[str, int]:
    """The opsets of the ONNX graph that nodes among ``roots``' inputs were read from: a model
    built from them keeps those versions (its operators were written for them)."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        opsets = getattr(node, "opsets", None)
        if opsets is not None:
            return dict(opsets)
        stack.extend(source.node for source in node.input_values)
    return {}


def _rename_value(e: Emitter, old: str, new: str) -> None:
    for node in e.nodes:
        for names in (node.input, node.output):
            for i, value in enumerate(names):
                if value == old:
                    names[i] = new
    for output, value in list(e.names.items()):
        if value == old:
            e.names[output] = new
