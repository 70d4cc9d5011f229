"""A built graph as canonical JSON: what enters the cache key of a model edited with it.

Two graphs built the same way by two processes give the same text (node counters and Python
object identities are left out; constants enter by value, large ones by digest).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ember.model.graph import Node, Output

_INLINE = 64  # constants up to this many elements enter the recipe by value


def describe(outputs: list[Output], names: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """The nodes computing ``outputs``, in a deterministic order, each with its inputs as
    ``[node position, output index]``; a node in ``names`` (by id) is described by that name."""
    order: dict[int, int] = {}
    entries: list[dict[str, Any]] = []
    names = names or {}

    def visit(node: Node) -> int:
        if node.id in order:
            return order[node.id]
        ins = [[visit(s.node), s.index] for s in node.input_values]
        entry: dict[str, Any] = {"op": node.type_name, "in": ins,
                                 "attrs": _plain(node.attrs)}
        if node.id in names:
            entry["bound"] = names[node.id]
        if node.value is not None:
            entry["value"] = _value(node)
        if node.type_name == "If":
            entry["bodies"] = _if_bodies(node)
        entry["out"] = [[str(dtype), None if shape is None else list(shape)]
                        for dtype, shape in node.out]
        order[node.id] = len(entries)
        entries.append(entry)
        return order[node.id]

    for output in outputs:
        visit(output.node)
    return entries


def _if_bodies(node: Any) -> dict[str, Any]:
    bodies = {}
    for branch, body in (("then", node.then_body), ("else", node.else_body)):
        _params, results = body._graph if body is not None else ([], [])
        bound = {p.id: f"outer{i}" for i, (p, _) in enumerate(node.body_inputs[branch])}
        bodies[branch] = describe([r.output(0) for r in results], bound)
    return bodies


def _value(node: Node) -> Any:
    data = node.get_data()
    if data.size <= _INLINE:
        return {"dtype": str(data.dtype), "shape": list(data.shape), "data": data.tolist()}
    return {"dtype": str(data.dtype), "shape": list(data.shape),
            "sha256": hashlib.sha256(data.tobytes()).hexdigest()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
