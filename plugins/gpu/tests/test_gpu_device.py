"""The GPU device end to end on real OpenCL (PoCL's CPU device in CI), against onnx.reference."""

import subprocess
import sys
import threading

import numpy as np
import pytest
from onnx import TensorProto, helper

import ember
import ember_gpu
from ember.errors import InvalidModelError, UnsupportedOperatorError
from ember.testing import cnn, mlp, random_inputs, reference_outputs
from ember_gpu import opencl


def test_transformations_fold_batchnorm_and_fuse_elementwise_chains(core, gpu_device):
    def kernels(config):
        compiled = core.compile_model(cnn().SerializeToString(), gpu_device, config)
        model = core.read_model(cnn().SerializeToString())
        compiled(random_inputs(model.inputs))
        (executable,) = compiled.device_model.specialisations
        return executable.plan.source

    fused = kernels({})
    assert "BatchNormalization" not in fused  # folded into the Conv's weights
    assert "// Conv 'depthwise' + Sigmoid 'gate' + Mul 'gated'" in fused
    reference_graph = kernels({"DISABLE_TRANSFORMATIONS": True})
    assert "// BatchNormalization 'bn1'\n" in reference_graph
    assert fused.count("__kernel") < reference_graph.count("__kernel")


def test_dynamic_dimensions_specialise_per_input_shape(core, gpu_device):
    proto = mlp()
    compiled = core.compile_model(proto.SerializeToString(), gpu_device)
    assert compiled.device_model.specialisations == []  # the batch is not known yet
    model = core.read_model(proto.SerializeToString())
    for batch in (1, 4, 1):
        inputs = random_inputs(model.inputs, batch=batch)
        (got,) = compiled(inputs).to_tuple()
        np.testing.assert_allclose(got, reference_outputs(proto, inputs)[0], rtol=1e-5,
                                   atol=1e-5)
    assert len(compiled.device_model.specialisations) == 2


def test_static_model_is_built_in_compile(core, gpu_device):
    graph = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["y"], name="gate")], "static",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    compiled = core.compile_model(helper.make_model(graph).SerializeToString(), gpu_device)
    assert len(compiled.device_model.specialisations) == 1
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(compiled(x)[0], 1 / (1 + np.exp(-x)), rtol=1e-6)


def test_concurrent_infer_requests(core, gpu_device):
    proto = cnn()
    compiled = core.compile_model(proto.SerializeToString(), gpu_device)
    model = core.read_model(proto.SerializeToString())
    inputs = [random_inputs(model.inputs, seed=i, batch=2) for i in range(4)]
    expected = [compiled(x)[0] for x in inputs]
    results: dict[int, np.ndarray] = {}

    def run(i):
        request = compiled.create_infer_request()
        for _ in range(5):
            results[i] = request.infer(inputs[i])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        assert results[i].tobytes() == expected[i].tobytes()


def test_unsupported_operator_names_the_node(core, gpu_device):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="ok"),
         helper.make_node("Det", ["r"], ["y"], name="determinant")],
        "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
    )
    with pytest.raises(UnsupportedOperatorError) as info:
        core.compile_model(helper.make_model(graph).SerializeToString(), gpu_device)
    assert (info.value.op_type, info.value.node_name, info.value.device_name) == (
        "Det", "determinant", gpu_device)


def test_invalid_graph_is_reported(core, gpu_device):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["nowhere"], ["y"])], "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    with pytest.raises(InvalidModelError, match="nowhere"):
        core.compile_model(helper.make_model(graph).SerializeToString(), gpu_device)


def test_bad_config_values_are_refused(core, gpu_device):
    with pytest.raises(ember.errors.PropertyValueError, match="f32"):
        core.compile_model(mlp().SerializeToString(), gpu_device,
                           {"INFERENCE_PRECISION_HINT": "f16"})
    with pytest.raises(ember.errors.PropertyValueError, match="DISABLE_TRANSFORMATIONS"):
        core.compile_model(mlp().SerializeToString(), gpu_device,
                           {"DISABLE_TRANSFORMATIONS": "sometimes"})  # "YES"/"NO" are accepted


def test_properties_tell_the_truth(core, gpu_device):
    device = opencl.devices()[0]
    full_name = core.get_property(gpu_device, "FULL_DEVICE_NAME")
    assert full_name.startswith(device.name) and device.platform_name in full_name
    assert f"OpenCL {device.kind} device" in full_name  # "CPU" on PoCL: no pretending
    assert core.get_property(gpu_device, "DEVICE_ARCHITECTURE") == (
        f"{device.vendor}/{device.name}/{device.driver_version}")
    assert core.get_property(gpu_device, "OPTIMIZATION_CAPABILITIES") == ["FP32"]
    assert core.get_property(gpu_device, "IMPORT_EXPORT_SUPPORT") is False
    assert core.get_property(gpu_device, "CACHING_PROPERTIES") == [
        "DEVICE_ARCHITECTURE", "DISABLE_TRANSFORMATIONS"]
    keys = core.get_property(gpu_device, "SUPPORTED_CONFIG_KEYS")
    assert {"DISABLE_TRANSFORMATIONS", "INFERENCE_PRECISION_HINT", "CACHE_DIR"} <= set(keys)
    assert core.get_property(gpu_device, "OPENCL_DEVICE_TYPE") == device.kind


def test_plugin_is_registered_through_its_entry_point(core):
    core.get_property("GPU", "FULL_DEVICE_NAME")  # plugins load when their kind is named
    (info,) = [p for p in core.loaded_plugins if p.name == "GPU"]
    assert info.distribution == "ember-gpu" and info.version == ember_gpu.__version__


def test_gpu_devices_come_first():
    # The order itself, on kinds as a machine with several platforms lists them: the machine
    # running this test may have a single OpenCL device.
    kinds = ["CPU", "GPU", "OTHER", "ACCELERATOR", "GPU", "CPU"]
    assert [kinds[i] for i in opencl.device_order(kinds)] == [
        "GPU", "GPU", "ACCELERATOR", "CPU", "OTHER", "CPU"]
    assert opencl.device_order(kinds) == [1, 4, 3, 0, 2, 5]  # stable within a kind
    listed = [d.kind for d in opencl.devices()]
    assert listed == [listed[i] for i in opencl.device_order(listed)]


def test_listed_devices_are_indexed_and_bare_gpu_means_the_first(core):
    gpus = [d for d in core.available_devices if d.startswith("GPU")]
    assert gpus == [f"GPU.{i}" for i in range(len(opencl.devices()))]
    compiled = core.compile_model(mlp().SerializeToString(), "GPU")
    assert compiled.get_property("EXECUTION_DEVICES") == ["GPU.0"]


def test_importing_the_plugin_imports_no_opencl_and_creates_no_context():
    code = ("import sys, ember, ember_gpu, ember_gpu.plugin, ember_gpu.persistent_cache;"
            " ember.Core();"
            " print('pyopencl' in sys.modules, 'onnx' in sys.modules,"
            " ember_gpu.opencl._runtimes)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "{}"]


def test_without_opencl_gpu_is_not_listed_and_the_reason_says_what_to_install():
    # An ICD loader that finds no driver: point it at an empty vendors directory.
    code = ("import ember, ember.testing; core = ember.Core();"
            " print([d for d in core.available_devices if d.startswith('GPU')]);\n"
            "try:\n    core.compile_model(ember.testing.mlp().SerializeToString(), 'GPU')\n"
            "except ember.errors.UnknownDeviceError as error:\n    print(error)")
    env = {"OCL_ICD_VENDORS": "/nonexistent", "OPENCL_VENDOR_PATH": "/nonexistent",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    listed, error = out.stdout.splitlines()
    assert listed == "[]"
    # compiling for it says why, and what to install (the plugin's explain_absence hook)
    assert "pip install pocl-binary-distribution" in error and "GPU" in error
