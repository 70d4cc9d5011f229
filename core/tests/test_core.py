"""ember.Core's API: devices, properties, reading models, compile/export/import, inference."""

import io

import numpy as np
import pytest

import ember
from ember.errors import (
    BackendCompileError,
    BlobFormatError,
    InferenceInputError,
    InvalidModelError,
    ModelNotFoundError,
    NotSupportedError,
    PropertyValueError,
    UnknownDeviceError,
    UnknownPropertyError,
    UnsupportedOperatorError,
)
from ember.testing import mlp
from ember.testing.toy import ToyPlugin, identity_model_bytes


@pytest.fixture
def toy():
    return ToyPlugin()


@pytest.fixture
def core(toy):
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(toy, "toy")
    return core


# -- devices and properties -----------------------------------------------------------------------


def test_device_properties_follow_openvino_keys(core):
    assert core.get_property("TOY", "OPTIMIZATION_CAPABILITIES") == ["EXPORT_IMPORT", "FP32"]
    assert core.get_property("TOY", "IMPORT_EXPORT_SUPPORT") is True
    assert core.get_property("TOY", "DEVICE_ARCHITECTURE") == "toy-1"
    metrics = core.get_property("TOY", "SUPPORTED_METRICS")
    assert {"IMPORT_EXPORT_SUPPORT", "FULL_DEVICE_NAME", "SUPPORTED_METRICS"} <= set(metrics)
    supported = core.get_property("TOY", "SUPPORTED_PROPERTIES")
    for key in supported:  # everything listed is answered
        core.get_property("TOY", key)
    assert {"TOY_LEVEL", "CACHE_DIR"} <= set(core.get_property("TOY", "SUPPORTED_CONFIG_KEYS"))


def test_device_without_export_says_so(toy):
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(ToyPlugin("NOEXP", 1, export=False), "noexp")
    assert core.get_property("NOEXP", "IMPORT_EXPORT_SUPPORT") is False
    compiled = core.compile_model(identity_model_bytes(), "NOEXP")
    with pytest.raises(NotSupportedError, match="EXPORT_IMPORT"):
        compiled.export_model()


def test_unknown_property_lists_the_known_ones(core):
    with pytest.raises(UnknownPropertyError, match="TOY_LEVEL"):
        core.get_property("TOY", "NO_SUCH_KEY")
    with pytest.raises(UnknownPropertyError):
        core.set_property("TOY", {"NO_SUCH_KEY": 1})
    with pytest.raises(PropertyValueError, match="read-only"):
        core.set_property("TOY", {"FULL_DEVICE_NAME": "x"})


def test_core_properties(core):
    core.set_property({"CACHE_DIR": "/tmp/somewhere"})
    assert core.get_property("CACHE_DIR") == "/tmp/somewhere"
    assert core.get_property("AVAILABLE_DEVICES") == ["TOY.0", "TOY.1"]


def test_config_precedence_call_over_device_over_global_over_default(core, toy):
    model = identity_model_bytes()
    core.compile_model(model, "TOY")
    core.set_property({"TOY_LEVEL": 2})
    core.compile_model(model, "TOY")
    core.set_property("TOY.0", {"TOY_LEVEL": 3})
    core.compile_model(model, "TOY")
    core.compile_model(model, "TOY.1")  # per-device setting does not leak to another device
    core.compile_model(model, "TOY", {"TOY_LEVEL": 4})
    assert [c["TOY_LEVEL"] for c in toy.compiled_configs] == [1, 2, 3, 2, 4]
    assert core.get_property("TOY", "TOY_LEVEL") == 3


def test_plugins_do_not_see_core_keys(core, toy):
    core.compile_model(identity_model_bytes(), "TOY", {"CACHE_DIR": ""})
    assert "CACHE_DIR" not in toy.compiled_configs[-1]


class BrokenBackend(ToyPlugin):
    """A plugin whose backend fails on a valid model, raising what its library raises."""

    @ember.hookimpl
    def compile(self, model, device_name, config):
        if not self._mine(device_name):
            return None
        if config.get("TOY_LEVEL") == 2:
            raise UnsupportedOperatorError(device_name, "Add", "n0")  # Ember's own: unchanged
        raise ValueError("the backend's graph optimiser gave up")


def test_a_backend_failure_names_the_plugin_and_the_device():
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(BrokenBackend("BROKEN", 1), "broken")
    with pytest.raises(BackendCompileError) as info:
        core.compile_model(identity_model_bytes(), "BROKEN")
    assert str(info.value) == ("BROKEN.0 (broken) could not compile the model: ValueError: the "
                               "backend's graph optimiser gave up")
    assert isinstance(info.value.__cause__, ValueError) and info.value.device == "BROKEN.0"
    with pytest.raises(UnsupportedOperatorError):
        core.compile_model(identity_model_bytes(), "BROKEN", {"TOY_LEVEL": 2})


def test_a_mistyped_device_name_gets_the_closest_one():
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(ToyPlugin("OV", 1), "ov")
    core.register_plugin(ToyPlugin("TEMPLATE", 1), "template")
    with pytest.raises(UnknownDeviceError, match=r"did you mean 'OV'\?"):
        core.compile_model(identity_model_bytes(), "ov")
    with pytest.raises(UnknownDeviceError, match=r"did you mean 'TEMPLATE\.0'\?"):
        core.compile_model(identity_model_bytes(), "TEMPALTE")


def test_unknown_device_names_what_is_installed_and_what_to_install(monkeypatch):
    core = ember.Core()
    with pytest.raises(UnknownDeviceError) as info:
        core.compile_model(identity_model_bytes(), "NPU")
    assert "TEMPLATE" in str(info.value) and "no installed plugin provides it" in str(info.value)
    with pytest.raises(UnknownDeviceError,
                       match=r"did you mean 'TEMPLATE'\? device names are upper case"):
        core.get_property("template", "FULL_DEVICE_NAME")
    with pytest.raises(UnknownDeviceError, match="no TEMPLATE with index 3"):
        core.get_property("TEMPLATE.3", "FULL_DEVICE_NAME")
    bare = ember.Core(load_installed_plugins=False)
    with pytest.raises(UnknownDeviceError, match="provided by the ember-gpu distribution"):
        bare.get_property("GPU", "FULL_DEVICE_NAME")
    monkeypatch.setenv("EMBER_DISABLE_PLUGINS", "ember-cpu")
    with pytest.raises(UnknownDeviceError, match="disabled by EMBER_DISABLE_PLUGINS"):
        ember.Core().get_property("CPU", "FULL_DEVICE_NAME")


def test_unknown_device_mentions_plugins_that_failed(core):
    class Broken:
        @ember.hookimpl
        def list_devices(self):
            raise OSError("no driver")

    core.register_plugin(Broken(), "npu-driver")
    with pytest.raises(UnknownDeviceError, match=r"npu-driver.*no driver"):
        core.get_property("NPU", "FULL_DEVICE_NAME")


# -- reading models -------------------------------------------------------------------------------


def test_read_model_from_path_and_bytes(tmp_path, core):
    path = tmp_path / "mlp.onnx"
    path.write_bytes(mlp().SerializeToString())
    from_path = core.read_model(path)
    from_bytes = core.read_model(path.read_bytes())
    assert from_path.path == path.resolve()
    assert [p.name for p in from_path.inputs] == [p.name for p in from_bytes.inputs] == ["x"]
    assert from_path.inputs[0].shape == ("batch", 16)
    assert from_path.outputs[0].dtype == np.float32


def test_missing_file_names_it(tmp_path, core):
    with pytest.raises(ModelNotFoundError, match=r"nothing\.onnx") as info:
        core.read_model(tmp_path / "nothing.onnx")
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("content", [b"", b"hello, not onnx", bytes(range(256))])
def test_not_onnx_says_which_file_and_why(tmp_path, core, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(InvalidModelError, match=r"bad\.onnx"):
        core.read_model(path)


def test_directory_is_not_a_model(tmp_path, core):
    with pytest.raises(InvalidModelError, match="directory"):
        core.read_model(tmp_path)


# -- compiling, inference, export and import ------------------------------------------------------


def test_compile_model_accepts_openvino_keywords(core):
    compiled = core.compile_model(model=identity_model_bytes(), device_name="TOY", config={})
    assert compiled.get_property("EXECUTION_DEVICES") == ["TOY.0"]
    assert compiled.get_property("LOADED_FROM_CACHE") is False


def test_results_by_name_index_and_port(core):
    compiled = core.compile_model(identity_model_bytes(), "TOY")
    x = np.arange(3, dtype=np.float32)
    for inputs in ([x], {"x": x}, {0: x}, {compiled.inputs[0]: x}, x):
        result = compiled(inputs)
        np.testing.assert_array_equal(result["y"], x + 1)
        np.testing.assert_array_equal(result[0], x + 1)
        np.testing.assert_array_equal(result[compiled.outputs[0]], x + 1)
    assert list(result) == ["y"] and len(result.to_tuple()) == 1


@pytest.mark.parametrize("returned", ["tuple", "two arrays"])
def test_a_plugins_results_are_checked_on_every_path(core, returned):
    compiled = core.compile_model(identity_model_bytes(), "TOY")
    device_infer = compiled.device_model.infer
    if returned == "tuple":  # any sequence will do
        compiled.device_model.infer = lambda inputs: tuple(device_infer(inputs))
    else:
        compiled.device_model.infer = lambda inputs: device_infer(inputs) * 2
    x = np.zeros(1, np.float32)
    request = compiled.create_infer_request()
    for run in (compiled, compiled.infer_new_request, request.infer):
        if returned == "tuple":
            assert run({"x": x})["y"].tolist() == [1.0]
        else:
            with pytest.raises(ember.errors.PluginError, match="returned 2 outputs"):
                run({"x": x})


def test_a_device_taking_named_inputs_gets_the_callers_dict_when_it_fits(core):
    compiled = core.compile_model(identity_model_bytes(), "TOY")
    device_infer, given = compiled.device_model.infer, []

    def infer_feeds(feeds):
        given.append(feeds)
        return device_infer([feeds["x"]])

    compiled.device_model.infer_feeds = infer_feeds
    compiled = ember.CompiledModel(compiled.device_model, compiled.device, {}, lambda c: b"")
    x = np.zeros(2, np.float32)
    feeds = {"x": x}
    assert compiled(feeds)["y"].tolist() == [1, 1] and given == [feeds]  # the very dict
    for other in ({"x": x.astype(np.float64)}, {"x": ember.Tensor(x)}, {0: x}, [x], x):
        assert compiled(other)["y"].tolist() == [1, 1]  # converted, through infer
    assert len(given) == 1
    with pytest.raises(InferenceInputError, match="no input 'z'"):
        compiled({"z": x})
    with pytest.raises(InferenceInputError, match="expects float32, got complex"):
        compiled({"x": x.astype(np.complex64)})


def test_infer_request(core):
    request = core.compile_model(identity_model_bytes(), "TOY").create_infer_request()
    request.set_tensor("x", np.zeros(2, np.float32))
    request.infer()
    np.testing.assert_array_equal(request.get_output_tensor(0), [1, 1])
    np.testing.assert_array_equal(request.results["y"], [1, 1])


def test_wrong_inputs_get_ember_errors():
    core = ember.Core()
    compiled = core.compile_model(mlp().SerializeToString(), "TEMPLATE")
    good = np.zeros((2, 16), np.float32)
    with pytest.raises(InferenceInputError, match="no input 'y'"):
        compiled({"y": good})
    with pytest.raises(InferenceInputError, match=r"expects shape \[batch, 16\]"):
        compiled(np.zeros((2, 15), np.float32))
    with pytest.raises(InferenceInputError, match="expects shape"):
        compiled(np.zeros(16, np.float32))
    with pytest.raises(InferenceInputError, match="expects float32, got complex"):
        compiled(np.zeros((2, 16), np.complex64))
    with pytest.raises(InferenceInputError, match="got 2 input"):
        compiled([good, good])
    # float64 converts to float32 as numpy users expect
    assert compiled(np.zeros((2, 16)))[0].dtype == np.float32


def test_export_import_round_trip_through_bytes_and_stream(core):
    compiled = core.compile_model(identity_model_bytes(), "TOY")
    data = compiled.export_model()
    for source in (data, io.BytesIO(data)):
        imported = core.import_model(source, "TOY")
        np.testing.assert_array_equal(imported(np.ones(1, np.float32))[0], [2])


def test_import_refuses_blob_for_another_device_kind(core):
    core.register_plugin(ToyPlugin("OTHER", 1), "other")
    data = core.compile_model(identity_model_bytes(), "TOY").export_model()
    with pytest.raises(BlobFormatError, match=r"compiled for TOY\.0"):
        core.import_model(data, "OTHER")
    with pytest.raises(BlobFormatError, match="checksum"):
        core.import_model(data[:-1] + bytes([data[-1] ^ 1]), "TOY")


def test_import_on_a_device_without_export_import_says_so(core):
    data = core.compile_model(identity_model_bytes(), "TOY").export_model()
    core.register_plugin(ToyPlugin("NOEXP", 1, export=False), "noexp")
    with pytest.raises(NotSupportedError, match="cannot import"):
        core.import_model(data, "NOEXP")
