"""OpenVINO's ``If`` as built by ``ember.opset.if_op`` (ONNX: If, with two subgraphs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.model.graph import Node, Output


class IfNode(Node):
    """An If whose bodies are built models; outer values reach a body through ``set_input``."""

    def __init__(self, condition: Output, name: str | None) -> None:
        super().__init__("If", [condition], None, [], name)
        self.then_body: Any = None
        self.else_body: Any = None
        #: (body parameter node, outer output) pairs, per body
        self.body_inputs: dict[str, list[tuple[Node, Output]]] = {"then": [], "else": []}
        self.body_outputs: list[tuple[Node, Node]] = []

    def set_then_body(self, body: Any) -> None:
        self.then_body = body

    def set_else_body(self, body: Any) -> None:
        self.else_body = body

    def set_input(self, value: Output | Node, then_parameter: Node | None,
                  else_parameter: Node | None) -> None:
        outer = value if isinstance(value, Output) else value.output(0)
        if then_parameter is not None:
            self.body_inputs["then"].append((then_parameter, outer))
        if else_parameter is not None:
            self.body_inputs["else"].append((else_parameter, outer))

    def set_output(self, then_result: Node, else_result: Node) -> Output:
        self.body_outputs.append((then_result, else_result))
        source = then_result.input_values[0] if then_result.type_name == "Result" else \
            then_result.output(0)
        other = else_result.input_values[0] if else_result.type_name == "Result" else \
            else_result.output(0)
        a, b = source.shape_dims, other.shape_dims
        shape = None if a is None or b is None or len(a) != len(b) else tuple(
            x if x == y else None for x, y in zip(a, b, strict=True))
        self.out.append((np.dtype(source.dtype), shape))
        return self.output(len(self.out) - 1)
