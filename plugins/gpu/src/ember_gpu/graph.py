"""ONNX in: the model's nodes, constants and ports, validated once per compile.

What is done here does not depend on input shapes: decoding attributes and constants, checking
that every operator is supported and every value is defined before use, dropping nodes no output
needs, and finding the *shape inputs*: graph inputs whose values (not only their shapes) decide
the shapes of the model (a Reshape's target shape, a Slice's bounds, a Range's limits...). The
device specialises on those values as it does on input shapes (see ``specialise.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ember.errors import InvalidModelError, UnsupportedOperatorError
from ember.model import Model, Port

_DEFAULT_DOMAINS = ("", "ai.onnx")

#: Inputs (by position) whose values decide output shapes, per operator. Their producers run on
#: the host at compile time, never on the device.
SHAPE_OPERANDS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Slice": (1, 2, 3, 4), "Tile": (1,), "Expand": (1,), "Pad": (1, 2, 3),
    "ConstantOfShape": (0,), "Range": (0, 1, 2), "Unsqueeze": (1,), "Squeeze": (1,),
    "ReduceMean": (1,), "ReduceSum": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "Split": (1,),
    "Dropout": (1, 2),  # ratio and training_mode: the device runs inference mode only
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


def read_graph(model: Model, device_name: str, supported: frozenset[str]) -> Graph:
    """Decode and check ``model``: unsupported operators and undefined values are errors."""
    proto = model.proto
    graph = proto.graph
    source = str(model.path) if model.path else model.friendly_name
    constants: dict[str, np.ndarray] = {t.name: tensor_to_array(t) for t in graph.initializer}
    defined = set(constants) | {p.name for p in model.inputs} | {""}
    nodes: list[Node] = []
    for index, proto_node in enumerate(graph.node):
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
        defined.update(outputs)
        if op_type == "Constant" and len(proto_node.attribute) == 1 \
                and proto_node.attribute[0].type == _TENSOR:  # the common case, made fast
            constants[outputs[0]] = tensor_to_array(proto_node.attribute[0].t)
            continue
        node = Node(op_type, proto_node.name or f"{op_type}_{index}", inputs, outputs,
                    decode_attributes(proto_node))
        if op_type == "Constant":
            constants[outputs[0]] = _constant_value(node, device_name)
        else:
            nodes.append(node)
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


def _shape_inputs(nodes: list[Node], input_names: set[str]) -> set[str]:
    """Graph inputs that shape operands depend on, through any node but Shape and Size."""
    producer = {out: node for node in nodes for out in node.outputs}
    pending = [node.inputs[i] for node in nodes
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
