"""OpenVINO's model-preparation methods of ``ember.Model``: runtime info, ordered ops, and
``Model(results, parameters, name)``. Each imports what it needs when called, so a model that
is only compiled pays for none of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

    from ember.model.graph import Node
    from ember.model.model_edits import Edit
    from ember.model.port import Port


def is_graph(value: Any) -> bool:
    """Whether ``Model(value, ...)`` is OpenVINO's ``Model(results, parameters, name)``."""
    from ember.model.graph import Node, Output

    if isinstance(value, Node | Output):
        return True
    return isinstance(value, list | tuple) and bool(value) and all(
        isinstance(v, Node | Output) for v in value)


def built_proto(results: Any, parameters: Sequence[Node], name: str | None
                ) -> tuple[onnx.ModelProto, tuple[list[Node], list[Node]]]:
    """The ONNX model of a built graph, and the graph (its parameters and results).

    A built model is serialised to ONNX bytes when it is made: building happens once per
    process, and the bytes are then what the cache key's digest and every device read, exactly
    as for a model read from a file.
    """
    from ember import opset
    from ember.model.graph import Node, Output
    from ember.model.graph_onnx import build_model

    items = [results] if isinstance(results, Node | Output) else list(results)
    nodes = [r if isinstance(r, Node) and r.type_name == "Result" else opset.result(r)
             for r in items]
    params = list(parameters or [])
    return build_model(nodes, params, name or "model"), (params, nodes)


class ModelApi:
    """Mixed into ``ember.Model``."""

    if TYPE_CHECKING:  # what ember.Model provides to these methods
        edits: tuple[Edit, ...]

        @property
        def proto(self) -> onnx.ModelProto: ...

        @property
        def outputs(self) -> list[Port]: ...

        def get_friendly_name(self) -> str: ...

    def get_rt_info(self, path: str | Sequence[str] | None = None) -> Any:
        """Runtime info (see :mod:`ember.model.rt_info`): an ``OVAny``; with no path, every
        entry."""
        from ember.model.rt_info import get_rt_info

        return get_rt_info(self, path)

    def set_rt_info(self, value: Any, path: str | Sequence[str]) -> None:
        """Set runtime info at ``path``; it is saved as ONNX metadata (``"a b"`` for a path
        ``["a", "b"]``) by ``save_model`` and enters the key of a cached compile."""
        from ember.model.rt_info import set_rt_info

        set_rt_info(self, value, path)

    def has_rt_info(self, path: str | Sequence[str]) -> bool:
        """Whether runtime info exists at ``path`` (a key, or a sequence of nested keys)."""
        from ember.model.rt_info import has_rt_info

        return has_rt_info(self, path)

    def get_ordered_ops(self) -> list[Node]:
        """Every op of the graph, inputs before the ops using them (builds the edited graph)."""
        from ember.model.graph_read import ordered_ops

        # the same nodes on every call (until the model changes), so that nodes taken from
        # get_results() and get_parameters() build a new Model together, as on OpenVINO
        proto = self.proto
        state = (id(proto), len(self.edits), proto.ByteSize())
        cached = self.__dict__.get("_ordered_ops")
        if cached is None or cached[0] != state:
            cached = (state, ordered_ops(proto))
            self.__dict__["_ordered_ops"] = cached
        return list(cached[1])

    def get_ops(self) -> list[Node]:
        """Every op of the graph, inputs before the ops using them (as :meth:`get_ordered_ops`)."""
        return self.get_ordered_ops()

    def get_parameters(self) -> list[Node]:
        """The graph inputs, as ``Parameter`` nodes."""
        return [op for op in self.get_ordered_ops() if op.type_name == "Parameter"]

    def get_results(self) -> list[Node]:
        """The graph outputs, as ``Result`` nodes."""
        return [op for op in self.get_ordered_ops() if op.type_name == "Result"]

    def get_output_op(self, index: int) -> Node:
        """The ``Result`` node of output ``index``."""
        return self.get_results()[index]

    def get_output_size(self) -> int:
        """The number of outputs the model has."""
        return len(self.outputs)

    def get_name(self) -> str:
        """The model's name (its friendly name)."""
        return self.get_friendly_name()
