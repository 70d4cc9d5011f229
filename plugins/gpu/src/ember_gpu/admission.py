"""What the device refuses in ``compile``, before any input shape is known.

A model with dynamic dimensions is lowered at its first inference; whatever lowering would
refuse then must be refused here instead, so that a model ``compile_model`` accepts runs. These
checks need only the graph: element types of the ports and of Cast's target, attribute values
the kernels do not implement, and operands that must be constants.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ember.plugin import UnsupportedOperatorError
from ember_gpu import dtypes
from ember_gpu.graph import SHAPE_ONLY, Graph, Node, Subgraph

_RESIZE_MODES = {
    "mode": {"nearest", "linear", "cubic"},
    "coordinate_transformation_mode": {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                       "align_corners", "asymmetric", "tf_crop_and_resize"},
    "nearest_mode": {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"},
    "keep_aspect_ratio_policy": {"stretch", "not_larger", "not_smaller"},
}
_RECURRENT_ACTIVATIONS = {"Sigmoid", "Tanh", "Relu"}


def _refuse(device_name: str, node: Node, reason: str) -> UnsupportedOperatorError:
    error = UnsupportedOperatorError(device_name, node.op_type, node.name)
    error.args = (f"{error.args[0]}: {reason}",)
    return error


def _nodes(nodes: tuple[Node, ...]) -> Iterator[Node]:
    for node in nodes:
        yield node
        for branch in node.attrs.values():
            if isinstance(branch, Subgraph):
                yield from _nodes(branch.nodes)


def _storable(dtype: np.dtype, fp64: bool) -> bool:
    return dtypes.supported(dtype) and (fp64 or not dtypes.needs_fp64(dtype))


def check_runnable(graph: Graph, device_name: str, fp64: bool) -> None:
    """Raise UnsupportedOperatorError for what lowering would refuse whatever the shapes."""
    every = list(_nodes(graph.nodes))
    known = _host_known(graph, every)
    for port in (*graph.inputs, *graph.outputs):
        if _storable(port.dtype, fp64) or port.name in known:
            continue  # a value known on the host (folded) never reaches device memory
        user = next((n for n in every if port.name in n.inputs or port.name in n.outputs), None)
        if user is not None:  # an unused input costs nothing
            raise _refuse(device_name, user, f"{port.dtype} tensors are not supported "
                                             f"({port.name!r})")
    for node in every:
        attrs = node.attrs
        if node.op_type == "Cast" and node.outputs[0] not in known:
            to = attrs.get("to")
            if isinstance(to, int):
                from onnx import helper

                try:
                    target = np.dtype(helper.tensor_dtype_to_np_dtype(to))
                except (KeyError, TypeError, ValueError):
                    raise _refuse(device_name, node, f"the element type {to}") from None
                if not _storable(target, fp64):
                    raise _refuse(device_name, node, f"{target} results are not supported")
        elif node.op_type == "Dropout":
            _check_dropout(graph, node, device_name)
        elif node.op_type == "Resize":
            if graph.opset < 11:
                raise _refuse(device_name, node, "Resize-10 (opset 10) is not supported")
            for name, allowed in _RESIZE_MODES.items():
                if name in attrs and attrs[name] not in allowed:
                    raise _refuse(device_name, node, f"{name} {attrs[name]!r}")
            if attrs.get("antialias", 0) and attrs.get("mode", "nearest") == "nearest":
                raise _refuse(device_name, node, "antialias with mode 'nearest'")
        elif node.op_type in ("LSTM", "GRU", "RNN"):
            if graph.opset < 7:
                raise _refuse(device_name, node, "only opset 7 and later is supported")
            activations = set(attrs.get("activations") or ())
            if not activations <= _RECURRENT_ACTIVATIONS or "activation_alpha" in attrs \
                    or "activation_beta" in attrs:
                raise _refuse(device_name, node, f"activations {sorted(activations)} (the "
                                                 f"device runs {sorted(_RECURRENT_ACTIVATIONS)} "
                                                 "without parameters)")


def _host_known(graph: Graph, nodes: list[Node]) -> set[str]:
    """Values known on the host whatever the input shapes: constants, shape inputs, and what
    nodes compute from those alone (or from shapes only: Shape, Size). Lowering folds them."""
    known = set(graph.constants) | set(graph.shape_inputs) | {""}
    for node in nodes:  # in order: a node's inputs are decided before it
        if node.op_type in SHAPE_ONLY or set(node.inputs) <= known:
            known.update(node.outputs)
    return known


def _check_dropout(graph: Graph, node: Node, device_name: str) -> None:
    """Inference mode only: training_mode must be a constant, false (or the ratio 0)."""
    training = node.inputs[2] if len(node.inputs) > 2 else ""
    if not training:
        return
    if training not in graph.constants:
        raise _refuse(device_name, node, "training_mode must be a constant (the device runs "
                                         "inference mode only)")
    if not bool(np.asarray(graph.constants[training]).reshape(-1)[0]):
        return
    ratio = node.inputs[1] if len(node.inputs) > 1 else ""
    if not ratio or ratio not in graph.constants \
            or float(np.asarray(graph.constants[ratio]).reshape(-1)[0]) != 0.0:
        raise _refuse(device_name, node, "training mode (random dropout) is not supported")
