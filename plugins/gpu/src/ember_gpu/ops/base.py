"""What an operator definition provides, by kind.

- ``ElementwiseOp``: one output element from the operands' elements at the same (broadcast)
  position; chains of them fuse into one kernel, after an anchor or on their own.
- ``AnchorOp``: one work-item per output element computes it (a convolution, a pooling window, a
  dot product, a gathered element...); elementwise consumers fuse behind it as an epilogue.
- ``StandaloneOp``: writes its own kernels (Softmax reads whole rows; Split has several outputs).
- ``AliasOp``: no kernel, the output is the input's bytes under another shape (Reshape & co).

``infer`` sees the node and its inputs (with concrete shapes; host values where known) and
returns the output shapes and dtypes and whatever parameters the code generator needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ember_gpu.graph import Node
from ember_gpu.ir import Value

if TYPE_CHECKING:
    from ember_gpu.codegen import KernelWriter

Shape = tuple[int, ...]
ELEMENTWISE, ANCHOR, STANDALONE, ALIAS = "elementwise", "anchor", "standalone", "alias"


class DeviceNode:
    """One ONNX node that runs on the device, with its operator's definition and the
    parameters that definition derived from the node and its inputs' shapes."""

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


class Refused(ValueError):
    """Raised by ``infer`` for a node this device does not run (an attribute value, a dtype);
    lowering reports it as UnsupportedOperatorError naming the node, with this reason."""


class Inferred:
    __slots__ = ("dtypes", "params", "shapes")

    def __init__(self, shapes: list[Shape], dtypes: list[np.dtype], params: Any = None) -> None:
        self.shapes = shapes
        self.dtypes = dtypes
        self.params = params


class OpDef:
    kind = ""

    def infer(self, node: Node, inputs: Sequence[Value | None], opset: int) -> Inferred:
        raise NotImplementedError


class ElementwiseOp(OpDef):
    kind = ELEMENTWISE

    def operand_shapes(self, dn: DeviceNode) -> list[Shape | None]:
        """The shape each operand broadcasts from (its own, unless the operator says otherwise)."""
        return [None if v is None else v.shape for v in dn.inputs]

    def expression(self, dn: DeviceNode, operands: Sequence[str | None],
                   kw: KernelWriter) -> str:
        """C code of the output element, from the operands' elements (in compute types)."""
        raise NotImplementedError


class AnchorOp(OpDef):
    kind = ANCHOR

    def body(self, dn: DeviceNode, kw: KernelWriter) -> str:
        """Emit the statements computing the output element at ``kw.index()``; return its code."""
        raise NotImplementedError


class StandaloneOp(OpDef):
    kind = STANDALONE

    def emit(self, dn: DeviceNode, new_kernel: Any) -> list[KernelWriter]:
        """Write the node's kernels with ``new_kernel(shape, comment)`` writers."""
        raise NotImplementedError


class AliasOp(OpDef):
    kind = ALIAS


def broadcast_shapes(*shapes: Sequence[int]) -> Shape:
    first = tuple(shapes[0])
    if all(tuple(s) == first for s in shapes[1:]):
        return first  # the common case, without numpy's machinery
    return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))


def int_list(value: Value | None) -> list[int] | None:
    """The integers of a host value (a shape operand), or None when it is absent."""
    if value is None:
        return None
    assert value.host is not None, f"{value.name} must be known at compile time"
    return [int(v) for v in value.host.reshape(-1)]


def input_at(inputs: Sequence[Value | None], index: int) -> Value | None:
    return inputs[index] if len(inputs) > index else None
