"""The API a device plugin may use: the one module a plugin imports besides ``ember``'s
application API (``ember.Core``, ``ember.properties``, ...).

Everything named in ``__all__`` is promised for :data:`CONTRACT_VERSION`; every other module of
``ember`` is internal and may change in any release. Names resolve on first use (PEP 562), so a
plugin importing this module pays only for what it touches.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

_LAZY = {
    "CONTRACT_VERSION": "ember.hookspecs",
    "hookimpl": "ember.hookspecs",
    "DeviceModel": "ember.device",
    "DeviceDescription": "ember.device",
    "split_device_name": "ember.device",
    "Model": "ember.model",
    "DeferredModel": "ember.model",
    "Port": "ember.model",
    "Dim": "ember.model",
    "numeric_dtype": "ember.model",
    "KernelCache": "ember.cache.kernel_cache",
    "CacheKey": "ember.cache.key",
    "EmberError": "ember.errors",
    "BackendCompileError": "ember.errors",
    "BlobFormatError": "ember.errors",
    "InferenceInputError": "ember.errors",
    "InvalidModelError": "ember.errors",
    "NotSupportedError": "ember.errors",
    "PluginError": "ember.errors",
    "PropertyValueError": "ember.errors",
    "UnsupportedOperatorError": "ember.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ember.plugin' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = sorted(_LAZY)
