"""The CPU device on real onnxruntime."""

import subprocess
import sys

import numpy as np
import onnx
import pytest

import ember
from ember.testing import cnn, mlp, ppocr_cls_path, random_inputs, reference_outputs


@pytest.fixture(scope="module")
def core():
    return ember.Core()


def test_cpu_is_listed_with_its_brand(core):
    assert "CPU" in core.available_devices
    assert core.get_property("CPU", "FULL_DEVICE_NAME")
    assert "onnxruntime" in core.get_property("CPU", "DEVICE_ARCHITECTURE")


@pytest.mark.parametrize("build", [mlp, cnn])
def test_matches_onnx_reference(core, build):
    proto = build()
    model = core.read_model(proto.SerializeToString())
    inputs = random_inputs(model.inputs)
    got = core.compile_model(model, "CPU")(inputs).to_tuple()
    for a, b in zip(got, reference_outputs(proto, inputs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_ppocr_classifier_matches_onnx_reference(core):
    inputs = {"x": np.random.default_rng(1).random((2, 3, 48, 192), dtype=np.float32)}
    got = core.compile_model(ppocr_cls_path(), "CPU")(inputs)[0]
    (want,) = reference_outputs(onnx.load(str(ppocr_cls_path())), inputs)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_thread_count_is_validated(core):
    with pytest.raises(ember.errors.PropertyValueError, match="INFERENCE_NUM_THREADS"):
        core.compile_model(mlp().SerializeToString(), "CPU", {"INFERENCE_NUM_THREADS": -1})


def test_loading_the_plugin_does_not_import_onnxruntime():
    code = ("import sys, ember; ember.Core().available_devices; "
            "print('onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
