"""``ember.compile_model``: OpenVINO's module-level shortcut, a Core and one compile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember.runtime.compiled_model import CompiledModel
    from ember.runtime.core_api import ModelSource


def compile_model(model: ModelSource, device_name: str = "AUTO",
                  config: Mapping[str, Any] | None = None) -> CompiledModel:
    """Compile ``model`` on a new ``Core``; the device defaults to ``"AUTO"``, as in OpenVINO."""
    from ember.runtime.core import Core

    return Core().compile_model(model, device_name, config)
