"""The specialised graph: values with concrete shapes, and the device nodes between them.

A :class:`Value` is known on the host (``host`` holds it: a weight, a folded shape) or computed on
the device. A :class:`DeviceNode` is one ONNX node that runs on the device, with its operator's
definition and the parameters that definition derived from the node and its inputs' shapes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ember_gpu.graph import Node

if TYPE_CHECKING:
    from ember_gpu.ops.base import OpDef


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


class DeviceNode:
    __slots__ = ("extra", "inputs", "node", "op", "outputs", "params")

    def __init__(self, node: Node, op: OpDef, inputs: list[Value | None],
                 outputs: list[Value], params: Any = None) -> None:
        self.node = node
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.params = params
        self.extra: dict[str, Any] = {}

    @property
    def label(self) -> str:
        return f"{self.node.op_type} {self.node.name!r}"
