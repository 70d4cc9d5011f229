"""``Core.query_model``: which nodes of a model a device runs, as OpenVINO's query_model says.

A device that lists ``SUPPORTED_OPERATORS`` runs the nodes of the default ONNX domain whose
operator type is listed; one that does not list them (CPU on onnxruntime runs every standard
operator) is asked by compiling the model: all nodes when that succeeds, and all but the node an
``UnsupportedOperatorError`` names when it does not. Nodes without a name are named
``<op_type>_<index>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ember import properties as props
from ember.errors import UnsupportedOperatorError
from ember.model.model import Model

if TYPE_CHECKING:
    from ember.runtime.core_api import CoreAPI as Core
    from ember.runtime.core_api import ModelSource


def query_model(core: Core, model: ModelSource, device_name: str,
                config: Mapping[str, Any] | None = None) -> dict[str, str]:
    device = _full_name(core, device_name)
    if not isinstance(model, Model):
        model = core.read_model(model)
    nodes = [(node.name or f"{node.op_type}_{i}", node.op_type, node.domain)
             for i, node in enumerate(model.proto.graph.node)]
    supported = core.get_property(device, props.SUPPORTED_PROPERTIES)
    if props.SUPPORTED_OPERATORS in supported:
        operators = set(core.get_property(device, props.SUPPORTED_OPERATORS))
        return {name: device for name, op, domain in nodes
                if domain in ("", "ai.onnx") and op in operators}
    try:
        core.compile_model(model, device, config)
    except UnsupportedOperatorError as exc:
        return {name: device for name, op, _ in nodes
                if name != exc.node_name and op != exc.op_type}
    return {name: device for name, _, _ in nodes}


def _full_name(core: Core, device_name: str) -> str:
    """"GPU" -> "GPU.0", through a public call (get_versions is keyed by the full name)."""
    return next(iter(core.get_versions(device_name)))
