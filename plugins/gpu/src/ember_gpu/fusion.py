"""Grouping device nodes into kernels: elementwise chains fuse, behind an anchor or on their own.

Walking the graph backwards, a node joins the group of its consumers when it is elementwise or
an anchor, writes one value of the group's shape, that value is not a model output, and every
node reading it is in that same group (which has no anchor yet: an anchor starts a kernel). A
group is then one kernel: the anchor computes its element, the elementwise nodes follow in
order as locals (a value read twice, as in ``x * clip(x + 3, 0, 6)``, is computed once), and
only the last value is written to memory. Without fusion every node is its own group.
"""

from __future__ import annotations

from ember_gpu.ir import Value
from ember_gpu.ops.base import ALIAS, ANCHOR, ELEMENTWISE, DeviceNode

#: A bound on the nodes per kernel, so that one pathological chain does not build one huge kernel.
MAX_GROUP = 48


class Group:
    def __init__(self, nodes: list[DeviceNode], shape: tuple[int, ...],
                 anchor: DeviceNode | None, fusable: bool) -> None:
        self.nodes = nodes  # in topological order once grouping is done
        self.shape = shape
        self.anchor = anchor
        self.fusable = fusable
        self.inputs: list[Value] = []  # device values read from other groups

    @property
    def sink(self) -> DeviceNode:
        return self.nodes[-1]


def group_nodes(nodes: list[DeviceNode], outputs: list[Value], fuse: bool) -> list[Group]:
    """Kernel groups in an order that respects dependencies (aliases are in no group)."""
    consumers: dict[int, list[DeviceNode]] = {}
    for dn in nodes:
        for value in dn.inputs:
            if value is not None:
                consumers.setdefault(id(value), []).append(dn)
    model_outputs = {id(v) for v in outputs}
    group_of: dict[int, Group] = {}
    groups: list[Group] = []
    for dn in reversed(nodes):
        kind = dn.op.kind
        if kind == ALIAS:
            continue
        if fuse and kind in (ELEMENTWISE, ANCHOR) and len(dn.outputs) == 1:
            target = _joinable(dn, consumers, group_of, model_outputs)
            if target is not None:
                target.nodes.append(dn)
                group_of[id(dn)] = target
                if kind == ANCHOR:
                    target.anchor = dn
                continue
        group = Group([dn], dn.outputs[0].shape, anchor=dn if kind == ANCHOR else None,
                      fusable=kind in (ELEMENTWISE, ANCHOR) and len(dn.outputs) == 1)
        group_of[id(dn)] = group
        groups.append(group)
    groups.reverse()  # by the position of their last node
    for group in groups:
        group.nodes.reverse()
        produced = {id(v) for dn in group.nodes for v in dn.outputs}
        seen: set[int] = set()
        for dn in group.nodes:
            for value in dn.inputs:
                if value is not None and not value.on_host and id(value) not in produced \
                        and id(value) not in seen:
                    seen.add(id(value))
                    group.inputs.append(value)
    return groups


def _joinable(dn: DeviceNode, consumers: dict[int, list[DeviceNode]],
              group_of: dict[int, Group], model_outputs: set[int]) -> Group | None:
    value = dn.outputs[0]
    readers = consumers.get(id(value), [])
    if not readers or id(value) in model_outputs:
        return None
    target = group_of.get(id(readers[0]))
    if target is None or not target.fusable or target.anchor is not None:
        return None
    if any(group_of.get(id(r)) is not target for r in readers):
        return None
    if value.shape != target.shape or len(target.nodes) >= MAX_GROUP:
        return None
    return target
