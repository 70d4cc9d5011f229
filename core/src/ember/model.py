"""A model read from ONNX, and the ports (named, typed inputs and outputs) that models expose."""

from __future__ import annotations

import os
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.errors import InferenceInputError, InvalidModelError, ModelNotFoundError
from ember.model_api import ModelApi, built_proto, is_graph

if TYPE_CHECKING:
    from pathlib import Path

    import onnx

    from ember.types import PartialShape, Shape, Type

# onnx is imported where a model is parsed, not here: a warm start from the cache never parses
# one, and importing onnx costs it tens of milliseconds. pathlib and ember.types (OpenVINO's
# views of a port) are imported where used too: a warm start needs only the ports.

#: A dimension: a fixed size, a symbolic name (``"batch"``) or ``None`` when unknown.
Dim = int | str | None

_MAX_NAME = 4096
_MAX_RANK = 64
_MAX_DIM = 1 << 40
# What numeric dtype strings look like ("<f4", "|b1", "<c16"): anything else is refused before
# numpy's parser sees it (which raises SyntaxError, TypeError, ... on some strings).
_DTYPE = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")


def numeric_dtype(text: Any) -> np.dtype:
    """A numeric numpy dtype from its ``dtype.str``, for formats read back from disk.

    :raises ValueError: (only) for anything that is not such a string.
    """
    if type(text) is not str or not _DTYPE.fullmatch(text):
        raise ValueError(f"unsupported dtype {str(text)[:32]!r}")
    try:
        dtype = np.dtype(text)
    except TypeError as exc:  # "<f3": well-formed, but no such type
        raise ValueError(f"unsupported dtype {text!r}") from exc
    if dtype.kind not in "biufc":
        raise ValueError(f"unsupported dtype {text!r}")
    return dtype


class Port:
    """One input or output of a model: its name, shape (with dynamic dims) and numpy dtype.

    Immutable and compared by value. Written out rather than a dataclass: defining a dataclass
    costs every start a millisecond, and every warm start makes ports.
    """

    __slots__ = ("dtype", "index", "name", "shape")
    name: str
    shape: tuple[Dim, ...]
    dtype: np.dtype
    index: int

    def __init__(self, name: str, shape: tuple[Dim, ...], dtype: np.dtype, index: int = 0
                 ) -> None:
        for field, value in (("name", name), ("shape", shape), ("dtype", dtype),
                             ("index", index)):
            object.__setattr__(self, field, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Port cannot be changed (tried to set {name!r})")

    def __eq__(self, other: object) -> bool:
        if type(other) is not Port:
            return NotImplemented
        return (self.name, self.shape, self.dtype, self.index) == (
            other.name, other.shape, other.dtype, other.index)

    def __hash__(self) -> int:
        return hash((self.name, self.shape, self.dtype, self.index))

    def __repr__(self) -> str:
        return (f"Port(name={self.name!r}, shape={self.shape!r}, dtype={self.dtype!r}, "
                f"index={self.index!r})")

    def __reduce__(self) -> tuple[type[Port], tuple[Any, ...]]:  # copy and pickle via __init__
        return Port, (self.name, self.shape, self.dtype, self.index)

    def get_any_name(self) -> str:
        """OpenVINO's spelling of ``name``."""
        return self.name

    # OpenVINO's views of the same port: element types, partial shapes, names and index.

    @property
    def any_name(self) -> str:
        return self.name

    @property
    def names(self) -> set[str]:
        return {self.name}

    def get_names(self) -> set[str]:
        return {self.name}

    def get_index(self) -> int:
        return self.index

    @property
    def element_type(self) -> Type:
        from ember.types import Type

        return Type(self.dtype)

    def get_element_type(self) -> Type:
        return self.element_type

    @property
    def partial_shape(self) -> PartialShape:
        from ember.types import PartialShape

        return PartialShape(self.shape)

    def get_partial_shape(self) -> PartialShape:
        return self.partial_shape

    def get_shape(self) -> Shape:
        """The static shape; ``DynamicShapeError`` when a dimension is dynamic."""
        return self.partial_shape.to_shape()

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description, for plugins' export formats."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype.str}

    @classmethod
    def from_json(cls, entry: Any, index: int) -> Port:
        """The inverse of :meth:`to_json`, total over untrusted JSON: raises ValueError (never
        anything else) for a malformed entry: not an object, a name that is not a string, a
        shape that is not a short list of sizes, names and nulls, a dtype that is not numeric."""
        if type(entry) is not dict:
            raise ValueError("a port is not an object")
        name, shape, dtype = entry.get("name"), entry.get("shape"), entry.get("dtype")
        if type(name) is not str or len(name) > _MAX_NAME:
            raise ValueError(f"port {index} has no valid name")
        if type(shape) is not list or len(shape) > _MAX_RANK or not all(
                d is None or (type(d) is str and len(d) <= _MAX_NAME)
                or (type(d) is int and 0 <= d <= _MAX_DIM) for d in shape):
            raise ValueError(f"port {name!r} has an invalid shape")
        return cls(name, tuple(shape), numeric_dtype(dtype), index)


def port_from_value_info(value_info: onnx.ValueInfoProto, index: int) -> Port:
    import onnx

    tensor_type = value_info.type.tensor_type
    dims: list[Dim] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param not in ("", "?"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    elem_type = tensor_type.elem_type or onnx.TensorProto.FLOAT
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    return Port(value_info.name, tuple(dims), dtype, index)


class Model(ModelApi):
    """An ONNX model, read but not compiled. Create it with ``Core.read_model``, or build one
    with :mod:`ember.opset` as ``Model(results, parameters, name)``.

    The protobuf is kept as ``proto``; ``path`` is the file it came from, if any (plugins that can
    read the file themselves, and the model cache, use it).
    """

    def __init__(self, proto: onnx.ModelProto, path: Path | None = None,
                 name: str | None = None) -> None:
        if is_graph(proto):  # OpenVINO's Model(results, parameters, name)
            proto, self._graph = built_proto(proto, path or [], name)  # type: ignore[arg-type]
            path = None
        self.proto = proto
        self.path = path
        graph_inputs = [v for v in proto.graph.input if v.name not in self._initializer_names]
        self.inputs: list[Port] = [port_from_value_info(v, i) for i, v in enumerate(graph_inputs)]
        self.outputs: list[Port] = [
            port_from_value_info(v, i) for i, v in enumerate(proto.graph.output)
        ]

    @cached_property
    def _initializer_names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.proto.graph.initializer)

    @property
    def friendly_name(self) -> str:
        if self.proto.graph.name:
            return self.proto.graph.name
        return self.path.stem if self.path else "model"

    @property
    def opset(self) -> int:
        """The model's opset version for the default ONNX domain."""
        for entry in self.proto.opset_import:
            if entry.domain in ("", "ai.onnx"):
                return int(entry.version)
        return 1

    # -- OpenVINO's model API ----------------------------------------------------------------

    def input(self, key: str | int | Port | None = None) -> Port:
        """An input port by name or index; with no key, the only one."""
        return find_port(self.inputs, key, "input")

    def output(self, key: str | int | Port | None = None) -> Port:
        """An output port by name or index; with no key, the only one."""
        return find_port(self.outputs, key, "output")

    def get_friendly_name(self) -> str:
        return self.friendly_name

    def is_dynamic(self) -> bool:
        return not all(p.is_static for p in (*self.inputs, *self.outputs))

    def reshape(self, shapes: Any) -> None:
        """Give inputs new shapes, in place: one shape for a one-input model, or a mapping from
        input name, index or port to shape (a list, tuple, ``PartialShape`` or ``"[1,3,?,?]"``).

        A static shape makes devices that specialise on shapes (GPU) build inside
        ``compile_model``. :raises InferenceInputError: an unknown input or a wrong rank.
        """
        from ember.reshape import reshape_model

        reshape_model(self, shapes)
        self.inputs = [port_from_value_info(v, i) for i, v in enumerate(
            v for v in self.proto.graph.input if v.name not in self._initializer_names)]
        self.outputs = [port_from_value_info(v, i) for i, v in enumerate(self.proto.graph.output)]

    def to_bytes(self) -> bytes:
        """The serialized ModelProto (weights included)."""
        return self.proto.SerializeToString()

    def __repr__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        outs = ", ".join(map(str, self.outputs))
        return f"<Model {self.friendly_name!r}: ({ins}) -> ({outs})>"


class DeferredModel(Model):
    """An ONNX file or serialized bytes, parsed only when its graph or ports are first read.

    ``compile`` receives one when the device caches its own work (it gets a kernel cache
    handle): a device that finds all it needs in its cache never parses the model (the model's
    digest, ``KernelCache.model_digest``, needs no parsing either). Reading ``proto``,
    ``inputs`` or ``outputs`` parses it, raising what :func:`read_model` raises. ``source`` is
    the resolved path or the bytes.
    """

    def __init__(self, source: Path | bytes) -> None:  # Model.__init__ would parse
        self.source = source
        self.path = None if isinstance(source, bytes) else source

    @cached_property
    def _parsed(self) -> Model:
        return read_model(self.source)

    @cached_property
    def proto(self) -> onnx.ModelProto:  # type: ignore[override]
        return self._parsed.proto

    @cached_property
    def inputs(self) -> list[Port]:  # type: ignore[override]
        return self._parsed.inputs

    @cached_property
    def outputs(self) -> list[Port]:  # type: ignore[override]
        return self._parsed.outputs


def deferred_model(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Model:
    """A :class:`DeferredModel` of a path or bytes; a missing file or a directory is reported
    now, anything else when the model is parsed."""
    if isinstance(source, bytes | bytearray | memoryview):
        return DeferredModel(bytes(source))
    from pathlib import Path

    path = Path(source)
    if not path.exists():
        raise ModelNotFoundError(str(path))
    if path.is_dir():
        raise InvalidModelError(str(path), "it is a directory, not a file")
    return DeferredModel(path.resolve())


def find_port(ports: list[Port], key: str | int | Port | None, kind: str) -> Port:
    """A port by name, index or Port; None means the only port."""
    if key is None:
        if len(ports) == 1:
            return ports[0]
        raise InferenceInputError(f"the model has {len(ports)} {kind}s: name one of "
                                  f"{[p.name for p in ports]}")
    if isinstance(key, Port):
        key = key.name
    if isinstance(key, int) and not isinstance(key, bool):
        if 0 <= key < len(ports):
            return ports[key]
    else:
        for port in ports:
            if port.name == key:
                return port
    raise InferenceInputError(f"no {kind} {key!r}; {kind}s are {[p.name for p in ports]}")


def read_model(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Model:
    """Parse an ONNX file path or serialized bytes into a Model, with errors that name the cause."""
    if isinstance(source, bytes | bytearray | memoryview):
        return Model(_parse(bytes(source), "the given bytes"))
    from pathlib import Path

    import onnx
    from google.protobuf.message import DecodeError
    from onnx.checker import ValidationError

    path = Path(source)
    if not path.exists():
        raise ModelNotFoundError(str(path))
    if path.is_dir():
        raise InvalidModelError(str(path), "it is a directory, not a file")
    try:
        # onnx.load resolves external weight files relative to the model's directory
        proto = onnx.load(str(path))
    except ValidationError as exc:  # an external data file missing, or outside its directory
        raise InvalidModelError(str(path), f"its external data cannot be used: {_reason(exc)}"
                                ) from exc
    except (DecodeError, RuntimeError, ValueError, OSError) as exc:
        raise InvalidModelError(str(path), _reason(exc)) from exc
    _check_has_graph(proto, str(path))
    return Model(proto, path.resolve())


def _parse(data: bytes, source: str) -> onnx.ModelProto:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_from_string(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidModelError(source, _reason(exc)) from exc
    _check_has_graph(proto, source)
    return proto


def _check_has_graph(proto: onnx.ModelProto, source: str) -> None:
    # Protobuf parses many byte strings (even empty ones) as a valid but empty message.
    if proto.ir_version <= 0 or not proto.HasField("graph"):
        raise InvalidModelError(source, "it has no ONNX graph (not a protobuf ModelProto)")
    if not proto.graph.output:
        raise InvalidModelError(source, "its graph declares no outputs")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

