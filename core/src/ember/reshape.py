"""``Model.reshape``: new input shapes written into the ONNX graph, as OpenVINO's reshape does.

Only the graph's input declarations change; the operators compute the rest. Inferred shapes of
intermediate values are dropped (they may hold the old sizes), and a symbolic dimension that an
input now fixes (``batch`` -> 1) is fixed in the output declarations too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ember.errors import InferenceInputError
from ember.types import PartialShape


class Reshapable(Protocol):
    """What reshaping uses of an :class:`ember.Model` (typed here, so that this module, which
    ``Model.reshape`` imports, does not import ``ember.model`` back)."""

    @property
    def proto(self) -> Any: ...

    def input(self, key: Any = None) -> Any: ...


def reshape_model(model: Reshapable, shapes: Any) -> None:
    """Write ``shapes`` (see ``Model.reshape``) into ``model.proto`` in place."""
    if isinstance(shapes, Mapping):
        wanted = {model.input(key).name: _partial(value) for key, value in shapes.items()}
    else:
        wanted = {model.input().name: _partial(shapes)}
    fixed: dict[str, int] = {}  # symbolic names the new shapes pin
    graph = model.proto.graph
    for value_info in graph.input:
        shape = wanted.get(value_info.name)
        if shape is None:
            continue
        dims = value_info.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise InferenceInputError(f"input {value_info.name!r} has rank {len(dims)}; "
                                      f"cannot reshape it to {shape}")
        for dim, new in zip(dims, shape, strict=True):
            if dim.HasField("dim_param") and new.is_static:
                fixed[dim.dim_param] = new.get_length()
            if new.is_static:
                dim.dim_value = new.get_length()
            else:
                dim.dim_param = new.name or "?"
    del graph.value_info[:]
    for value_info in graph.output:
        for dim in value_info.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in fixed:
                dim.dim_value = fixed[dim.dim_param]


def _partial(value: Any) -> PartialShape:
    return value if isinstance(value, PartialShape) else PartialShape(value)
