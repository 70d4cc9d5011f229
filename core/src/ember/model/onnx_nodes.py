"""An ONNX graph's nodes, read from the protobuf wire format without importing ``onnx``.

A device's compile may have to look at every node before it accepts a model (OpenVINO's plugin
refuses the operators and attributes its engine runs differently from ONNX). Parsing the model
with ``onnx`` costs its import (most of a second) and holds the interpreter's lock meanwhile,
which stalls an application that AUTO serves while it compiles for another device in the
background. What such checks read is small: each node's operator, names of its inputs and
outputs, scalar attributes and subgraphs, and the element types the graph declares. This
module reads exactly that and skips every weight by its length.

The bytes are untrusted (a model file may come from anywhere): the reader is total, any bytes
give an :class:`OnnxGraph` or one :class:`~ember.errors.InvalidModelError`, and subgraphs are
followed to a bounded depth.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from ember.errors import InvalidModelError
from ember.model.protobuf_wire import FIXED32, LENGTH, VARINT, fields, int64

if TYPE_CHECKING:
    from ember.model.model import Model

#: Subgraphs (If, Loop and Scan bodies) nested deeper than this are refused: no real model
#: comes close, and the walk recurses once per level.
MAX_DEPTH = 64
# AttributeProto's types for a single value (onnx.proto): what a check compares
_FLOAT, _INT, _STRING, _TENSOR = 1, 2, 3, 4


class OnnxNode(NamedTuple):
    """One node: what a check looks at, as plain values."""

    op_type: str
    domain: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    #: the attributes holding one number or string, by name (strings decoded as UTF-8)
    attributes: dict[str, int | float | str]
    #: the element type of each attribute holding one tensor (a Constant's ``value``), by name
    tensor_types: dict[str, int]
    #: the graphs its attributes hold (an If's branches, a Loop's body), in order
    subgraphs: tuple[OnnxGraph, ...]


class OnnxGraph(NamedTuple):
    """A graph's nodes, and what the graph itself declares about its values."""

    nodes: tuple[OnnxNode, ...]
    #: the element type (ONNX's ``TensorProto.DataType``) of each value the graph declares:
    #: initializers, then inputs, outputs and value_info, then its Constant nodes' outputs (a
    #: later declaration of a name wins)
    value_types: dict[str, int]
    #: the graph inputs declared with a dimension of size 0
    empty_inputs: frozenset[str]
    #: the values known before the graph runs: initializers and Constant nodes' outputs
    constants: frozenset[str]

    def walk(self) -> Iterator[OnnxNode]:
        """Every node, each followed by the nodes of its subgraphs (depth first)."""
        for node in self.nodes:
            yield node
            for subgraph in node.subgraphs:
                yield from subgraph.walk()


def onnx_graph(model: Model) -> OnnxGraph:
    """``model``'s main graph, read without ``onnx`` when it is unchanged since it was read
    (from its serialised form otherwise, which an edited model's compile needs anyway).

    :raises InvalidModelError: the bytes are not a well-formed ONNX model with a graph.
    """
    data = model.to_bytes() if model.is_parsed or model.edits else model._source_bytes()
    source = model.source if isinstance(model.source, str) else "the given bytes"
    return read_graph(data, source)


def read_graph(data: bytes, source: str = "the given bytes") -> OnnxGraph:
    """The main graph of a serialised ModelProto.

    :param source: the file or "the given bytes", for the error message.
    :raises InvalidModelError: as :func:`onnx_graph`.
    """
    data = bytes(data)
    try:
        # a message field written twice is merged, as protobuf (and so onnx) reads it
        spans = [(end - value, end) for number, wire, value, end in fields(data, 0, len(data))
                 if number == 7 and wire == LENGTH]
        graph = _graph(data, spans, 0) if spans else None
    except (ValueError, IndexError, RecursionError) as exc:  # UnicodeDecodeError: a ValueError
        raise InvalidModelError(source, f"it is not a well-formed ONNX protobuf ({exc})"
                                ) from None
    if graph is None:
        raise InvalidModelError(source, "it has no ONNX graph (not a protobuf ModelProto)")
    return graph


def _graph(data: bytes, spans: list[tuple[int, int]], depth: int) -> OnnxGraph:
    if depth > MAX_DEPTH:
        raise ValueError(f"subgraphs nested deeper than {MAX_DEPTH}")
    nodes: list[OnnxNode] = []
    initializers: dict[str, int] = {}
    declared: dict[str, int] = {}
    empty: set[str] = set()
    for number, wire, value, end in (field for start, stop in spans
                                     for field in fields(data, start, stop)):
        if wire != LENGTH:
            continue
        if number == 1:
            nodes.append(_node(data, end - value, end, depth))
        elif number == 5:
            name, data_type = _tensor(data, end - value, end)
            initializers[name] = data_type
        elif number in (11, 12, 13):  # input, output, value_info
            name, kind, has_empty = _value_info(data, end - value, end)
            if kind is not None:
                declared[name] = kind
            if number == 11 and has_empty:
                empty.add(name)
    types = {**initializers, **declared}
    constants = set(initializers)
    for node in nodes:
        if node.op_type == "Constant":
            constants.update(node.outputs)
            if "value" in node.tensor_types and node.outputs:
                types[node.outputs[0]] = node.tensor_types["value"]
    return OnnxGraph(tuple(nodes), types, frozenset(empty), frozenset(constants))


def _node(data: bytes, start: int, stop: int, depth: int) -> OnnxNode:
    inputs: list[str] = []
    outputs: list[str] = []
    op_type = domain = name = ""
    attributes: dict[str, int | float | str] = {}
    tensor_types: dict[str, int] = {}
    subgraphs: list[OnnxGraph] = []
    for number, wire, value, end in fields(data, start, stop):
        if wire != LENGTH:
            continue
        if number == 1:
            inputs.append(_text(data, end - value, end))
        elif number == 2:
            outputs.append(_text(data, end - value, end))
        elif number == 3:
            name = _text(data, end - value, end)
        elif number == 4:
            op_type = _text(data, end - value, end)
        elif number == 7:
            domain = _text(data, end - value, end)
        elif number == 5:
            _attribute(data, end - value, end, depth, attributes, tensor_types, subgraphs)
    return OnnxNode(op_type, domain, name, tuple(inputs), tuple(outputs), attributes,
                    tensor_types, tuple(subgraphs))


def _attribute(data: bytes, start: int, stop: int, depth: int,
               attributes: dict[str, int | float | str], tensor_types: dict[str, int],
               subgraphs: list[OnnxGraph]) -> None:
    name = ""
    kind = 0
    number_value: int | None = None
    float_value: float | None = None
    string_value: str | None = None
    tensor_type: int | None = None
    graph: list[tuple[int, int]] = []  # g, written once (or twice: merged)
    graphs: list[OnnxGraph] = []
    for number, wire, value, end in fields(data, start, stop):
        if number == 1 and wire == LENGTH:
            name = _text(data, end - value, end)
        elif number == 20 and wire == VARINT:
            kind = value
        elif number == 3 and wire == VARINT:
            number_value = int64(value)
        elif number == 2 and wire == FIXED32:
            float_value = struct.unpack("<f", data[end - 4:end])[0]
        elif number == 4 and wire == LENGTH:
            string_value = data[end - value:end].decode("utf-8", "replace")
        elif number == 5 and wire == LENGTH:
            tensor_type = _tensor(data, end - value, end)[1]
        elif number == 6 and wire == LENGTH:
            graph.append((end - value, end))
        elif number == 11 and wire == LENGTH:  # graphs
            graphs.append(_graph(data, [(end - value, end)], depth + 1))
    if graph:
        subgraphs.append(_graph(data, graph, depth + 1))
    subgraphs.extend(graphs)
    if kind == _TENSOR or (not kind and tensor_type is not None):
        tensor_types[name] = tensor_type if tensor_type is not None else 0
    elif kind == _INT or (not kind and number_value is not None):
        attributes[name] = number_value or 0
    elif kind == _STRING or (not kind and string_value is not None):
        attributes[name] = string_value or ""
    elif kind == _FLOAT or (not kind and float_value is not None):
        attributes[name] = float_value or 0.0


def _tensor(data: bytes, start: int, stop: int) -> tuple[str, int]:
    name, kind = "", 0
    for number, wire, value, end in fields(data, start, stop):
        if number == 2 and wire == VARINT:
            kind = int64(value)
        elif number == 8 and wire == LENGTH:
            name = _text(data, end - value, end)
    return name, kind


def _value_info(data: bytes, start: int, stop: int) -> tuple[str, int | None, bool]:
    """A ValueInfoProto's name, its tensor element type (None when it is not a tensor), and
    whether a dimension of its shape is declared with size 0."""
    name, kind, empty = "", None, False
    for number, wire, value, end in fields(data, start, stop):
        if number == 1 and wire == LENGTH:
            name = _text(data, end - value, end)
        elif number == 2 and wire == LENGTH:  # TypeProto: tensor_type (1)
            for t_number, t_wire, t_value, t_end in fields(data, end - value, end):
                if t_number == 1 and t_wire == LENGTH:
                    kind, empty = _tensor_type(data, t_end - t_value, t_end)
    return name, kind, empty


def _tensor_type(data: bytes, start: int, stop: int) -> tuple[int, bool]:
    kind, empty = 0, False
    for number, wire, value, end in fields(data, start, stop):
        if number == 1 and wire == VARINT:
            kind = int64(value)
        elif number == 2 and wire == LENGTH:  # TensorShapeProto: dims (1), each a dim_value (1)
            for s_number, s_wire, s_value, s_end in fields(data, end - value, end):
                if s_number == 1 and s_wire == LENGTH:
                    size: int | None = None  # dim_value (1) and dim_param (2): the last wins
                    for d_number, d_wire, d_value, _ in fields(data, s_end - s_value, s_end):
                        if d_number == 1 and d_wire == VARINT:
                            size = d_value
                        elif d_number == 2 and d_wire == LENGTH:
                            size = None
                    empty = empty or size == 0
    return kind, empty


def _text(data: bytes, start: int, end: int) -> str:
    return data[start:end].decode("utf-8", "replace")
