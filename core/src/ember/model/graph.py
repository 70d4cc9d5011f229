"""Graph nodes as OpenVINO shows them: ``Node``, its ``Output`` and ``Input`` ports.

The same classes serve two purposes. ``model.get_ordered_ops()`` describes an ONNX graph with
them (``Parameter`` for each graph input, ``Constant`` for each initializer, one node per ONNX
operator, ``Result`` for each graph output). ``ember.opset`` builds new graphs with them; a built
graph is turned into ONNX nodes by :mod:`ember.model.graph_onnx`. Nothing here imports onnx.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

_ids = itertools.count()

#: A dimension as Ember's ports keep it: a size, a symbolic name, or None (unknown).
Dim = int | str | None


class Node:
    """One operation: its type name, inputs (outputs of other nodes), attributes and outputs.

    ``out`` holds, per output, the numpy dtype and the shape (``None`` when the rank is unknown).
    """

    def __init__(self, type_name: str, inputs: list[Output], attrs: dict[str, Any] | None = None,
                 out: list[tuple[np.dtype, tuple[Dim, ...] | None]] | None = None,
                 name: str | None = None, value: np.ndarray | None = None) -> None:
        self.type_name = type_name
        self.input_values = list(inputs)
        self.attrs = dict(attrs or {})
        self.out = list(out or [])
        self.value = value  # a Constant's data
        self.id = next(_ids)
        self.friendly_name = name or f"{type_name}_{self.id}"
        self.output_names: list[str] = []  # an ONNX graph's names, for nodes read from one
        self.bodies: dict[str, Any] = {}  # If's then/else models

    # -- OpenVINO's Node API -----------------------------------------------------------------

    def get_type_name(self) -> str:
        """The operation's type name: ``"Parameter"``, ``"Constant"``, ``"Conv"``, ..."""
        return self.type_name

    def get_friendly_name(self) -> str:
        """The node's display name (its ONNX name, or ``<type>_<id>`` for a built node)."""
        return self.friendly_name

    def set_friendly_name(self, name: str) -> None:
        """Rename the node: the name it is shown with and, for a built graph, its ONNX name."""
        self.friendly_name = name

    def get_name(self) -> str:
        """The node's name; Ember's nodes have one name, the friendly name."""
        return self.friendly_name

    def get_attributes(self) -> dict[str, Any]:
        """A copy of the node's attributes, by name."""
        return dict(self.attrs)

    def get_output_size(self) -> int:
        """The number of outputs the node has."""
        return len(self.out)

    def get_input_size(self) -> int:
        """The number of inputs the node takes."""
        return len(self.input_values)

    def output(self, index: int) -> Output:
        """Output ``index`` of this node; ``IndexError`` when it has fewer outputs."""
        if not 0 <= index < len(self.out):
            raise IndexError(f"{self.friendly_name} has {len(self.out)} outputs, not {index + 1}")
        return Output(self, index)

    def outputs(self) -> list[Output]:
        """Every output of this node, in order."""
        return [Output(self, i) for i in range(len(self.out))]

    def input(self, index: int) -> Input:
        """Input ``index`` of this node; ``IndexError`` when it has fewer inputs."""
        if not 0 <= index < len(self.input_values):
            raise IndexError(f"{self.friendly_name} has {len(self.input_values)} inputs")
        return Input(self, index)

    def inputs(self) -> list[Input]:
        """Every input of this node, in order."""
        return [Input(self, i) for i in range(len(self.input_values))]

    def input_value(self, index: int) -> Output:
        """The output (of another node) that feeds input ``index``."""
        return self.input_values[index]

    def input_values_list(self) -> list[Output]:
        """The outputs (of other nodes) that feed this node's inputs, in order."""
        return list(self.input_values)

    def get_output_element_type(self, index: int) -> Any:
        """The element :class:`~ember.Type` of output ``index``."""
        return self.output(index).get_element_type()

    def get_output_partial_shape(self, index: int) -> Any:
        """The :class:`~ember.PartialShape` of output ``index``."""
        return self.output(index).get_partial_shape()

    def get_output_shape(self, index: int) -> Any:
        """The static :class:`~ember.Shape` of output ``index``; an error when it is dynamic."""
        return self.output(index).get_shape()

    def get_element_type(self) -> Any:
        """The element :class:`~ember.Type` of the node's first output."""
        return self.output(0).get_element_type()

    def get_data(self) -> np.ndarray:
        """A Constant's value."""
        if self.value is None:
            raise RuntimeError(f"{self.friendly_name} is a {self.type_name}, not a Constant")
        return self.value

    def get_vector(self) -> list[Any]:
        """A Constant's value, flattened into a list of Python numbers."""
        return self.get_data().reshape(-1).tolist()

    def __repr__(self) -> str:
        outs = ", ".join(str(o) for o in self.outputs())
        return f"<{self.type_name}: '{self.friendly_name}' ({outs})>"


class Output:
    """Output ``index`` of ``node``: what other nodes take as input."""

    __slots__ = ("index", "node")

    def __init__(self, node: Node, index: int = 0) -> None:
        self.node, self.index = node, index

    def get_node(self) -> Node:
        """The node this output belongs to."""
        return self.node

    def get_index(self) -> int:
        """Which output of its node this is (0 for the first)."""
        return self.index

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the values this output produces."""
        return self.node.out[self.index][0]

    @property
    def shape_dims(self) -> tuple[Dim, ...] | None:
        """The shape in Ember's form (sizes, symbolic names or None), or None when the rank is
        unknown."""
        return self.node.out[self.index][1]

    def get_element_type(self) -> Any:
        """The element :class:`~ember.Type` of the values this output produces."""
        from ember.types import Type

        return Type(self.dtype)

    @property
    def element_type(self) -> Any:
        """The element :class:`~ember.Type` of the values this output produces."""
        return self.get_element_type()

    def get_partial_shape(self) -> Any:
        """The :class:`~ember.PartialShape` of this output (dynamic dimensions included)."""
        from ember.types import PartialShape

        dims = self.shape_dims
        return PartialShape("...") if dims is None else PartialShape(dims)

    @property
    def partial_shape(self) -> Any:
        """The :class:`~ember.PartialShape` of this output (dynamic dimensions included)."""
        return self.get_partial_shape()

    def get_shape(self) -> Any:
        """The static :class:`~ember.Shape` of this output; an error when it is dynamic."""
        return self.get_partial_shape().to_shape()

    @property
    def shape(self) -> Any:
        """The static :class:`~ember.Shape` of this output; an error when it is dynamic."""
        return self.get_shape()

    def get_any_name(self) -> str:
        """The output's tensor name in the ONNX graph, else ``"<node name>:<index>"``."""
        names = self.node.output_names
        if names and self.index < len(names) and names[self.index]:
            return names[self.index]
        return f"{self.node.friendly_name}:{self.index}"

    @property
    def any_name(self) -> str:
        """The output's tensor name in the ONNX graph, else ``"<node name>:<index>"``."""
        return self.get_any_name()

    def get_names(self) -> set[str]:
        """The output's tensor names (Ember keeps one: :meth:`get_any_name`)."""
        return {self.get_any_name()}

    @property
    def names(self) -> set[str]:
        """The output's tensor names (Ember keeps one: :meth:`get_any_name`)."""
        return self.get_names()

    def get_target_inputs(self) -> set[Input]:
        """Not supported: Ember's graphs link each input to its output, not back; raises
        ``NotImplementedError``."""
        raise NotImplementedError("Ember's graphs link inputs to outputs, not back")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Output) and other.node is self.node
                and other.index == self.index)

    def __hash__(self) -> int:
        return hash((id(self.node), self.index))

    def __repr__(self) -> str:
        return f"<Output: names[{self.get_any_name()}] shape{self.get_partial_shape()} " \
               f"type: {self.get_element_type().get_type_name()}>"


class Input:
    """Input ``index`` of ``node``, and the output that feeds it."""

    __slots__ = ("index", "node")

    def __init__(self, node: Node, index: int) -> None:
        self.node, self.index = node, index

    def get_node(self) -> Node:
        """The node this input belongs to."""
        return self.node

    def get_index(self) -> int:
        """Which input of its node this is (0 for the first)."""
        return self.index

    def get_source_output(self) -> Output:
        """The output (of another node) that feeds this input."""
        return self.node.input_values[self.index]

    def get_element_type(self) -> Any:
        """The element :class:`~ember.Type` of the value this input receives."""
        return self.get_source_output().get_element_type()

    def get_partial_shape(self) -> Any:
        """The :class:`~ember.PartialShape` of the value this input receives."""
        return self.get_source_output().get_partial_shape()

    def get_shape(self) -> Any:
        """The static :class:`~ember.Shape` of the value this input receives; an error when it is
        dynamic."""
        return self.get_source_output().get_shape()

    def __repr__(self) -> str:
        return f"<Input: {self.node.friendly_name}[{self.index}]>"
