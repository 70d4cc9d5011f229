"""The one place that imports OpenVINO, on first use: never when the plugin is loaded.

``import openvino`` loads the runtime's shared libraries (tens of milliseconds): a program that
creates an ``ember.Core`` and runs its models on another device must not pay for it, and a warm
start on this device pays for it once, inside ``import_model``. One ``openvino.Core`` serves the
whole process, as OpenVINO recommends: it holds the loaded device plugins.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any


@cache
def openvino() -> ModuleType:
    """The installed OpenVINO package, also inside ``python -m ember.compat.openvino``, where the
    program's ``openvino`` is Ember's own API and this device still needs the real engine."""
    from ember.plugin import import_installed

    return import_installed()


@cache
def core() -> Any:
    """The process's ``openvino.Core``."""
    return openvino().Core()


@cache
def version() -> str:
    """The installed OpenVINO's version, importing nothing: from the name of its ``.dist-info``
    directory beside the package (``importlib.metadata`` would cost a warm start more than the
    rest of the plugin's own work), else from its metadata."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("openvino")
    if spec is None or not spec.submodule_search_locations:
        return "absent"
    site = os.path.dirname(next(iter(spec.submodule_search_locations)))
    try:
        names = os.listdir(site)
    except OSError:
        names = []
    for name in names:
        if name.startswith("openvino-") and name.endswith(".dist-info"):
            return name[len("openvino-"):-len(".dist-info")]
    import importlib.metadata

    try:
        return importlib.metadata.version("openvino")
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def installed() -> bool:
    """Whether the ``openvino`` package can be imported (looked up without importing it)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None
