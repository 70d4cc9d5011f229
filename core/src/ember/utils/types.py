"""OpenVINO's ``openvino.utils.types``: element types to and from numpy, as benchmark code calls
them (``get_dtype(tensor.element_type)`` to fill a tensor with random data)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.types import Type


def get_element_type(data_type: Any) -> Type:
    """The ``Type`` of a numpy dtype or scalar type; Python's ``int`` and ``float`` are ``i32``
    and ``f32``, as in OpenVINO. ``ValueError`` for anything that is not an element type."""
    if data_type is int:
        return Type.i32
    if data_type is float:
        return Type.f32
    return Type(data_type)


def get_element_type_str(data_type: Any) -> str:
    """The name of :func:`get_element_type`'s type: ``"f32"``."""
    return get_element_type(data_type).get_type_name()


def get_dtype(openvino_type: Any) -> np.dtype:
    """The numpy dtype of an element type (a ``Type`` or its name)."""
    return Type(openvino_type).to_dtype()


def get_numpy_ctype(openvino_type: Any) -> type:
    """The numpy scalar type of an element type: ``np.float32`` for ``Type.f32``."""
    return get_dtype(openvino_type).type


def get_ndarray(data: Any) -> np.ndarray:
    """``data`` as a numpy array (an array is returned as it is)."""
    return data if isinstance(data, np.ndarray) else np.array(data)


def get_shape(data: Any) -> list[int] | tuple[int, ...]:
    """The shape of an array, the length of a list, or ``[]`` for a scalar."""
    if isinstance(data, np.ndarray):
        shape: tuple[int, ...] = data.shape
        return shape
    if isinstance(data, list):
        return [len(data)]
    return []
