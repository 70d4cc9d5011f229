"""An ONNX model's header, read from the protobuf wire format without importing ``onnx``.

``read_model`` must give the ports (names, element types, partial shapes), the opsets and the
metadata at once, yet ``import onnx`` (its ``ml_dtypes`` extension above all) costs more than a
whole warm start. The header is read from the serialised ModelProto instead: the walk decodes the
model's small fields, the graph's name, inputs and outputs and each initializer's name (inputs
that are initializers are weights, not ports), and skips everything else (nodes, weights) by
its length. Nesting is fixed (model, graph, value info, type, shape, dimension): no recursion.

The bytes are untrusted: :func:`read_header` is total, giving an :class:`OnnxHeader` or raising
``InvalidModelError``, the error the full parse raises for bytes that are not an ONNX model. It
checks what the walk visits; a node or weight damaged inside its length is the full parser's (or
the device's) to find, when the graph is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ember.errors import InvalidModelError
from ember.model.port import Dim, Port
from ember.model.protobuf_wire import LENGTH, VARINT, fields, int64

if TYPE_CHECKING:
    from ember.model.protobuf_wire import FileBytes

#: ONNX element types (TensorProto.DataType) that numpy holds natively. The others (bfloat16,
#: the float8s, the 4- and 2-bit integers) are ml_dtypes' types: onnx maps those, imported only
#: for a model that has such a port.
NUMPY_TYPES: dict[int, str] = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "object", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128",
}
_FLOAT = 1


class OnnxHeader:
    """What ``read_header`` found: everything a Model shows before its graph is parsed."""

    __slots__ = ("graph_name", "inputs", "ir_version", "metadata", "opsets", "outputs",
                 "port_types", "producer_name")

    def __init__(self) -> None:
        self.ir_version = 0
        self.producer_name = ""
        self.graph_name = ""
        #: (domain, version) of each opset import, in the file's order.
        self.opsets: list[tuple[str, int]] = []
        #: metadata_props, in the file's order (a later key wins, as in onnx's helpers).
        self.metadata: dict[str, str] = {}
        self.inputs: list[Port] = []
        self.outputs: list[Port] = []
        #: The ONNX element type of every graph input (weights included) and output, by name.
        self.port_types: dict[str, int] = {}

    @property
    def opset(self) -> int:
        """The opset version of the default domain (1 when the model imports none)."""
        for domain, version in self.opsets:
            if domain in ("", "ai.onnx"):
                return version
        return 1


def read_header(data: bytes | FileBytes, source: str) -> OnnxHeader:
    """The header of a serialised ModelProto: bytes, or a file read on demand (FileBytes).

    :param source: the file or "the given bytes", for the error message.
    :raises InvalidModelError: for anything that is not an ONNX model with a graph and outputs.
    """
    try:
        header, inputs, initializers, outputs = _read_model(data)
    except (ValueError, IndexError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidModelError(source, f"it is not a well-formed ONNX protobuf ({exc})"
                                ) from None
    if header.ir_version <= 0 or outputs is None:
        raise InvalidModelError(source, "it has no ONNX graph (not a protobuf ModelProto)")
    if not outputs:
        raise InvalidModelError(source, "its graph declares no outputs")
    header.inputs = [Port(name, dims, element_dtype(kind, source), index) for index, (
        name, kind, dims) in enumerate(v for v in inputs if v[0] not in initializers)]
    header.outputs = [Port(name, dims, element_dtype(kind, source), index)
                      for index, (name, kind, dims) in enumerate(outputs)]
    header.port_types = {name: kind for name, kind, _ in (*inputs, *outputs)}
    return header


def element_dtype(kind: int, source: str = "the model") -> np.dtype:
    """The numpy dtype of an ONNX element type (0, undefined, is read as float, as before)."""
    name = NUMPY_TYPES.get(kind or _FLOAT)
    if name is not None:
        return np.dtype(name)
    try:
        import onnx  # bfloat16, float8...: ml_dtypes' types, which onnx maps

        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(kind))
    except (KeyError, TypeError, ValueError):
        raise InvalidModelError(source, f"a port has the unknown element type {kind}") from None


_ValueInfo = tuple[str, int, tuple["Dim", ...]]


def _read_model(data: bytes | FileBytes) -> tuple[OnnxHeader, list[_ValueInfo], set[str],
                                      list[_ValueInfo] | None]:
    header = OnnxHeader()
    inputs: list[_ValueInfo] = []
    outputs: list[_ValueInfo] | None = None
    initializers: set[str] = set()
    for number, wire, value, end in fields(data, 0, len(data)):
        if number == 1 and wire == VARINT:
            header.ir_version = int64(value)
        elif wire != LENGTH:
            continue
        elif number == 7:  # graph (a repeated occurrence merges into the first, as protobuf's)
            outputs = outputs if outputs is not None else []
            _read_graph(data, end - value, end, header, inputs, initializers, outputs)
        elif number == 8:
            header.opsets.append(_opset(data, end - value, end))
        elif number == 14:
            key, text = _string_pair(data, end - value, end)
            header.metadata[key] = text
        elif number == 2:
            header.producer_name = _text(data, end - value, end)
    return header, inputs, initializers, outputs


def _read_graph(data: bytes | FileBytes, start: int, stop: int, header: OnnxHeader,
                inputs: list[_ValueInfo], initializers: set[str],
                outputs: list[_ValueInfo]) -> None:
    for number, wire, value, end in fields(data, start, stop):
        if wire != LENGTH or number == 1:  # nodes: skipped by their length
            continue
        if number == 11:
            inputs.append(_value_info(data, end - value, end))
        elif number == 12:
            outputs.append(_value_info(data, end - value, end))
        elif number == 5:
            name = _tensor_name(data, end - value, end)
            if name is not None:
                initializers.add(name)
        elif number == 2:
            header.graph_name = _text(data, end - value, end)


def _value_info(data: bytes | FileBytes, start: int, stop: int) -> _ValueInfo:
    name, kind = "", 0
    dims: list[Dim] = []
    for number, wire, value, end in fields(data, start, stop):
        if wire != LENGTH:
            continue
        if number == 1:
            name = _text(data, end - value, end)
        elif number == 2:  # TypeProto: only tensor_type (1) describes a tensor port
            for t_number, t_wire, t_value, t_end in fields(data, end - value, end):
                if t_number == 1 and t_wire == LENGTH:
                    kind = _tensor_type(data, t_end - t_value, t_end, dims, kind)
    return name, kind, tuple(dims)


def _tensor_type(data: bytes | FileBytes, start: int, stop: int, dims: list[Dim], kind: int) -> int:
    for number, wire, value, end in fields(data, start, stop):
        if number == 1 and wire == VARINT:
            kind = int64(value)
        elif number == 2 and wire == LENGTH:  # TensorShapeProto: its dims (1)
            for s_number, s_wire, s_value, s_end in fields(data, end - value, end):
                if s_number == 1 and s_wire == LENGTH:
                    dims.append(_dimension(data, s_end - s_value, s_end))
    return kind


def _dimension(data: bytes | FileBytes, start: int, stop: int) -> Dim:
    # dim_value and dim_param are a oneof: the last one set wins. A size is known when
    # positive, a name when it is neither empty nor "?" (as onnx's own readers take them).
    dim: Dim = None
    for number, wire, value, end in fields(data, start, stop):
        if number == 1 and wire == VARINT:
            size = int64(value)
            dim = size if size > 0 else None
        elif number == 2 and wire == LENGTH:
            name = _text(data, end - value, end)
            dim = name if name not in ("", "?") else None
    return dim


def _tensor_name(data: bytes | FileBytes, start: int, stop: int) -> str | None:
    name = None
    for number, wire, value, end in fields(data, start, stop):
        if number == 8 and wire == LENGTH:
            name = _text(data, end - value, end)
    return name


def _opset(data: bytes | FileBytes, start: int, stop: int) -> tuple[str, int]:
    domain, version = "", 0
    for number, wire, value, end in fields(data, start, stop):
        if number == 1 and wire == LENGTH:
            domain = _text(data, end - value, end)
        elif number == 2 and wire == VARINT:
            version = int64(value)
    return domain, version


def _string_pair(data: bytes | FileBytes, start: int, stop: int) -> tuple[str, str]:
    key = text = ""
    for number, wire, value, end in fields(data, start, stop):
        if number == 1 and wire == LENGTH:
            key = _text(data, end - value, end)
        elif number == 2 and wire == LENGTH:
            text = _text(data, end - value, end)
    return key, text


def _text(data: bytes | FileBytes, start: int, end: int) -> str:
    return data[start:end].decode()
