"""Ember: compile ONNX models per device through plugins, and start them from a persistent cache.

The public API follows OpenVINO's Python API where the concepts are shared::

    import ember
    core = ember.Core()
    compiled = core.compile_model("model.onnx", "CPU", {"CACHE_DIR": "cache"})
    outputs = compiled({"input": array})

Models kept in the local store (``ember.get_dir()``) are found by name: ``ember.save_model("cls",
"model.onnx")`` once, then ``core.compile_model("cls", "CPU")``; see :mod:`ember.store.models`.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ember._version import __version__

# Everything else is imported when first used (PEP 562): an application that compiles one model
# from the cache never pays for the tensors, queues, model store and properties it does not
# touch, and a warm start is mostly the cost of ``import ember``, which must stay small
# (core/tests/test_plugin_loading.py pins what a warm start imports).
_LAZY = {
    "AsyncInferQueue": "ember.runtime.async_queue",
    "CompiledModel": "ember.runtime.compiled_model",
    "InferRequest": "ember.runtime.compiled_model",
    "InferResult": "ember.runtime.compiled_model",
    "Core": "ember.runtime.core",
    "DeviceModel": "ember.contract.device",
    "Model": "ember.model.model",
    "Port": "ember.model.port",
    "compile_model": "ember.runtime.shortcuts",
    "get_version": "ember.runtime.versions",
    "cached_model_path": "ember.store.models",
    "clear_model_cache": "ember.store.models",
    "get_dir": "ember.store.models",
    "list_cached_models": "ember.store.models",
    "save_model": "ember.store.model_io",  # OpenVINO's (model, path) or the store's (name, model)
    "serialize": "ember.store.model_io",
    "set_dir": "ember.store.models",
    "set_model_cache": "ember.store.models",
    "Tensor": "ember.runtime.tensor",
    "Dimension": "ember.types",
    "PartialShape": "ember.types",
    "Shape": "ember.types",
    "Type": "ember.types",
    "Version": "ember.runtime.versions",
    # OpenVINO's model preparation: layouts, graph nodes, runtime-info values
    "Layout": "ember.model.layout",
    "Node": "ember.model.graph",
    "Input": "ember.model.graph",
    "Output": "ember.model.graph",
    "OVAny": "ember.model.ovany",
    # pluggy is only needed by plugins, imported when their device is first named
    "hookimpl": "ember.contract.hookspecs",
}
_SUBMODULES = ("errors", "properties", "preprocess", "layout_helpers", "opset", "opset10",
               "opset11", "opset12", "opset13", "utils")

if TYPE_CHECKING:
    from ember import (
        errors,
        layout_helpers,
        opset,
        opset10,
        opset11,
        opset12,
        opset13,
        preprocess,
        properties,
        utils,
    )
    from ember.contract.device import DeviceModel
    from ember.contract.hookspecs import hookimpl
    from ember.model.graph import Input, Node, Output
    from ember.model.layout import Layout
    from ember.model.model import Model
    from ember.model.ovany import OVAny
    from ember.model.port import Port
    from ember.runtime.async_queue import AsyncInferQueue
    from ember.runtime.compiled_model import CompiledModel, InferRequest, InferResult
    from ember.runtime.core import Core
    from ember.runtime.shortcuts import compile_model
    from ember.runtime.tensor import Tensor
    from ember.runtime.versions import Version, get_version
    from ember.store.model_io import save_model, serialize
    from ember.store.models import (
        cached_model_path,
        clear_model_cache,
        get_dir,
        list_cached_models,
        set_dir,
        set_model_cache,
    )
    from ember.types import Dimension, PartialShape, Shape, Type


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"ember.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ember' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "AsyncInferQueue",
    "CompiledModel",
    "Core",
    "DeviceModel",
    "Dimension",
    "InferRequest",
    "InferResult",
    "Input",
    "Layout",
    "Model",
    "Node",
    "OVAny",
    "Output",
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
    "get_version",
    "hookimpl",
    "layout_helpers",
    "list_cached_models",
    "opset",
    "opset10",
    "opset11",
    "opset12",
    "opset13",
    "preprocess",
    "properties",
    "save_model",
    "serialize",
    "set_dir",
    "set_model_cache",
    "utils",
]
