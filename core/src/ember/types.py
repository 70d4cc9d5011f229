"""Element types and shapes as OpenVINO spells them: ``Type``, ``Dimension``, ``PartialShape``,
``Shape``.

Ember's ports keep numpy dtypes and tuples of dimensions (an int, a symbolic name, or ``None``);
these classes are the OpenVINO-shaped views of the same values, so that ``port.element_type ==
ov.Type.f32`` and ``port.partial_shape.is_dynamic`` work unchanged. numpy only: cheap to import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from ember.errors import DynamicShapeError, NotSupportedError

#: OpenVINO's element type names and the numpy dtype each one is (bf16 has no numpy dtype).
_NUMPY_OF: dict[str, str | None] = {
    "f64": "float64", "f32": "float32", "f16": "float16", "bf16": None,
    "i64": "int64", "i32": "int32", "i16": "int16", "i8": "int8",
    "u64": "uint64", "u32": "uint32", "u16": "uint16", "u8": "uint8",
    "boolean": "bool", "dynamic": None,
}
_NAME_OF = {numpy: name for name, numpy in _NUMPY_OF.items() if numpy}
#: Other spellings accepted where a precision is given as text (OpenVINO accepts both).
_ALIASES = {"FP32": "f32", "FP16": "f16", "BF16": "bf16", "FP64": "f64", "I8": "i8", "U8": "u8",
            "float32": "f32", "float16": "f16", "bfloat16": "bf16", "bool": "boolean"}


class Type:
    """An element type: ``Type.f32``, ``Type.bf16``, ... or ``Type(np.float32)``.

    Instances are shared per name and compare equal by name (and to the name, ``"f32"``);
    ``get_type_name()`` is the name, and ``str`` and ``repr`` are OpenVINO's ``<Type: 'float32'>``.
    """

    _instances: ClassVar[dict[str, Type]] = {}
    f64: ClassVar[Type]
    f32: ClassVar[Type]
    f16: ClassVar[Type]
    bf16: ClassVar[Type]
    i64: ClassVar[Type]
    i32: ClassVar[Type]
    i16: ClassVar[Type]
    i8: ClassVar[Type]
    u64: ClassVar[Type]
    u32: ClassVar[Type]
    u16: ClassVar[Type]
    u8: ClassVar[Type]
    boolean: ClassVar[Type]
    dynamic: ClassVar[Type]

    def __new__(cls, value: Any = "dynamic") -> Type:
        name = type_name(value)
        instance = cls._instances.get(name)
        if instance is None:
            instance = super().__new__(cls)
            instance._name = name
            cls._instances[name] = instance
        return instance

    _name: str

    def get_type_name(self) -> str:
        """The short name of the type, as OpenVINO spells it: ``"f32"``, ``"i64"``, ..."""
        return self._name

    @property
    def type_name(self) -> str:
        """The short name of the type (``"f32"``); the property form of :meth:`get_type_name`."""
        return self._name

    def to_dtype(self) -> np.dtype:
        """The numpy dtype; ``NotSupportedError`` for bf16 and dynamic, which numpy lacks."""
        numpy = _NUMPY_OF[self._name]
        if numpy is None:
            raise NotSupportedError(f"element type {self._name} has no numpy dtype")
        return np.dtype(numpy)

    # OpenVINO's spellings: is_real() and friends are methods, real and friends properties.
    @property
    def real(self) -> bool:
        """Whether this is a floating-point type (f64, f32, f16 or bf16)."""
        return self._name in ("f64", "f32", "f16", "bf16")

    def is_real(self) -> bool:
        """Whether this is a floating-point type (f64, f32, f16 or bf16)."""
        return self.real

    @property
    def integral(self) -> bool:
        """Whether this is an integer or boolean type (any known type that is not real)."""
        return self._name != "dynamic" and not self.real

    def is_integral(self) -> bool:
        """Whether this is an integer or boolean type (any known type that is not real)."""
        return self.integral

    @property
    def signed(self) -> bool:
        """Whether its values can be negative: the real types and the ``i*`` integers."""
        return self.real or self._name.startswith("i")

    def is_signed(self) -> bool:
        """Whether its values can be negative: the real types and the ``i*`` integers."""
        return self.signed

    @property
    def bitwidth(self) -> int:
        """Bits per element (16 for bf16); ``NotSupportedError`` for ``Type.dynamic``."""
        return 16 if self._name == "bf16" else 8 * self.to_dtype().itemsize

    def get_bitwidth(self) -> int:
        """Bits per element (16 for bf16); ``NotSupportedError`` for ``Type.dynamic``."""
        return self.bitwidth

    @property
    def size(self) -> int:
        """Bytes per element."""
        return (self.bitwidth + 7) // 8

    def get_size(self) -> int:
        """Bytes per element (``size``)."""
        return self.size

    def is_static(self) -> bool:
        """Whether the type is known, that is, anything but ``Type.dynamic``."""
        return self._name != "dynamic"

    def is_dynamic(self) -> bool:
        """Whether this is ``Type.dynamic``: a type not known before inference."""
        return self._name == "dynamic"

    def to_string(self) -> str:
        """The short name, as OpenVINO's ``to_string()`` gives it: ``"f32"``."""
        return self._name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Type):
            return other._name == self._name
        if isinstance(other, str | np.dtype | type):
            try:
                return type_name(other) == self._name
            except ValueError:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        numpy = _NUMPY_OF[self._name]
        return f"<Type: '{numpy or self._name}'>"

    __str__ = __repr__  # as OpenVINO prints it; get_type_name() is the short name


def type_name(value: Any) -> str:
    """OpenVINO's name of an element type given as a Type, a name (``"f32"``, ``"FP32"``,
    ``"bf16"``), or a numpy dtype or scalar type; ``ValueError`` otherwise."""
    if isinstance(value, Type):
        return value._name
    if isinstance(value, str):
        if value in _NUMPY_OF:
            return value
        if value in _ALIASES:
            return _ALIASES[value]
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise ValueError(f"not an element type: {value!r}") from None
    name = _NAME_OF.get(dtype.name)
    if name is None:
        raise ValueError(f"no element type for numpy dtype {dtype}")
    return name


for _name in _NUMPY_OF:
    setattr(Type, _name, Type(_name))


class Dimension:
    """One dimension: static (``Dimension(3)``), dynamic (``Dimension()`` or ``Dimension(-1)``),
    or bounded (``Dimension(1, 8)``). A symbolic ONNX dimension is dynamic and keeps its name."""

    def __init__(self, min_length: int | str | None = -1, max_length: int | None = None,
                 *, name: str | None = None) -> None:
        if isinstance(min_length, str):  # a symbolic dimension, such as "batch"
            name, min_length = min_length, -1
        if min_length is None:
            min_length = -1
        if max_length is None:
            self._min, self._max = (min_length, min_length) if min_length >= 0 else (0, -1)
        else:
            self._min, self._max = max(min_length, 0), max_length
        self.name = name

    @property
    def is_static(self) -> bool:
        """Whether the dimension has one known size (its lower and upper bounds are equal)."""
        return self._max >= 0 and self._min == self._max

    @property
    def is_dynamic(self) -> bool:
        """Whether the size is not fixed: unknown, symbolic (``"batch"``) or a range."""
        return not self.is_static

    def get_length(self) -> int:
        """The size of a static dimension; ``DynamicShapeError`` (a RuntimeError, as in
        OpenVINO) for a dynamic one."""
        if not self.is_static:
            raise DynamicShapeError(f"dimension {self} is dynamic: it has no length")
        return self._min

    def get_min_length(self) -> int:
        """The lower bound of the size (0 for a dimension unbounded below)."""
        return self._min

    def get_max_length(self) -> int:
        """The upper bound of the size; -1 when there is none."""
        return self._max

    @property
    def min_length(self) -> int:
        """The lower bound of the size (0 for a dimension unbounded below)."""
        return self._min

    @property
    def max_length(self) -> int:
        """The upper bound of the size; -1 when there is none."""
        return self._max

    def to_string(self) -> str:
        """The text form, as OpenVINO prints it: ``"3"``, ``"?"`` (any size) or ``"1..8"``."""
        return str(self)

    def as_dim(self) -> int | str | None:
        """Ember's form: the size, the symbolic name, or None."""
        return self._min if self.is_static else self.name

    def compatible(self, size: int) -> bool:
        """Whether a concrete ``size`` fits this dimension (lies within its bounds)."""
        return self._min <= size and (self._max < 0 or size <= self._max)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            return self.is_static and self._min == other
        if isinstance(other, Dimension):
            return (self._min, self._max) == (other._min, other._max)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._min, self._max))

    def __str__(self) -> str:
        if self.is_static:
            return str(self._min)
        if self._min == 0 and self._max < 0:
            return "?"
        return f"{self._min}..{self._max if self._max >= 0 else ''}"

    def __repr__(self) -> str:
        return f"<Dimension: {self}>"


def as_dimension(value: Any) -> Dimension:
    if isinstance(value, Dimension):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text in ("?", "-1", ""):
            return Dimension()
        if ".." in text:
            low, high = text.split("..", 1)
            return Dimension(int(low or 0), int(high) if high else -1)
        if text.lstrip("-").isdigit():
            return Dimension(int(text))
        return Dimension(name=text)
    if value is None:
        return Dimension()
    return Dimension(int(value))


class PartialShape:
    """A shape whose dimensions may be dynamic: ``PartialShape([1, 3, -1, -1])``,
    ``PartialShape([1, Dimension(), 48, 192])`` or ``PartialShape("[1,3,?,?]")``."""

    def __init__(self, dims: Iterable[Any] | str) -> None:
        if isinstance(dims, str):
            text = dims.strip().removeprefix("[").removesuffix("]").strip()
            dims = [part for part in text.split(",")] if text else []
        self._dims = [as_dimension(d) for d in dims]

    @classmethod
    def from_dims(cls, dims: Sequence[int | str | None]) -> PartialShape:
        """From Ember's form: sizes, symbolic names and None."""
        return cls(dims)

    @property
    def is_static(self) -> bool:
        """Whether every dimension is static, so that :meth:`to_shape` succeeds."""
        return all(d.is_static for d in self._dims)

    @property
    def is_dynamic(self) -> bool:
        """Whether some dimension is dynamic (unknown, symbolic or a range)."""
        return not self.is_static

    @property
    def rank(self) -> Dimension:
        """The number of dimensions, as a static :class:`Dimension`."""
        return Dimension(len(self._dims))

    def to_shape(self) -> Shape:
        """The static shape; ``DynamicShapeError`` when a dimension is dynamic."""
        return Shape([d.get_length() for d in self._dims])

    get_shape = to_shape

    def get_max_shape(self) -> Shape:
        """The upper bound of every dimension as a :class:`Shape` (-1 where there is none)."""
        return Shape([d.get_max_length() for d in self._dims])

    def get_min_shape(self) -> Shape:
        """The lower bound of every dimension as a :class:`Shape`."""
        return Shape([d.get_min_length() for d in self._dims])

    def get_dimension(self, index: int) -> Dimension:
        """The :class:`Dimension` at ``index``."""
        return self._dims[index]

    def to_string(self) -> str:
        """The text form, as OpenVINO prints it: ``"[1,3,?,?]"``."""
        return str(self)

    def as_dims(self) -> tuple[int | str | None, ...]:
        """Ember's form of the shape (what a Port holds)."""
        return tuple(d.as_dim() for d in self._dims)

    def compatible(self, shape: Sequence[int]) -> bool:
        """Whether a concrete ``shape`` has this rank and each size fits its dimension."""
        return len(shape) == len(self._dims) and all(
            d.compatible(int(s)) for d, s in zip(self._dims, shape, strict=True))

    def __len__(self) -> int:
        return len(self._dims)

    def __getitem__(self, index: int) -> Dimension:
        return self._dims[index]

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self._dims)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PartialShape):
            return self._dims == other._dims
        if isinstance(other, list | tuple):
            return len(other) == len(self._dims) and all(
                d == as_dimension(o) for d, o in zip(self._dims, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._dims))

    def __str__(self) -> str:
        return "[" + ",".join(map(str, self._dims)) + "]"

    def __repr__(self) -> str:
        return f"<PartialShape: {self}>"


class Shape(tuple[int, ...]):
    """A static shape: a tuple of ints that also equals the same sizes given as a list."""

    def __new__(cls, dims: Iterable[int] = ()) -> Shape:
        return super().__new__(cls, (int(d) for d in dims))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | tuple):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = tuple.__hash__

    def to_string(self) -> str:
        """The text form, as OpenVINO prints it: ``"[1,3,224,224]"``."""
        return "[" + ",".join(map(str, self)) + "]"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"<Shape: {self.to_string()}>"
