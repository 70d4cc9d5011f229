"""The specialised graph's values, with concrete shapes.

A :class:`Value` is known on the host (``host`` holds it: a weight, a folded shape) or computed on
the device. The device nodes between values are :class:`ember_gpu.ops.base.DeviceNode`, beside
the operator definitions they hold and that take them.
"""

from __future__ import annotations

import math

import numpy as np


class Value:
    __slots__ = ("alias_of", "dtype", "host", "name", "shape")

    def __init__(self, name: str, shape: tuple[int, ...], dtype: np.dtype,
                 host: np.ndarray | None = None) -> None:
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.host = host  # known at compile time
        self.alias_of: Value | None = None  # a Reshape & co: the same bytes, another shape

    def __repr__(self) -> str:
        where = "host" if self.host is not None else "device"
        return f"<Value {self.name!r} {self.dtype}{list(self.shape)} on {where}>"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    @property
    def on_host(self) -> bool:
        return self.host is not None

    def root(self) -> Value:
        """The value that owns this value's bytes (itself, unless it is an alias)."""
        value = self
        while value.alias_of is not None:
            value = value.alias_of
        return value

    @classmethod
    def known(cls, name: str, array: np.ndarray) -> Value:
        return cls(name, array.shape, array.dtype, host=array)
