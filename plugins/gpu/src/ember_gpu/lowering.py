"""Specialising a graph to concrete inputs: fold what is known, give every other value a shape.

Given the shapes of the inputs (and the values of the shape inputs), nodes whose inputs are all
known run on the host (``host_ops``); Shape and Size of a device value become constants; every
other node becomes a :class:`DeviceNode` with concrete output shapes from its operator's
``infer``. Two kinds of nodes are replaced before that: an If by the branch its (known)
condition takes, and a recurrent layer (LSTM, GRU, RNN) by its steps, unrolled into the
MatMul-and-elementwise nodes of one step after another (``recurrent.py``). The result is what
the transforms, the fusion and the code generator work on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ember.plugin import UnsupportedOperatorError
from ember_gpu import dtypes, host_ops
from ember_gpu.graph import SHAPE_ONLY, Graph, Node, Subgraph
from ember_gpu.ir import Value
from ember_gpu.ops.base import ALIAS, ELEMENTWISE, DeviceNode, Refused
from ember_gpu.ops.elementwise import Elementwise
from ember_gpu.ops.registry import DEVICE_OPS
from ember_gpu.recurrent import RECURRENT, expand_recurrent


class DeviceGraph:
    def __init__(self, inputs: list[Value], nodes: list[DeviceNode], outputs: list[Value],
                 opset: int) -> None:
        self.inputs = inputs  # one per model input; host values for shape inputs
        self.nodes = nodes
        self.outputs = outputs
        self.opset = opset


def lower(graph: Graph, arrays: Sequence[np.ndarray], device_name: str,
          fp64: bool) -> DeviceGraph:
    """The device graph of ``graph`` for these inputs (only the shape inputs' values are read)."""
    env: dict[str, Value] = {}
    inputs: list[Value] = []
    for port, array in zip(graph.inputs, arrays, strict=True):
        if port.name in graph.shape_inputs:
            value = Value.known(port.name, host_ops.contiguous(array))
        else:
            value = Value(port.name, tuple(int(d) for d in array.shape), np.dtype(array.dtype))
        env[port.name] = value
        inputs.append(value)

    missing: dict[str, Node] = {}  # optional outputs the device does not produce

    def lookup(name: str) -> Value | None:
        if not name:
            return None
        found = env.get(name)
        if found is None:
            if name in missing:
                node = missing[name]
                raise unsupported(device_name, node, f"its output {name!r} is not produced")
            found = env[name] = Value.known(name, graph.constants[name])  # wrapped on first use
        return found

    nodes: list[DeviceNode] = []

    def visit(node: Node) -> None:
        values = [lookup(name) for name in node.inputs]
        present = [v for v in values if v is not None]
        if node.op_type == "If":
            _take_branch(node, values, device_name, visit, lookup, env)
            return
        if node.op_type in RECURRENT:
            inner, known = expand_recurrent(node, values, graph.opset, device_name)
            for name, array in known.items():
                env[name] = Value.known(name, array)
            for expanded in inner:
                visit(expanded)
            return
        if node.op_type in SHAPE_ONLY and present and not present[0].on_host:
            placeholder = np.empty(present[0].shape, dtype=np.uint8)  # only its shape is read
            outputs = host_ops.evaluate(node, [placeholder], graph.opset)
        elif all(v.on_host for v in present):
            outputs = host_ops.evaluate(node, [None if v is None else v.host for v in values],
                                        graph.opset)
        else:
            device_node = _device_node(node, values, graph.opset, device_name, fp64)
            nodes.append(device_node)
            for name, value in zip(node.outputs, device_node.outputs, strict=False):
                if name:
                    env[name] = value
            for name in node.outputs[len(device_node.outputs):]:
                if name and node.op_type == "Dropout":  # inference: the mask keeps everything
                    env[name] = Value.known(name, np.ones(device_node.outputs[0].shape, bool))
                elif name:
                    missing[name] = node
            return
        for name, array in zip(node.outputs, outputs, strict=False):
            if name:
                env[name] = Value.known(name, array)

    for node in graph.nodes:
        visit(node)
    outputs = [lookup(port.name) for port in graph.outputs]
    return DeviceGraph(inputs, nodes, outputs, graph.opset)  # type: ignore[arg-type]


def _take_branch(node: Node, values: list[Value | None], device_name: str,
                 visit: Callable[[Node], None], lookup: Callable[[str], Value | None],
                 env: dict[str, Value]) -> None:
    """An If whose condition is known here: lower the branch it takes in its place."""
    condition = values[0]
    if condition is None or condition.host is None or condition.host.size != 1:
        raise unsupported(device_name, node, "its condition must be known at compile time")
    branch: Subgraph = node.attrs["then_branch" if bool(condition.host.reshape(-1)[0])
                                  else "else_branch"]
    for inner in branch.nodes:
        visit(inner)
    for name, inner_name in zip(node.outputs, branch.outputs, strict=False):
        value = lookup(inner_name)
        if name and value is not None:
            env[name] = value


def _dropout_trains(values: list[Value | None]) -> bool:
    """Dropout in training mode with a non-zero ratio (with ratio 0 it is the identity too)."""
    ratio, training = (values[i] if len(values) > i else None for i in (1, 2))
    if training is None or training.host is None or not bool(training.host.reshape(-1)[0]):
        return False
    return ratio is None or ratio.host is None or float(ratio.host.reshape(-1)[0]) != 0.0


def unsupported(device_name: str, node: Node, reason: str) -> UnsupportedOperatorError:
    """The error for a node the device cannot run, saying why."""
    error = UnsupportedOperatorError(device_name, node.op_type, node.name)
    error.args = (f"{error.args[0]}: {reason}",)
    return error


def _device_node(node: Node, values: list[Value | None], opset: int, device_name: str,
                 fp64: bool) -> DeviceNode:
    op = DEVICE_OPS.get(node.op_type)
    if op is None:  # an operator the device only folds (Range...) fed by a device value
        raise unsupported(device_name, node, "its inputs must be known at compile time")
    for value in values:
        if value is not None and not dtypes.supported(value.dtype):
            raise unsupported(device_name, node, f"{value.dtype} tensors are not supported")
    if node.op_type == "Dropout" and _dropout_trains(values):
        raise unsupported(device_name, node, "training mode (random dropout) is not supported")
    try:
        inferred = op.infer(node, values, opset)
    except Refused as exc:
        raise unsupported(device_name, node, str(exc)) from None
    outputs = [Value(name or f"{node.name}:{i}", tuple(map(int, shape)), np.dtype(dtype))
               for i, (name, shape, dtype) in enumerate(zip(node.outputs, inferred.shapes,
                                                            inferred.dtypes, strict=False))]
    for value in outputs:
        if not dtypes.supported(value.dtype) or (dtypes.needs_fp64(value.dtype) and not fp64):
            raise unsupported(device_name, node, f"{value.dtype} results are not supported")
    if op.kind == ELEMENTWISE and isinstance(op, Elementwise) and op.float_only \
            and not dtypes.is_float(outputs[0].dtype):
        raise unsupported(device_name, node, f"it takes floats, not {outputs[0].dtype}")
    if op.kind == ALIAS:
        source = values[0]
        assert source is not None
        outputs[0].alias_of = source
    device_node = DeviceNode(node, op, values, outputs, inferred.params)
    device_node.extra["opset"] = opset
    return device_node
