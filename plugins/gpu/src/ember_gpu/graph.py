"""ONNX in: the model's nodes, constants and ports, validated once per compile.

What is done here does not depend on input shapes: decoding attributes and constants, checking
that every operator is supported and every value is defined before use, dropping nodes no output
needs, and finding the *shape inputs*: graph inputs whose values (not only their shapes) decide
the shapes of the model (a Reshape's target shape, a Slice's bounds, a Range's limits...). The
device specialises on those values as it does on input shapes (see ``compiled_model.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ember.plugin import InvalidModelError, Model, Port, UnsupportedOperatorError

_DEFAULT_DOMAINS = ("", "ai.onnx")

#: Inputs (by position) whose values decide output shapes, per operator. Their producers run on
#: the host at compile time, never on the device.
SHAPE_OPERANDS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Slice": (1, 2, 3, 4), "Tile": (1,), "Expand": (1,), "Pad": (1, 2, 3),
    "ConstantOfShape": (0,), "Range": (0, 1, 2), "Unsqueeze": (1,), "Squeeze": (1,),
    "ReduceMean": (1,), "ReduceSum": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "Split": (1,),
    "Dropout": (1, 2),  # ratio and training_mode: the device runs inference mode only
    "Resize": (1, 2, 3),  # roi, scales, sizes
    "If": (0,),  # the condition: the branch taken is chosen on the host
    "LSTM": (4,), "GRU": (4,), "RNN": (4,),  # sequence_lens: the steps are unrolled
}
#: Operators with optional outputs the device does not produce: how many it does (Dropout's mask
#: is all ones in inference mode; MaxPool's Indices and BatchNormalization's training statistics
#: are not computed).
PRODUCED_OUTPUTS = {"MaxPool": 1, "BatchNormalization": 1, "Dropout": 2}
#: Operators whose outputs depend on their inputs' shapes only.
SHAPE_ONLY = frozenset({"Shape", "Size"})


class Node:
    __slots__ = ("attrs", "inputs", "name", "op_type", "outputs")

    def __init__(self, op_type: str, name: str, inputs: tuple[str, ...], outputs: tuple[str, ...],
                 attrs: Mapping[str, Any]) -> None:
        self.op_type = op_type
        self.name = name
        self.inputs = inputs  # "" for an omitted optional input
        self.outputs = outputs
        self.attrs = attrs


class Graph:
    """A model as the device compiles it: live nodes in order, constants decoded, ports typed."""

    __slots__ = ("constants", "inputs", "name", "nodes", "opset", "outputs", "shape_inputs")

    def __init__(self, name: str, opset: int, inputs: tuple[Port, ...], outputs: tuple[Port, ...],
                 constants: Mapping[str, np.ndarray], nodes: tuple[Node, ...],
                 shape_inputs: frozenset[str]) -> None:
        self.name = name
        self.opset = opset
        self.inputs = inputs
        self.outputs = outputs
        self.constants = constants
        self.nodes = nodes
        self.shape_inputs = shape_inputs  # graph inputs whose values the device specialises on


_TYPED_FIELDS = {1: ("float_data", np.float32), 7: ("int64_data", np.int64),
                 6: ("int32_data", np.int32), 11: ("double_data", np.float64)}


def tensor_to_array(tensor: Any) -> np.ndarray:
    """A TensorProto as an array: raw little-endian data viewed in place, typed fields read in
    one call; anything else (strings, float16 in int32_data...) through onnx's numpy_helper."""
    shape = tuple(tensor.dims)
    if tensor.data_location == 0:  # not external
        if tensor.raw_data and tensor.data_type not in (8, 16):
            from onnx import helper

            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
            array = np.frombuffer(tensor.raw_data, dtype=dtype.newbyteorder("<"))
            return array.reshape(shape).astype(dtype, copy=False)
        field = _TYPED_FIELDS.get(tensor.data_type)
        if field is not None and not tensor.raw_data:
            return np.array(getattr(tensor, field[0]), dtype=field[1]).reshape(shape)
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


# AttributeProto types read directly (helper.get_attribute_value costs more than the graph walk).
_FLOAT, _INT, _STRING, _TENSOR, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 4, 6, 7, 8


def decode_attributes(node: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for attr in node.attribute:
        kind = attr.type
        if kind == _INT:
            value: Any = attr.i
        elif kind == _FLOAT:
            value = attr.f
        elif kind == _INTS:
            value = list(attr.ints)
        elif kind == _FLOATS:
            value = list(attr.floats)
        elif kind == _STRING:
            value = attr.s.decode()
        elif kind == _TENSOR:
            value = tensor_to_array(attr.t)
        elif kind == _STRINGS:
            value = [s.decode() for s in attr.strings]
        else:  # graphs, sparse tensors...: no operator of this device takes them
            from onnx import helper

            value = helper.get_attribute_value(attr)
        attrs[attr.name] = value
    return attrs


_CONSTANT_ATTRIBUTES = {"value": None, "value_float": np.float32, "value_floats": np.float32,
                        "value_int": np.int64, "value_ints": np.int64}


def _constant_value(node: Node, device_name: str) -> np.ndarray:
    for name, dtype in _CONSTANT_ATTRIBUTES.items():
        if name in node.attrs:
            return np.asarray(node.attrs[name], dtype)
    raise UnsupportedOperatorError(device_name, "Constant", node.name)  # sparse or strings


class Subgraph:
    """A branch of an If: its live nodes, the names of its outputs, and the outer values its
    nodes read (``captures``; constants, which every scope sees, excluded)."""

    __slots__ = ("captures", "nodes", "outputs")

    def __init__(self, nodes: tuple[Node, ...], outputs: tuple[str, ...],
                 captures: frozenset[str]) -> None:
        self.nodes = nodes
        self.outputs = outputs
        self.captures = captures


#: Operators with subgraph attributes the device reads (any other graph attribute is refused).
_BRANCHES = {"If": ("then_branch", "else_branch")}


def read_graph(model: Model, device_name: str, supported: frozenset[str]) -> Graph:
    """Decode and check ``model``: unsupported operators and undefined values are errors."""
    proto = model.proto
    graph = proto.graph
    source = str(model.path) if model.path else model.friendly_name
    constants: dict[str, np.ndarray] = {t.name: tensor_to_array(t) for t in graph.initializer}
    defined = set(constants) | {p.name for p in model.inputs} | {""}
    nodes = _read_nodes(graph.node, defined, constants, device_name, supported, source)
    for output in graph.output:
        if output.name not in defined:
            raise InvalidModelError(source, f"output {output.name!r} is never computed")
    live = _live_nodes(nodes, [o.name for o in graph.output])
    _check_outputs_produced(live, {o.name for o in graph.output}, device_name)
    input_names = {p.name for p in model.inputs}
    return Graph(
        name=model.friendly_name,
        opset=model.opset,
        inputs=tuple(model.inputs),
        outputs=tuple(model.outputs),
        constants=constants,
        nodes=tuple(live),
        shape_inputs=frozenset(_shape_inputs(live, input_names)),
    )


def _read_nodes(proto_nodes: Any, defined: set[str], constants: dict[str, np.ndarray],
                device_name: str, supported: frozenset[str], source: str) -> list[Node]:
    """The nodes of one graph (the main one or a branch), in order; ``defined`` grows with
    their outputs, ``constants`` with Constant nodes and branch initializers (ONNX names are
    unique across scopes, so one table serves every scope)."""
    nodes: list[Node] = []
    for index, proto_node in enumerate(proto_nodes):
        op_type = proto_node.op_type
        inputs, outputs = tuple(proto_node.input), tuple(proto_node.output)
        if proto_node.domain not in _DEFAULT_DOMAINS or op_type not in supported:
            raise UnsupportedOperatorError(device_name, op_type,
                                           proto_node.name or f"{op_type}_{index}",
                                           proto_node.domain)
        if not defined.issuperset(inputs):
            name = proto_node.name or f"{op_type}_{index}"
            value = next(v for v in inputs if v not in defined)
            raise InvalidModelError(source, f"node {name!r} reads {value!r}, which no input, "
                                            "initializer or earlier node defines")
        if op_type == "Constant" and len(proto_node.attribute) == 1 \
                and proto_node.attribute[0].type == _TENSOR:  # the common case, made fast
            defined.update(outputs)
            constants[outputs[0]] = tensor_to_array(proto_node.attribute[0].t)
            continue
        name = proto_node.name or f"{op_type}_{index}"
        if op_type in _BRANCHES:
            attrs: dict[str, Any] = {}
            for attr in proto_node.attribute:
                if attr.name in _BRANCHES[op_type]:
                    attrs[attr.name] = _read_subgraph(attr.g, defined, constants, device_name,
                                                      supported, source)
            if set(attrs) != set(_BRANCHES[op_type]):
                raise InvalidModelError(source, f"node {name!r} lacks one of its branches")
            captured = frozenset().union(*(b.captures for b in attrs.values()))
            inputs = (*inputs, *sorted(captured))  # what the branches read keeps it alive
        else:
            attrs = decode_attributes(proto_node)
        defined.update(outputs)
        node = Node(op_type, name, inputs, outputs, attrs)
        if op_type == "Constant":
            constants[outputs[0]] = _constant_value(node, device_name)
        else:
            nodes.append(node)
    return nodes


def _read_subgraph(proto: Any, outer: set[str], constants: dict[str, np.ndarray],
                   device_name: str, supported: frozenset[str], source: str) -> Subgraph:
    if len(proto.input):
        raise InvalidModelError(source, f"the branch {proto.name!r} declares inputs")
    for tensor in proto.initializer:
        constants[tensor.name] = tensor_to_array(tensor)
    defined = outer | {t.name for t in proto.initializer}
    nodes = _read_nodes(proto.node, defined, constants, device_name, supported, source)
    outputs = tuple(o.name for o in proto.output)
    for output in outputs:
        if output not in defined:
            raise InvalidModelError(source, f"the branch {proto.name!r} never computes its "
                                            f"output {output!r}")
    live = _live_nodes(nodes, list(outputs))
    _check_outputs_produced(live, set(outputs), device_name)
    produced = {o for node in live for o in node.outputs}
    read = {i for node in live for i in node.inputs} | set(outputs)
    captures = frozenset(v for v in read if v and v in outer and v not in produced
                         and v not in constants)
    return Subgraph(tuple(live), outputs, captures)


def _check_outputs_produced(nodes: list[Node], model_outputs: set[str], device_name: str) -> None:
    read = model_outputs.union(*(node.inputs for node in nodes))
    for node in nodes:
        for name in node.outputs[PRODUCED_OUTPUTS.get(node.op_type, len(node.outputs)):]:
            if name and name in read:
                error = UnsupportedOperatorError(device_name, node.op_type, node.name)
                error.args = (f"{error.args[0]}: its optional output {name!r} is not produced",)
                raise error


def _live_nodes(nodes: list[Node], outputs: list[str]) -> list[Node]:
    """The nodes some output depends on, in their original (topological) order."""
    wanted = set(outputs)
    live: list[Node] = []
    for node in reversed(nodes):
        if any(o in wanted for o in node.outputs):
            live.append(node)
            wanted.update(i for i in node.inputs if i)
    live.reverse()
    return live


def _all_nodes(nodes: Sequence[Node]) -> Iterator[Node]:
    """Every node, those inside If branches included."""
    for node in nodes:
        yield node
        for name in _BRANCHES.get(node.op_type, ()):
            yield from _all_nodes(node.attrs[name].nodes)


def _shape_inputs(nodes: list[Node], input_names: set[str]) -> set[str]:
    """Graph inputs that shape operands depend on, through any node but Shape and Size."""
    every = list(_all_nodes(nodes))
    producer = {out: node for node in every for out in node.outputs}
    pending = [node.inputs[i] for node in every
               for i in SHAPE_OPERANDS.get(node.op_type, ()) if i < len(node.inputs)]
    seen: set[str] = set()
    found: set[str] = set()
    while pending:
        value = pending.pop()
        if not value or value in seen:
            continue
        seen.add(value)
        if value in input_names:
            found.add(value)
        node = producer.get(value)
        if node is not None and node.op_type not in SHAPE_ONLY:
            pending.extend(node.inputs)
    return found
