"""The declared plugin API (``ember.plugin``): what it promises, that it stays lazy, and that the
first-party plugins and ember-devtools import nothing else from Ember.

Every directory ``plugins/*/src`` is walked, so a plugin added to the repository is held to the
same rule without editing this test.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ember
import ember.plugin

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCES = sorted(ROOT.glob("plugins/*/src"))
TOOL_SOURCES = [ROOT / "tools" / "src"]

#: What ``ember.plugin`` promises, per contract version: a name may be added without a new
#: version; removing one, or changing its meaning, needs a new CONTRACT_VERSION (and a new row).
PROMISED = {
    1: {
        "CONTRACT_VERSION", "hookimpl", "DeviceModel", "DeviceDescription", "split_device_name",
        "Model", "DeferredModel", "Port", "Dim", "numeric_dtype",
        "Frame", "read_frame", "write_frame", "safe_json", "hexdigest",
        "decrypt_section", "ports_to_json", "ports_from_json",
        "host_cpu_brand", "host_instruction_sets",
        "KernelCache", "CacheKey",
        "window_geometry", "pooled_sizes", "batchnorm_into_conv", "reference_outputs",
        "onnx_graph", "OnnxGraph", "OnnxNode",
        "import_installed",
        "EmberError", "BackendCompileError", "BlobFormatError", "InferenceInputError",
        "InvalidModelError", "NotSupportedError", "PluginError", "PropertyValueError",
        "UnknownDeviceError", "UnsupportedOperatorError",
    },
}


def test_the_promise_is_all_of_it_and_is_tied_to_the_contract_version():
    assert set(ember.plugin.__all__) == PROMISED[ember.plugin.CONTRACT_VERSION]
    for name in ember.plugin.__all__:
        value = getattr(ember.plugin, name)
        if name != "CONTRACT_VERSION":
            assert (getattr(value, "__doc__", None) or "").strip(), f"{name} has no docstring"
    with pytest.raises(AttributeError, match="no attribute 'blob'"):
        ember.plugin.blob  # noqa: B018 (an internal module is not reachable from here)


def _imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) for each Ember import in a file (name None: ``import module``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    return [entry for entry in found if entry[1].split(".")[0] == "ember"]


def _offences(sources: list[Path], modules: tuple[str, ...]) -> list[str]:
    application = {*ember.__all__, "errors", "properties"} - {"errors"}  # errors: ember.plugin's
    wrong = []
    for source in sources:
        for path in sorted(source.rglob("*.py")):
            for line, module, name in _imports(path):
                allowed = (module in modules or module.startswith(tuple(m + "." for m in modules
                                                                            if m != "ember")))
                if module == "ember" and name is not None:
                    allowed = name in application
                if not allowed:
                    what = f"from {module} import {name}" if name else f"import {module}"
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    return wrong


def test_first_party_plugins_import_only_ember_and_ember_plugin():
    assert len(PLUGIN_SOURCES) >= 3
    assert _offences(PLUGIN_SOURCES, ("ember", "ember.plugin")) == []


def test_devtools_import_only_ember_ember_plugin_and_the_test_kit():
    assert _offences(TOOL_SOURCES, ("ember", "ember.plugin", "ember.testing")) == []


def test_the_walk_catches_a_reach_in(tmp_path):
    (tmp_path / "bad.py").write_text("import ember.store.blob\nfrom ember import checksum\n"
                                     "from ember.model.model import Port\nfrom ember import Core\n"
                                     "from ember.plugin import Port as P\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        offences = _offences([tmp_path], ("ember", "ember.plugin"))
    finally:
        ROOT = saved
    assert offences == ["bad.py:1: import ember.store.blob", "bad.py:2: from ember import checksum",
                        "bad.py:3: from ember.model.model import Port"]


def test_importing_the_facade_imports_nothing_it_names():
    code = ("import json, sys, ember; before = set(sys.modules); import ember.plugin; "
            "print(json.dumps(sorted(set(sys.modules) - before)))")
    added = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                      capture_output=True, text=True).stdout)
    assert [m for m in added if m != "__future__"] == ["ember.plugin"]
