"""``Tensor``: OpenVINO's tensor, a numpy array with an element type and a shape.

``Tensor(array)`` copies the array, as OpenVINO does; ``Tensor(array, shared_memory=True)`` wraps
it without a copy (writes through either are seen by both). ``Tensor(Type.f32, [1, 3])`` or
``Tensor(np.float32, (1, 3))`` allocates a zeroed one. ``.data`` is the numpy array itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ember.types import Shape, Type

# ember.types (OpenVINO's element types and shapes) is imported where a Tensor needs it: an
# inference whose inputs are plain arrays checks them against Tensor without paying for it.


class Tensor:
    """A numpy array seen as an OpenVINO tensor; ``np.asarray(tensor)`` is its data."""

    def __init__(self, array: Any, shape_or_shared: Any = False, element_type: Any = None, *,
                 shared_memory: bool | None = None) -> None:
        from ember.types import Type

        shared = bool(shape_or_shared) if shared_memory is None else shared_memory
        if isinstance(array, Type) or (_is_dtype(array) and _is_shape(shape_or_shared)):
            dtype = Type(array).to_dtype() if isinstance(array, Type) else np.dtype(array)
            self._data = np.zeros(tuple(int(d) for d in shape_or_shared), dtype)
            return
        if isinstance(array, np.ndarray) and _is_shape(shape_or_shared):
            # OpenVINO's Tensor(array, shape, type): a view of the array's memory, reshaped
            dtype = Type(element_type).to_dtype() if element_type is not None else array.dtype
            self._data = array.view(dtype).reshape(tuple(int(d) for d in shape_or_shared))
            return
        if isinstance(array, Tensor):
            array = array.data
        if shared:
            data = np.asarray(array)
            if not data.flags.c_contiguous:
                raise ValueError("Tensor(array, shared_memory=True) needs a C-contiguous array")
            self._data = data
        else:
            self._data = np.array(array, copy=True, order="C")

    @property
    def data(self) -> np.ndarray:
        """The tensor's memory as a numpy array (no copy)."""
        return self._data

    @property
    def shape(self) -> Shape:
        """The tensor's :class:`~ember.Shape`; assigning one calls :meth:`set_shape`."""
        from ember.types import Shape

        return Shape(self._data.shape)

    @shape.setter
    def shape(self, shape: Sequence[int]) -> None:
        self.set_shape(shape)

    def set_shape(self, shape: Sequence[int]) -> None:
        """Give the tensor a new shape, keeping its data when the size stays (else reallocating)."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape)) == self._data.size:
            self._data = self._data.reshape(shape)
        else:
            self._data = np.zeros(shape, self._data.dtype)

    def get_shape(self) -> Shape:
        """The tensor's :class:`~ember.Shape`."""
        return self.shape

    @property
    def element_type(self) -> Type:
        """The element :class:`~ember.Type` of the tensor's data (``Type.f32`` for float32)."""
        from ember.types import Type

        return Type(self._data.dtype)

    def get_element_type(self) -> Type:
        """The element :class:`~ember.Type` of the tensor's data (``Type.f32`` for float32)."""
        return self.element_type

    @property
    def size(self) -> int:
        """The number of elements (the product of the shape)."""
        return int(self._data.size)

    def get_size(self) -> int:
        """The number of elements (the product of the shape)."""
        return self.size

    @property
    def byte_size(self) -> int:
        """The size of the tensor's data in bytes."""
        return int(self._data.nbytes)

    def get_byte_size(self) -> int:
        """The size of the tensor's data in bytes."""
        return self.byte_size

    @property
    def strides(self) -> tuple[int, ...]:
        """The byte step of each dimension, as numpy gives it."""
        return tuple(self._data.strides)

    def is_continuous(self) -> bool:
        """Whether the data is one C-contiguous block of memory."""
        return bool(self._data.flags.c_contiguous)

    def copy_from(self, source: Any) -> None:
        """Copy another tensor's or an array's values into this one (shapes must match)."""
        values = source.data if isinstance(source, Tensor) else np.asarray(source)
        if values.shape != self._data.shape:
            self._data = np.array(values, dtype=self._data.dtype, copy=True, order="C")
        else:
            np.copyto(self._data, values, casting="same_kind")

    def copy_to(self, target: Tensor) -> None:
        """Copy this tensor's values into ``target`` (see :meth:`copy_from`)."""
        target.copy_from(self)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        return self._data.copy() if copy else self._data

    def __repr__(self) -> str:
        shape = ",".join(map(str, self._data.shape))
        return f"<Tensor: shape[{shape}] type: {self.element_type.get_type_name()}>"


def _is_dtype(value: Any) -> bool:
    if isinstance(value, np.dtype):
        return True
    return isinstance(value, type) and issubclass(value, np.generic)


def _is_shape(value: Any) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes) \
        and all(isinstance(d, int | np.integer) for d in value)


def as_array(value: Any) -> Any:
    """What an inference input becomes: a Tensor's data; anything else as given."""
    return value.data if isinstance(value, Tensor) else value
