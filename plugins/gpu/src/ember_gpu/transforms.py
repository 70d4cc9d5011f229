"""Graph transformations on the specialised graph (skipped with ``DISABLE_TRANSFORMATIONS``).

Only one rewrites the graph: BatchNormalization right after a Conv whose weights are constant is
folded into those weights and bias (the Conv's output then needs no second pass over memory).
Fusion of elementwise chains (``fusion.py``) is the other transformation the option turns off.
"""

from __future__ import annotations

from ember.plugin import batchnorm_into_conv
from ember_gpu.ir import Value
from ember_gpu.lowering import DeviceGraph
from ember_gpu.ops.base import DeviceNode


def fold_batchnorm_into_conv(graph: DeviceGraph) -> None:
    consumers: dict[int, int] = {}
    for dn in graph.nodes:
        for value in dn.inputs:
            if value is not None:
                consumers[id(value)] = consumers.get(id(value), 0) + 1
    outputs = {id(v) for v in graph.outputs}
    producer = {id(v): dn for dn in graph.nodes for v in dn.outputs}
    folded: set[int] = set()
    for bn in graph.nodes:
        if bn.node.op_type != "BatchNormalization":
            continue
        x = bn.inputs[0]
        conv = producer.get(id(x)) if x is not None else None
        if (conv is None or conv.node.op_type != "Conv" or x is None or len(bn.outputs) != 1
                or consumers.get(id(x)) != 1 or id(x) in outputs
                or not all(v is None or v.on_host for v in [*conv.inputs[1:], *bn.inputs[1:5]])):
            continue
        _fold(conv, bn)
        folded.add(id(bn))
    graph.nodes = [dn for dn in graph.nodes if id(dn) not in folded]


def _fold(conv: DeviceNode, bn: DeviceNode) -> None:
    bias_value = conv.inputs[2] if len(conv.inputs) > 2 else None
    new_weight, new_bias = batchnorm_into_conv(
        conv.inputs[1].host,  # type: ignore[union-attr]
        bias_value.host if bias_value is not None else None,
        *(v.host for v in bn.inputs[1:5]),  # type: ignore[union-attr]
        epsilon=bn.node.attrs.get("epsilon", 1e-5))
    out = bn.outputs[0]
    conv.inputs = [conv.inputs[0], Value.known(f"{out.name}::weight", new_weight),
                   Value.known(f"{out.name}::bias", new_bias)]
    conv.outputs = [out]
    conv.extra["folded"] = bn.node.name
