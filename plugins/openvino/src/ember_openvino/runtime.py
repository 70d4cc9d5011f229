"""The one place that loads OpenVINO, on first use: never when the plugin is loaded.

The device drives OpenVINO through its C++ bindings alone, the extension module
``openvino._pyopenvino`` (``Core``, ``Tensor``, ``FrontEndManager``...), loaded from its file
without running the ``openvino`` package's ``__init__``: that one imports dozens of Python
modules, the model converter (``openvino.tools.ovc``) and its telemetry among them, which cost a
warm start more than the rest of its work and which the device never calls. The extension is
registered under its own name, so a later ``import openvino`` in the program uses it as it is
(the classes are the same objects either way).

A program that creates an ``ember.Core`` and runs its models on another device pays nothing;
a start on this device pays for the extension once. One ``Core`` serves the whole process, as
OpenVINO recommends: it holds the loaded device plugins.
"""

from __future__ import annotations

import sys
from functools import cache
from types import ModuleType
from typing import Any

_EXTENSION = "openvino._pyopenvino"


@cache
def engine() -> ModuleType:
    """OpenVINO's bindings module, ``openvino._pyopenvino``.

    Taken from the installed package when it is imported already, or when the program's
    ``openvino`` is Ember's (``python -m ember.compat.openvino``: the real package is then
    imported aside); else loaded from its file alone (:func:`_load_extension`).
    """
    if _compat_installed():
        return _bindings_of_package()
    loaded = sys.modules.get(_EXTENSION)
    if loaded is not None:
        return loaded
    return _load_extension() or _bindings_of_package()


def import_installed() -> ModuleType:
    """The whole installed ``openvino`` package (``import openvino``, or the real package beside
    Ember's compatibility modules)."""
    from ember.plugin import import_installed as installed_package

    return installed_package()


def _bindings_of_package() -> ModuleType:
    bindings: ModuleType = import_installed()._pyopenvino
    return bindings


@cache
def core() -> Any:
    """The process's OpenVINO ``Core`` (the bindings' own class)."""
    return engine().Core()


@cache
def devices() -> tuple[str, ...]:
    """OpenVINO's devices here, as OpenVINO names them (``"CPU"``, ``"GPU.0"``, ``"NPU"``).

    Asking OpenVINO loads every one of its device plugins (tens of milliseconds, more with a GPU
    driver to probe), which a start on its CPU must not pay. On Linux its GPU and NPU plugins
    need a kernel device node (``/dev/dri/renderD*``, ``/dev/accel/accel*``): without one only
    its CPU can be there, and OpenVINO is not asked. Elsewhere, or with such a node, OpenVINO's
    own ``available_devices`` is the answer.
    """
    if sys.platform.startswith("linux") and not _device_nodes():
        return ("CPU",)
    return tuple(str(name) for name in core().available_devices)


def _device_nodes() -> bool:
    import os

    for directory, prefix in (("/dev/dri", "renderD"), ("/dev/accel", "accel")):
        try:
            if any(name.startswith(prefix) for name in os.listdir(directory)):
                return True
        except OSError:
            continue
    return False


def _compat_installed() -> bool:
    """Whether the program's ``openvino`` imports give Ember's modules (the finder's module is
    only looked at when something imported it: otherwise it cannot be in place)."""
    finder = sys.modules.get("ember.compat.openvino.finder")
    return finder is not None and bool(finder.installed())


def _load_extension() -> ModuleType | None:
    """``openvino._pyopenvino`` loaded from its file, the package's ``__init__`` not run; None
    where that cannot be done (no such file; Windows, where the package's ``__init__`` must
    first add its DLL directory), and the caller imports the package instead."""
    import importlib.machinery
    import importlib.util
    import os

    if sys.platform == "win32":
        return None
    spec = importlib.util.find_spec("openvino")
    if spec is None or not spec.submodule_search_locations:
        return None
    for directory in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(directory, "_pyopenvino" + suffix)
            if os.path.isfile(path):
                break
        else:
            continue
        break
    else:
        return None
    extension = importlib.util.spec_from_file_location(_EXTENSION, path)
    if extension is None or extension.loader is None:
        return None
    module = importlib.util.module_from_spec(extension)  # runs the bindings' initialisation
    extension.loader.exec_module(module)
    sys.modules[_EXTENSION] = module
    return module


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
