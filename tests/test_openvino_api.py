"""OpenVINO's Python inference API, as its documentation and samples use it, run against Ember.

Written from OpenVINO's documentation (the inference request, tensor, model, properties, AUTO
and error pages): every test reads as OpenVINO code with ``import ember as ov``, and runs on CPU,
GPU (real OpenCL: PoCL's CPU device in CI) and TEMPLATE. The few Ember-only lines (a reference
model from ember.testing, AUTO's ``wait_for_target``) say so.
"""

import threading
import time

import numpy as np
import pytest

import ember as ov
import ember.properties as props
import ember.properties.device as device_props
import ember.properties.hint as hints
from ember.testing import mlp, ppocr_cls_path

DEVICES = ["CPU", "GPU", "TEMPLATE"]


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory):
    """GPU programs built once for the module (tests here are not about caching)."""
    return str(tmp_path_factory.mktemp("openvino-api-kernels"))


@pytest.fixture(scope="module")
def core(kernel_cache):
    core = ov.Core()
    core.set_property("GPU", {props.cache_dir(): kernel_cache})
    return core


@pytest.fixture(params=DEVICES)
def device(request, core):
    assert request.param in {name.split(".")[0] for name in core.available_devices}
    return request.param


@pytest.fixture(scope="module")
def model_bytes():
    return mlp().SerializeToString()  # Ember's seeded stand-in for a model file


@pytest.fixture
def model(core, model_bytes):
    return core.read_model(model_bytes)


def batch(n=2, seed=0):
    return np.random.default_rng(seed).random((n, 16), dtype=np.float32)


def reference(core, model_bytes, x):
    return core.compile_model(model_bytes, "CPU")(x)[0]


# -- the model: ports, types, shapes, reshape --------------------------------------------------


def test_model_ports_types_and_partial_shapes(core, model, device):
    assert model.input(0).get_any_name() == "x"
    assert model.input("x") == model.input() == model.inputs[0]
    assert model.output(0).any_name == "probabilities"
    assert model.input(0).element_type == ov.Type.f32
    assert model.input(0).get_element_type().to_dtype() == np.float32
    shape = model.input(0).partial_shape
    assert shape.is_dynamic and shape.rank.get_length() == 2
    assert shape[0].is_dynamic and shape[1] == ov.Dimension(16)
    assert shape[1].get_length() == 16
    assert str(ov.PartialShape([1, -1, 48])) == "[1,?,48]"
    with pytest.raises(RuntimeError):  # OpenVINO raises for the length of a dynamic dimension
        shape[0].get_length()
    compiled = core.compile_model(model, device)
    assert compiled.input(0).get_any_name() == "x"
    assert compiled.output(0).get_partial_shape()[1].get_length() == 10


@pytest.mark.parametrize("key", ["x", 0, "port"])
def test_reshape_by_name_index_or_port(core, model, device, key):
    key = model.input(0) if key == "port" else key
    model.reshape({key: [2, 16]})
    assert model.input(0).partial_shape.is_static
    assert model.input(0).get_shape() == [2, 16]
    assert model.output(0).partial_shape == ov.PartialShape([2, 10])
    compiled = core.compile_model(model, device)
    assert compiled(batch(2))[0].shape == (2, 10)
    with pytest.raises(RuntimeError):  # the shape is fixed now
        compiled(batch(3))


def test_reshape_one_input_model_with_a_partial_shape(core, model, device):
    model.reshape(ov.PartialShape([ov.Dimension(), 16]))
    assert model.input(0).partial_shape.is_dynamic
    model.reshape("[2,16]")
    assert core.compile_model(model, device)(batch(2))[0].shape == (2, 10)


def test_static_shapes_make_the_gpu_build_inside_compile_model(core, model):
    assert not core.compile_model(model, "GPU").device_model.specialisations  # dynamic: later
    model.reshape([2, 16])
    compiled = core.compile_model(model, "GPU")
    assert compiled.device_model.specialisations  # Ember-only: built, not waiting for infer


def test_query_model_maps_every_node_to_the_device(core, model, device):
    supported = core.query_model(model, device)
    assert set(supported) == {node.name for node in model.proto.graph.node}
    assert set(supported.values()) == set(core.get_versions(device))


# -- tensors and infer requests ----------------------------------------------------------------


def test_tensor_wraps_or_copies_a_numpy_array():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    shared = ov.Tensor(array, shared_memory=True)
    copied = ov.Tensor(array)
    array[0, 0] = 42
    assert shared.data[0, 0] == 42 and copied.data[0, 0] == 0
    assert shared.data is array or np.shares_memory(shared.data, array)
    assert shared.shape == [2, 3] and list(shared.get_shape()) == [2, 3]
    assert shared.element_type == ov.Type.f32 and shared.size == 6
    empty = ov.Tensor(ov.Type.f32, ov.Shape([1, 4]))
    assert empty.data.shape == (1, 4) and empty.get_byte_size() == 16
    assert ov.Type.f32.to_dtype() == np.float32 and ov.Type(np.int64) == ov.Type.i64


def test_set_tensor_and_get_tensor(core, model_bytes, device):
    compiled = core.compile_model(model_bytes, device)
    request = compiled.create_infer_request()
    x = batch()
    request.set_tensor("x", ov.Tensor(x))
    request.infer()
    output = request.get_output_tensor(0)
    np.testing.assert_allclose(output.data, reference(core, model_bytes, x), rtol=1e-4, atol=1e-5)
    assert request.get_tensor(compiled.output(0)).shape == output.shape == [2, 10]
    assert request.get_tensor("x").data.shape == (2, 16)
    request.set_input_tensor(ov.Tensor(batch(seed=1)))
    np.testing.assert_allclose(request.infer()[compiled.output(0)],
                               reference(core, model_bytes, batch(seed=1)), rtol=1e-4, atol=1e-5)


def test_writing_into_an_input_tensor_sets_the_input(core, model_bytes, device):
    model = core.read_model(model_bytes)
    model.reshape({"x": [2, 16]})
    request = core.compile_model(model, device).create_infer_request()
    request.get_input_tensor().data[:] = batch()
    request.infer()
    np.testing.assert_allclose(request.get_output_tensor().data,
                               reference(core, model_bytes, batch()), rtol=1e-4, atol=1e-5)


def test_start_async_wait_and_callback(core, model_bytes, device):
    compiled = core.compile_model(model_bytes, device)
    request = compiled.create_infer_request()
    called = []
    request.set_callback(lambda userdata: called.append(userdata), "done")
    x = batch()
    request.start_async({"x": x}, userdata=7)
    request.wait()
    assert called == ["done"] and request.userdata == 7
    np.testing.assert_allclose(request.results["probabilities"],
                               reference(core, model_bytes, x), rtol=1e-4, atol=1e-5)
    request.start_async({0: x})
    assert request.wait_for(60_000)  # milliseconds, as in OpenVINO
    assert request.latency > 0
    np.testing.assert_allclose(compiled.infer_new_request({"x": x})[0],
                               request.get_output_tensor(0).data)


def test_a_running_request_is_busy(core, model_bytes, device):
    compiled = core.compile_model(model_bytes, device)
    request = compiled.create_infer_request()
    x = batch()
    gate = threading.Event()
    request.set_callback(lambda _: gate.wait(30), None)  # holds the request busy
    request.start_async({0: x})
    with pytest.raises(RuntimeError, match="busy"):
        request.start_async({0: x})
    gate.set()
    request.wait()
    assert request.wait_for(0)


def test_wrong_inputs_raise_at_start_async(core, device):
    model = core.read_model(mlp().SerializeToString())
    request = core.compile_model(model, device).create_infer_request()
    with pytest.raises(RuntimeError):  # checked at start: a wrong shape
        request.start_async({"x": np.zeros((2, 15), np.float32)})
    request.start_async({"x": batch()})
    request.wait()


def test_async_infer_queue(core, model_bytes, device):
    compiled = core.compile_model(model_bytes, device, {hints.performance_mode:
                                                        hints.PerformanceMode.THROUGHPUT})
    queue = ov.AsyncInferQueue(compiled, 3)
    assert len(queue) == 3 and queue.is_ready()
    results = {}

    def callback(request, userdata):
        results[userdata] = request.get_output_tensor(0).data.copy()

    queue.set_callback(callback)
    inputs = [batch(seed=i) for i in range(12)]
    for i, x in enumerate(inputs):
        queue.start_async({"x": x}, i)
    queue.wait_all()
    assert sorted(results) == list(range(12))
    expected = core.compile_model(model_bytes, "CPU")
    for i, x in enumerate(inputs):
        np.testing.assert_allclose(results[i], expected(x)[0], rtol=1e-4, atol=1e-5)
    assert queue.is_ready() and len(queue.userdata) == 3 and set(queue.userdata) <= set(range(12))
    assert all(isinstance(queue[i], ov.InferRequest) for i in range(len(queue)))
    assert {id(r) for r in queue} == {id(queue[i]) for i in range(3)}
    assert 0 <= queue.get_idle_request_id() < 3


def test_async_infer_queue_sized_by_the_device(core, model_bytes, device):
    compiled = core.compile_model(model_bytes, device, {"PERFORMANCE_HINT": "THROUGHPUT"})
    optimal = compiled.get_property(props.optimal_number_of_infer_requests())
    assert isinstance(optimal, int) and optimal >= 1
    assert len(ov.AsyncInferQueue(compiled)) == optimal


# -- properties --------------------------------------------------------------------------------


def test_property_helpers_are_the_string_keys(core, device):
    assert props.cache_dir() == "CACHE_DIR" and props.cache_dir("/c") == ("CACHE_DIR", "/c")
    assert device_props.full_name() == "FULL_DEVICE_NAME"
    assert hints.performance_mode == "PERFORMANCE_HINT"
    assert isinstance(core.get_property(device, device_props.full_name), str)
    assert props.supported_properties() in core.get_property(device, props.supported_properties)


@pytest.mark.parametrize("mode", ["THROUGHPUT", "CUMULATIVE_THROUGHPUT", "LATENCY"])
def test_performance_hints(core, model_bytes, device, mode):
    config = dict([hints.performance_mode(hints.PerformanceMode[mode])])
    compiled = core.compile_model(model_bytes, device, config)
    assert compiled.get_property(hints.performance_mode) == mode
    if mode == "LATENCY":
        assert compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") == 1
    np.testing.assert_allclose(compiled(batch())[0], reference(core, model_bytes, batch()),
                               rtol=1e-4, atol=1e-5)


def test_num_streams_and_numbers_given_as_strings(core, model_bytes, device):
    compiled = core.compile_model(model_bytes, device, {"NUM_STREAMS": "2",
                                                        "PERFORMANCE_HINT": "THROUGHPUT"})
    assert compiled.get_property("NUM_STREAMS") == 2
    assert compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") == 2
    config_core = ov.Core()
    config_core.set_property(device, {props.streams.num(): "3"})
    assert config_core.get_property(device, "NUM_STREAMS") == 3
    with pytest.raises(RuntimeError, match="NUM_STREAMS"):
        config_core.set_property(device, {"NUM_STREAMS": "many"})


def test_inference_precision(core, model_bytes, device):
    compiled = core.compile_model(model_bytes, device, {hints.inference_precision: ov.Type.f32})
    assert compiled.get_property(hints.inference_precision) == ov.Type.f32
    assert isinstance(compiled.get_property(hints.inference_precision), ov.Type)
    for precision in (ov.Type.bf16, "f16"):
        # none of Ember's engines computes these models in bf16 or f16: a clear error
        with pytest.raises(RuntimeError, match=r"INFERENCE_PRECISION_HINT.*(bf16|f16)"):
            core.compile_model(model_bytes, device, {"INFERENCE_PRECISION_HINT": precision})


def test_getters_return_openvinos_types_and_setters_take_both(device):
    core = ov.Core()
    precision = core.get_property(device, hints.inference_precision)
    assert isinstance(precision, ov.Type) and precision == ov.Type.f32
    mode = core.get_property(device, hints.performance_mode)
    assert mode is hints.PerformanceMode.LATENCY and mode == "LATENCY"  # still the string too
    assert core.get_property(device, hints.execution_mode) is hints.ExecutionMode.PERFORMANCE
    core.set_property(device, {hints.execution_mode: "ACCURACY",
                               hints.performance_mode: hints.PerformanceMode.THROUGHPUT})
    assert core.get_property(device, "EXECUTION_MODE_HINT") is hints.ExecutionMode.ACCURACY
    assert core.get_property(device, "PERFORMANCE_HINT") is hints.PerformanceMode.THROUGHPUT
    core.set_property({props.cache_mode(): props.CacheMode.OPTIMIZE_SIZE})
    assert core.get_property(props.cache_mode()) is props.CacheMode.OPTIMIZE_SIZE
    with pytest.raises(RuntimeError, match="EXECUTION_MODE_HINT"):
        core.set_property(device, {"EXECUTION_MODE_HINT": "FASTEST"})


def test_get_version_and_the_older_spellings(core):
    assert isinstance(ov.get_version(), str) and ov.get_version() == ov.__version__
    assert core.get_available_devices() == core.available_devices


def test_export_model_into_a_stream(core, model_bytes):
    import io

    compiled = core.compile_model(model_bytes, "CPU")
    stream = io.BytesIO()
    assert compiled.export_model(stream) is None  # OpenVINO's overload writes, returns nothing
    assert len(stream.getvalue()) == len(compiled.export_model())
    stream.seek(0)
    imported = core.import_model(stream, "CPU")
    np.testing.assert_array_equal(imported(batch())[0], compiled(batch())[0])


def test_element_types_as_benchmark_code_uses_them(core, model_bytes):
    from ember.utils.types import get_dtype, get_element_type  # openvino.utils.types

    model = core.read_model(model_bytes)
    model.reshape({"x": [2, 16]})
    request = core.compile_model(model, "CPU").create_infer_request()
    for port in request.model_inputs:
        tensor = request.get_tensor(port)
        dtype = get_dtype(tensor.element_type)
        assert tensor.get_size() == 32 and tensor.element_type.get_size() == dtype.itemsize
        tensor.data[:] = np.random.default_rng(0).uniform(0, 1, list(tensor.shape)).astype(dtype)
    request.infer()
    assert request.get_output_tensor().data.shape == (2, 10)
    assert get_element_type(np.uint8) == ov.Type.u8 and get_element_type(float) == ov.Type.f32
    assert ov.Type.f16.is_real() and ov.Type.f16.real and ov.Type.f16.get_bitwidth() == 16
    assert ov.Type.u8.is_integral() and not ov.Type.u8.is_signed() and ov.Type.i8.signed
    assert ov.Type.f32.to_string() == "f32" and ov.Type.dynamic.is_dynamic()
    assert ov.PartialShape([1, -1]).to_string() == "[1,?]"


def test_get_versions(core, device):
    (name, version), = core.get_versions(device).items()
    assert name.split(".")[0] == device
    assert version.description.startswith("ember-") and version.build_number
    assert version.major >= 0


# -- errors ------------------------------------------------------------------------------------


def test_errors_are_runtime_errors(core, model_bytes, device):
    with pytest.raises(RuntimeError):
        core.compile_model(model_bytes, "NPU")
    with pytest.raises(RuntimeError):
        core.compile_model(model_bytes, device)(np.zeros((2, 15), np.float32))
    with pytest.raises(RuntimeError):
        core.compile_model(b"not an onnx model", device)
    with pytest.raises(RuntimeError):
        core.compile_model(model_bytes, device, {"NO_SUCH_PROPERTY": 1})


@pytest.mark.parametrize("virtual", ["MULTI:GPU,CPU", "HETERO:GPU,CPU"])
def test_multi_and_hetero_name_auto(core, model_bytes, virtual):
    with pytest.raises(RuntimeError, match="AUTO"):
        core.compile_model(model_bytes, virtual)


# -- AUTO --------------------------------------------------------------------------------------


def test_compile_model_shortcut(model_bytes, device):
    compiled = ov.compile_model(model_bytes, f"AUTO:{device}")
    assert compiled(batch())[0].shape == (2, 10)


def test_auto_on_one_device(core, model_bytes, device):
    compiled = core.compile_model(model_bytes, f"AUTO:{device}")
    (executed,) = compiled.get_property("EXECUTION_DEVICES")
    assert executed.split(".")[0] == device
    np.testing.assert_allclose(compiled(batch())[0], reference(core, model_bytes, batch()),
                               rtol=1e-4, atol=1e-5)


# Ember's AUTO measures by default; PRIORITY is OpenVINO's rule (Ember-only key)
BY_PRIORITY = {"EMBER_AUTO_SELECTION": "PRIORITY"}


def test_auto_by_priority_prefers_the_gpu_and_an_explicit_list_overrides(core, model_bytes):
    compiled = core.compile_model(model_bytes, "AUTO",
                                  {"ENABLE_STARTUP_FALLBACK": False, **BY_PRIORITY})
    assert compiled.get_property("EXECUTION_DEVICES") == ["GPU.0"]
    compiled = core.compile_model(model_bytes, "AUTO:TEMPLATE,CPU", BY_PRIORITY)
    assert compiled.wait_for_target(60)  # Ember-only: TEMPLATE compiles while CPU serves
    assert compiled.get_property("EXECUTION_DEVICES") == ["TEMPLATE"]
    listed = core.compile_model(model_bytes, "AUTO:NPU,TEMPLATE")  # an absent device is skipped
    assert listed.get_property("EXECUTION_DEVICES") == ["TEMPLATE"]
    with pytest.raises(RuntimeError, match="NPU"):
        core.compile_model(model_bytes, "AUTO:NPU")


def test_auto_serves_on_cpu_while_the_gpu_compiles_then_switches(tmp_path):
    """By priority (OpenVINO's rule), with a cold GPU cache: PoCL compiles PP-OCR's classifier
    for seconds, on a background thread, while CPU serves; no inference is lost or reordered by
    the switch."""
    cache_dir = str(tmp_path / "cache")
    model_path = ppocr_cls_path()
    core = ov.Core()
    core.compile_model(model_path, "CPU", {"CACHE_DIR": cache_dir})  # CPU's entry is warm
    rng = np.random.default_rng(0)
    images = [rng.random((1, 3, 48, 192), dtype=np.float32) for _ in range(8)]
    expected = [core.compile_model(model_path, "CPU")(x)[0] for x in images]

    compiled = core.compile_model(model_path, "AUTO:GPU,CPU",
                                  {"CACHE_DIR": cache_dir, "PERFORMANCE_HINT": "THROUGHPUT",
                                   **BY_PRIORITY})
    assert compiled.get_property("EXECUTION_DEVICES") == ["CPU"]
    assert compiled.get_property("LOADED_FROM_CACHE")  # CPU started from its own entry

    queue = ov.AsyncInferQueue(compiled, 2)
    results, seen = {}, []
    queue.set_callback(lambda request, i: results.setdefault(i, request.results[0].copy()))
    request = compiled.create_infer_request()
    deadline, n = time.monotonic() + 300, 0
    while time.monotonic() < deadline:
        queue.start_async({0: images[n % 8]}, n)
        n += 1
        request.infer({0: images[n % 8]})  # a synchronous stream beside the queue
        np.testing.assert_allclose(request.results[0], expected[n % 8], rtol=1e-4, atol=1e-5)
        seen.append(compiled.get_property("EXECUTION_DEVICES")[0])
        if seen[-1] == "GPU.0" and seen.count("GPU.0") >= 5:
            break
        time.sleep(0.005)  # an application's pace: the background compile needs the cores too
    queue.wait_all()
    assert "CPU" in seen and seen[-1] == "GPU.0"
    first_gpu = seen.index("GPU.0")
    assert set(seen[first_gpu:]) == {"GPU.0"}  # switched once, never back
    assert sorted(results) == list(range(n))  # every request answered, once
    for i, got in results.items():  # each with its own input's result
        np.testing.assert_allclose(got, expected[i % 8], rtol=1e-4, atol=1e-5)
    assert compiled.wait_for_target(0)  # Ember-only: the background compile is done

    warm = ov.Core().compile_model(model_path, "AUTO:GPU,CPU",
                                   {"CACHE_DIR": cache_dir, **BY_PRIORITY})
    assert warm.get_property("EXECUTION_DEVICES") == ["GPU.0"]  # warm: straight to the GPU
    np.testing.assert_allclose(warm(images[0])[0], expected[0], rtol=1e-4, atol=1e-5)
