"""Ember: compile ONNX models per device through plugins, and start them from a persistent cache.

The public API follows OpenVINO's Python API where the concepts are shared::

    import ember
    core = ember.Core()
    compiled = core.compile_model("model.onnx", "CPU", {"CACHE_DIR": "cache"})
    outputs = compiled({"input": array})

Models kept in the local store (``ember.get_dir()``) are found by name: ``ember.save_model("cls",
"model.onnx")`` once, then ``core.compile_model("cls", "CPU")``; see :mod:`ember.store`.
"""

from typing import TYPE_CHECKING, Any

from ember import errors, properties
from ember._version import __version__
from ember.async_queue import AsyncInferQueue
from ember.compiled_model import CompiledModel, InferRequest, InferResult
from ember.core import Core
from ember.device import DeviceModel
from ember.model import Model, Port
from ember.shortcuts import compile_model
from ember.store import (
    cached_model_path,
    clear_model_cache,
    get_dir,
    list_cached_models,
    save_model,
    set_dir,
    set_model_cache,
)
from ember.tensor import Tensor
from ember.types import Dimension, PartialShape, Shape, Type
from ember.versions import Version

if TYPE_CHECKING:
    from ember.hookspecs import hookimpl


def __getattr__(name: str) -> Any:
    # ``ember.hookimpl`` needs pluggy, which only plugins (imported when their device is first
    # named) use: importing it here would cost every application's start.
    if name == "hookimpl":
        from ember.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'ember' has no attribute {name!r}")


__all__ = [
    "AsyncInferQueue",
    "CompiledModel",
    "Core",
    "DeviceModel",
    "Dimension",
    "InferRequest",
    "InferResult",
    "Model",
    "PartialShape",
    "Port",
    "Shape",
    "Tensor",
    "Type",
    "Version",
    "__version__",
    "cached_model_path",
    "clear_model_cache",
    "compile_model",
    "errors",
    "get_dir",
    "hookimpl",
    "list_cached_models",
    "properties",
    "save_model",
    "set_dir",
    "set_model_cache",
]
