"""The integration matrix: the conformance suite over every installed device x the model zoo x
every cache mode (off, cold, warm, encrypted, weightless), as a backend's CI runs it. A failing
cell's id and message name the device, the model and the mode: test_zoo[GPU.0-ppocr-rec-warm].

Devices are discovered when the tests are collected: GPU.N appear when an OpenCL platform (PoCL)
is installed. Below, a deliberately broken plugin is run through ``pytest --ember-device`` and must
fail with messages that say what to fix.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import ember
from ember.contract.device import one_name_per_device, split_device_name
from ember.testing.subprocesses import pythonpath
from ember.testing.suite import DeviceConformance
from ember.testing.zoo import model_zoo

# each device once: OPENVINO.CPU is the device OPENVINO is
DEVICES = one_name_per_device(ember.Core(), ember.Core().available_devices)

#: The real models each kind of device runs (compiles, never declines) in every cell of the matrix,
#: within the zoo's tolerance of onnxruntime. This is the one list to extend when a device learns
#: a model.
REAL_MODELS = {
    "CPU": ("ppocr-cls", "ppocr-rec", "ppocr-det", "silero-vad", "silero-vad-openvino"),
    "TEMPLATE": ("ppocr-cls", "ppocr-rec", "ppocr-det", "silero-vad", "silero-vad-openvino"),
    "GPU": ("ppocr-cls", "ppocr-rec", "ppocr-det", "silero-vad", "silero-vad-openvino"),
    "OPENVINO": ("ppocr-cls", "ppocr-rec", "ppocr-det", "silero-vad", "silero-vad-openvino"),
}


class TestConformanceMatrix(DeviceConformance):
    @pytest.fixture(params=DEVICES)
    def device_name(self, request):
        return request.param

    @pytest.fixture
    def required_models(self, device_name):
        return frozenset(REAL_MODELS.get(split_device_name(device_name)[0], ()))


def test_every_real_model_is_in_the_zoo():
    """The list above names zoo models, and the zoo has every real model (make install puts the
    rapidocr and silero-vad wheels in), so that no device's list is silently shorter."""
    real = {m.name for m in model_zoo() if "real" in m.tags}
    assert real == {"ppocr-cls", "ppocr-rec", "ppocr-det", "silero-vad", "silero-vad-openvino"}
    assert all(set(models) <= real for models in REAL_MODELS.values())


BROKEN_PLUGIN = '''
"""One mistake of each kind: no EMBER_CONTRACT_VERSION, answers for other devices, an unknown
capability, no CACHING_PROPERTIES, a foreign exception type, and wrong results."""
import numpy as np
from ember import hookimpl


class OffByAHalf:
    def __init__(self, model):
        from onnx.reference import ReferenceEvaluator

        self.inputs, self.outputs = model.inputs, model.outputs
        self.evaluator = ReferenceEvaluator(model.proto)

    def infer(self, inputs):
        feeds = {port.name: array for port, array in zip(self.inputs, inputs)}
        return [out + np.asarray(0.5, out.dtype) for out in self.evaluator.run(None, feeds)]


@hookimpl
def list_devices():
    return ["BROKEN"]


@hookimpl
def supported_metrics(device_name):
    return {"FULL_DEVICE_NAME": "a broken device", "DEVICE_ARCHITECTURE": "any",
            "OPTIMIZATION_CAPABILITIES": ["FP32", "TURBO"], "SUPPORTED_CONFIG_KEYS": {}}


@hookimpl
def compile(model, device_name):
    if device_name != "BROKEN":
        return None
    if any(node.domain not in ("", "ai.onnx") for node in model.proto.graph.node):
        raise RuntimeError("cannot run that")
    return OffByAHalf(model)
'''

#: What the suite must say about each mistake.
EXPECTED_MESSAGES = [
    "declare the contract it was written for: EMBER_CONTRACT_VERSION = 1",
    "it requires ember, with no upper bound",
    "supported_metrics(device_name='TEMPLATE') answered with a dict; it must return None",
    "OPTIMIZATION_CAPABILITIES lists 'TURBO', which is not a known capability",
    "report CACHING_PROPERTIES, even when it is empty",
    "differs from onnx.reference",
    "raised RuntimeError: cannot run that, which is not an ember.errors type; raise "
    "ember.errors.UnsupportedOperatorError",
    "a node reading an undefined value raised nothing; expected ember.errors.InvalidModelError",
]


def install_plugin(tmp_path, name, code):
    """A one-module plugin distribution ``ember-<name>``, installed into its own directory."""
    project = tmp_path / f"ember-{name}"
    (project / f"ember_{name}").mkdir(parents=True)
    (project / f"ember_{name}" / "__init__.py").write_text("")
    (project / f"ember_{name}" / "plugin.py").write_text(code)
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "ember-{name}"
        version = "0.0.1"
        dependencies = ["ember"]
        [project.entry-points."ember.devices"]
        {name.upper()} = "ember_{name}.plugin"
        [tool.setuptools]
        packages = ["ember_{name}"]
    """))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(project)], check=True)
    return site


def test_a_broken_plugin_fails_with_what_to_fix(tmp_path):
    site = install_plugin(tmp_path, "broken", BROKEN_PLUGIN)
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--ember-device", "BROKEN",
         "-q", "-k", "not silero and not ppocr"],
        cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": pythonpath(site)})
    print(f"pytest --ember-device BROKEN: {time.perf_counter() - start:.1f} s")
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    missing = [m for m in EXPECTED_MESSAGES if m not in output]
    assert not missing, f"the suite did not say {missing}:\n{output[-4000:]}"
    summary = run.stdout.strip().splitlines()[-1]
    assert " failed" in summary and " passed" in summary, summary  # what is right still passes


ALIASING_PLUGIN = '''
"""Declines the suite's outputs probe (Reshape) and returns a view of its input as the output."""
from ember import hookimpl
from ember.errors import UnsupportedOperatorError

EMBER_CONTRACT_VERSION = 1


class FirstColumns:
    def __init__(self, model):
        self.inputs, self.outputs = model.inputs, model.outputs
        self.width = model.outputs[0].shape[-1]

    def infer(self, inputs):
        return [inputs[0][..., : self.width]]


@hookimpl
def list_devices():
    return ["ALIASING"]


@hookimpl
def supported_metrics(device_name):
    if device_name == "ALIASING":
        return {"FULL_DEVICE_NAME": "aliasing", "DEVICE_ARCHITECTURE": "any",
                "OPTIMIZATION_CAPABILITIES": ["FP32"], "SUPPORTED_CONFIG_KEYS": {},
                "CACHING_PROPERTIES": []}


@hookimpl
def compile(model, device_name):
    if device_name != "ALIASING":
        return None
    for node in model.proto.graph.node:
        if node.op_type == "Reshape":
            raise UnsupportedOperatorError(device_name, node.op_type, node.name, node.domain)
    return FirstColumns(model)
'''


def test_declining_the_outputs_probe_does_not_pass_the_outputs_check(tmp_path):
    """A device that declines the probe model is checked on a zoo model it compiles instead."""
    site = install_plugin(tmp_path, "aliasing", ALIASING_PLUGIN)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--ember-device", "ALIASING",
         "-q", "-k", "outputs_are_the_callers_own"],
        cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": pythonpath(site)})
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "output 'probabilities' is a view of input 'x': copy it" in output, output[-4000:]
    assert "outputs probe: device ALIASING does not support operator Reshape" in output, output


def test_every_check_of_the_suite_is_documented():
    """docs/testing-your-plugin.md has a row for each test of the suite (datasette's meta-test)."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "testing-your-plugin.md").read_text()
    checks = [name for name in dir(DeviceConformance) if name.startswith("test_")]
    assert len(checks) >= 15
    missing = [name for name in checks if f"| `{name}" not in docs]
    assert not missing, f"document these checks in docs/testing-your-plugin.md: {missing}"
