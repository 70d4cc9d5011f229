"""The ports of a model (its named, typed inputs and outputs) and what describes them.

A module of its own, below :mod:`ember.model.model`: the ONNX header reader, the recorded edits and
the compiled model all speak of ports, and none of them needs the Model.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.errors import InferenceInputError

if TYPE_CHECKING:
    from ember.types import PartialShape, Shape, Type

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
    costs every start its class-building work, and every warm start makes ports.
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
        """The port's tensor name; OpenVINO's spelling of ``name``."""
        return self.name

    @property
    def names(self) -> set[str]:
        """The port's tensor names: Ember keeps one, ``{name}``."""
        return {self.name}

    def get_names(self) -> set[str]:
        """The port's tensor names: Ember keeps one, ``{name}``."""
        return {self.name}

    def get_index(self) -> int:
        """The port's position among the model's inputs (or outputs), from 0."""
        return self.index

    @property
    def element_type(self) -> Type:
        """The port's element :class:`~ember.Type` (``Type.f32`` for a float32 port)."""
        from ember.types import Type

        return Type(self.dtype)

    def get_element_type(self) -> Type:
        """The port's element :class:`~ember.Type` (``Type.f32`` for a float32 port)."""
        return self.element_type

    @property
    def partial_shape(self) -> PartialShape:
        """The port's shape as a :class:`~ember.PartialShape` (symbolic and unknown dimensions
        dynamic)."""
        from ember.types import PartialShape

        return PartialShape(self.shape)

    def get_partial_shape(self) -> PartialShape:
        """The port's shape as a :class:`~ember.PartialShape` (symbolic and unknown dimensions
        dynamic)."""
        return self.partial_shape

    def get_shape(self) -> Shape:
        """The static shape; ``DynamicShapeError`` when a dimension is dynamic."""
        return self.partial_shape.to_shape()

    @property
    def is_static(self) -> bool:
        """Whether every dimension of the port is a fixed size."""
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
