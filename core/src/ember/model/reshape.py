"""``Model.reshape``: new input shapes, recorded as an edit and written into the ONNX graph as
OpenVINO's reshape does.

Only the graph's input declarations change; the operators compute the rest. Inferred shapes of
intermediate values are dropped (they may hold the old sizes), and a symbolic dimension that an
input now fixes (``batch`` -> 1) is fixed in the output declarations too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ember.errors import InferenceInputError
from ember.model.model_edits import Edit
from ember.model.port import Dim, Port, find_port
from ember.types import PartialShape

if TYPE_CHECKING:
    import onnx


class Reshape(Edit):
    """New shapes for some inputs: ``{input name: [size, symbolic name or None, ...]}``."""

    kind = "reshape"

    def __init__(self, shapes: Mapping[str, tuple[Dim, ...]]) -> None:
        self.shapes = {name: tuple(dims) for name, dims in sorted(shapes.items())}

    @classmethod
    def of(cls, inputs: list[Port], shapes: Any) -> Reshape:
        """The edit for ``Model.reshape(shapes)`` on a model with these inputs."""
        if isinstance(shapes, Mapping):
            wanted = {find_port(inputs, key.name if isinstance(key, Port) else key,
                                "input").name: _partial(value)
                      for key, value in shapes.items()}
        else:
            wanted = {find_port(inputs, None, "input").name: _partial(shapes)}
        return cls({name: tuple(d.as_dim() for d in shape) for name, shape in wanted.items()})

    def params(self) -> Any:
        return {name: list(dims) for name, dims in self.shapes.items()}

    def ports(self, inputs: list[Port], outputs: list[Port]) -> tuple[list[Port], list[Port]]:
        fixed: dict[str, int] = {}  # symbolic names the new shapes pin
        new_inputs = []
        for port in inputs:
            shape = self.shapes.get(port.name)
            if shape is None:
                new_inputs.append(port)
                continue
            if len(port.shape) != len(shape):
                raise InferenceInputError(f"input {port.name!r} has rank {len(port.shape)}; "
                                          f"cannot reshape it to {_shown(shape)}")
            for old, new in zip(port.shape, shape, strict=True):
                if isinstance(old, str) and isinstance(new, int):
                    fixed[old] = new
            new_inputs.append(Port(port.name, shape, port.dtype, port.index))
        new_outputs = [Port(p.name, tuple(fixed.get(d, d) if isinstance(d, str) else d
                                          for d in p.shape), p.dtype, p.index)
                       for p in outputs]
        return new_inputs, new_outputs

    def apply(self, proto: onnx.ModelProto) -> None:
        fixed: dict[str, int] = {}
        graph = proto.graph
        for value_info in graph.input:
            shape = self.shapes.get(value_info.name)
            if shape is None:
                continue
            dims = value_info.type.tensor_type.shape.dim
            if len(dims) != len(shape):  # ports() refused this already; a proto changed since
                raise InferenceInputError(f"input {value_info.name!r} has rank {len(dims)}; "
                                          f"cannot reshape it to {_shown(shape)}")
            for dim, new in zip(dims, shape, strict=True):
                if isinstance(new, int):
                    if dim.HasField("dim_param") and dim.dim_param not in ("", "?"):
                        fixed[dim.dim_param] = new
                    dim.dim_value = new
                else:
                    dim.dim_param = new or "?"
        del graph.value_info[:]
        for value_info in graph.output:
            for dim in value_info.type.tensor_type.shape.dim:
                if dim.HasField("dim_param") and dim.dim_param in fixed:
                    dim.dim_value = fixed[dim.dim_param]


def _shown(shape: tuple[Dim, ...]) -> str:
    return str(PartialShape(shape))


def _partial(value: Any) -> PartialShape:
    return value if isinstance(value, PartialShape) else PartialShape(value)
