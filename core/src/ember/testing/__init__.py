"""Helpers for testing Ember and its device plugins: small real models and reference outputs.

Names are imported on first use: the pytest plugin (``ember.testing.pytest_plugin``) is loaded by
every pytest run in an environment where Ember is installed, and must not import onnx there.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "cnn": "ember.testing.models",
    "mlp": "ember.testing.models",
    "ppocr_cls_path": "ember.testing.models",
    "random_inputs": "ember.testing.models",
    "reference_outputs": "ember.testing.reference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ember.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
