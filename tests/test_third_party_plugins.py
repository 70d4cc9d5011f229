"""A device plugin from another distribution appears with no change to the core, and a broken one
is reported by name without hiding the others. The packages are built and installed by real pip."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ember.testing.subprocesses import pythonpath

ECHO_PLUGIN = '''
import numpy as np
from ember import hookimpl

class Echo:
    def __init__(self, model):
        self.inputs, self.outputs = model.inputs, model.outputs
    def infer(self, inputs):
        return [np.asarray(inputs[0]) * 2]

@hookimpl
def list_devices():
    return ["ECHO"]

@hookimpl
def supported_metrics(device_name):
    if device_name != "ECHO":
        return None
    return {"FULL_DEVICE_NAME": "doubling echo", "DEVICE_ARCHITECTURE": "any",
            "OPTIMIZATION_CAPABILITIES": ["FP32"], "SUPPORTED_CONFIG_KEYS": {}}

@hookimpl
def compile(model, device_name):
    return Echo(model) if device_name == "ECHO" else None
'''


def make_distribution(root: Path, name: str, module: str, code: str, kind: str,
                      requires: str = "ember") -> Path:
    project = root / name
    (project / module).mkdir(parents=True)
    (project / module / "__init__.py").write_text("")
    (project / module / "plugin.py").write_text(code)
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "1.2.3"
        dependencies = ["{requires}"]
        [project.entry-points."ember.devices"]
        {kind} = "{module}.plugin"
        [tool.setuptools]
        packages = ["{module}"]
    """))
    return project


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("third_party")
    echo = make_distribution(root, "ember-echo", "ember_echo", ECHO_PLUGIN, "ECHO")
    broken = make_distribution(root, "ember-broken", "ember_broken",
                               "import a_module_that_does_not_exist\n", "BROKEN")
    stale = make_distribution(root, "ember-stale", "ember_stale", ECHO_PLUGIN.replace(
        '"ECHO"', '"STALE"'), "STALE", requires="ember<0.1")
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(echo), str(broken), str(stale)],
        check=True,
    )
    return target


def run_in(site: Path, code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath(site)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout)


PROBE = """
import json, numpy as np, ember
from ember.testing.toy import identity_model_bytes
core = ember.Core()
compiled = core.compile_model(identity_model_bytes(), "ECHO")
print(json.dumps({
    "devices": core.available_devices,
    "failures": [[f.name, f.distribution, f.stage, f.error] for f in core.plugin_failures],
    "versions": core.get_versions("ECHO"),
    "result": compiled([np.array([1.5], np.float32)])[0].tolist(),
}))
"""


def test_installed_plugin_adds_its_device(site):
    report = run_in(site, PROBE)
    assert "ECHO" in report["devices"] and "TEMPLATE" in report["devices"]
    assert report["versions"] == {"ECHO": "ember-echo 1.2.3"}
    assert report["result"] == [3.0]


def test_broken_plugin_is_reported_and_hides_nothing(site):
    failures = {f[0]: f for f in run_in(site, PROBE)["failures"]}
    name, distribution, stage, error = failures["BROKEN"]
    assert (name, distribution, stage) == ("BROKEN", "ember-broken", "import")
    assert "a_module_that_does_not_exist" in error


def test_plugin_made_for_another_ember_is_refused_with_what_to_do(site):
    report = run_in(site, PROBE)
    _, distribution, stage, error = {f[0]: f for f in report["failures"]}["STALE"]
    assert (distribution, stage) == ("ember-stale", "compatibility")
    assert "requires ember<0.1" in error and "this is ember 0.1.0" in error
    assert "STALE" not in report["devices"]
