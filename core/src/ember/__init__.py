"""Ember: compile ONNX models per device through plugins, and start them from a persistent cache.

The public API follows OpenVINO's Python API where the concepts are shared::

    import ember
    core = ember.Core()
    compiled = core.compile_model("model.onnx", "CPU", {"CACHE_DIR": "cache"})
    outputs = compiled({"input": array})
"""

from ember import errors, properties
from ember._version import __version__
from ember.compiled_model import CompiledModel, InferRequest, InferResult
from ember.core import Core
from ember.device import DeviceModel
from ember.hookspecs import hookimpl
from ember.model import Model, Port

__all__ = [
    "CompiledModel",
    "Core",
    "DeviceModel",
    "InferRequest",
    "InferResult",
    "Model",
    "Port",
    "__version__",
    "errors",
    "hookimpl",
    "properties",
]
