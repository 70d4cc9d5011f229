"""Which Ember module stands behind each of OpenVINO's module names.

``openvino`` and ``openvino.runtime`` (OpenVINO's older spelling of the same API) are Ember's
top-level module; ``openvino.X.Y`` is ``ember.X.Y`` for the module names OpenVINO's Python API has
(``openvino.properties.hint`` is ``ember.properties.hint``, ``openvino.preprocess`` is
``ember.preprocess``), so a module Ember adds under OpenVINO's name is found without a change
here. A name outside OpenVINO's API never reaches into Ember's own modules (``openvino.cache`` is
not ``ember.cache``).
"""

from __future__ import annotations

#: The top-level modules of OpenVINO's Python API (``openvino.<name>``; their submodules follow).
OPENVINO_MODULES: frozenset[str] = frozenset({
    "properties", "preprocess", "utils", "helpers", "op", "passes", "experimental",
    "frontend", "exceptions", "tools", "torch", "package_utils", "layout_helpers",
    *(f"opset{n}" for n in range(1, 18)),
})

#: OpenVINO's names whose Ember module is not ``ember.`` + the same path.
RENAMED: dict[str, str] = {
    "openvino": "ember",
}

#: OpenVINO's older prefix, the same API as ``openvino``.
RUNTIME = "openvino.runtime"

#: Where to read what Ember covers of OpenVINO's API, for error messages.
DOCS = "docs/openvino-compat.md"


def is_openvino(fullname: str) -> bool:
    """Whether an import name belongs to OpenVINO's namespace (the runner answers all of it)."""
    return fullname == "openvino" or fullname.startswith("openvino.")


def canonical(fullname: str) -> str:
    """The name without OpenVINO's older ``runtime`` level: ``openvino.runtime.properties`` is
    ``openvino.properties``, and ``openvino.runtime`` is ``openvino``."""
    if fullname == RUNTIME:
        return "openvino"
    if fullname.startswith(RUNTIME + "."):
        return "openvino." + fullname[len(RUNTIME) + 1:]
    return fullname


def ember_module(fullname: str) -> str | None:
    """The Ember module behind an OpenVINO module name, or None when the name is outside the
    modules of OpenVINO's API."""
    name = canonical(fullname)
    if name in RENAMED:
        return RENAMED[name]
    top = name.split(".")[1]
    if top not in OPENVINO_MODULES:
        return None
    return "ember." + name[len("openvino."):]


def not_implemented(name: str) -> str:
    """The message for an OpenVINO name Ember does not implement."""
    return (f"Ember does not implement {name} (this program runs on Ember through "
            f"ember.compat.openvino; {DOCS} lists what Ember implements of OpenVINO's API)")
