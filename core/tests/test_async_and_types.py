"""Asynchronous requests' failure paths and worker threads, OpenVINO's types, and property values
in OpenVINO's spellings, on the toy plugin (the OpenVINO-style tests on real devices are in
tests/test_openvino_api.py)."""

import gc
import threading

import numpy as np
import pytest

import ember
from ember.contract.hints import normalize_value
from ember.errors import DynamicShapeError, PropertyValueError, RequestBusyError
from ember.testing.toy import AddOneModel, ToyPlugin, identity_model_bytes


class Fragile(AddOneModel):
    """Adds one, and fails on negative inputs: a device error raised during an inference."""

    def infer(self, inputs):
        if (inputs[0] < 0).any():
            raise ArithmeticError("negative input")
        return super().infer(inputs)


class FragilePlugin(ToyPlugin):
    @ember.hookimpl
    def compile(self, model, device_name, config):
        if not self._mine(device_name):
            return None
        return Fragile(model.inputs, model.outputs)


@pytest.fixture
def compiled():
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(FragilePlugin(prefix="FRAGILE", count=1), "fragile")
    return core.compile_model(identity_model_bytes(), "FRAGILE")


def test_an_asynchronous_failure_is_raised_by_wait_and_the_request_stays_usable(compiled):
    request = compiled.create_infer_request()
    calls = []
    request.set_callback(calls.append, "called")
    request.start_async(np.array([-1.0], np.float32))
    with pytest.raises(ArithmeticError, match="negative"):
        request.wait()
    assert calls == ["called"]  # on failure too, as in OpenVINO
    request.start_async(np.array([1.0], np.float32))
    request.wait()
    assert request.get_output_tensor().data.tolist() == [2.0]


def test_a_queue_raises_failures_and_callback_errors_from_wait_all(compiled):
    queue = ember.AsyncInferQueue(compiled, 2)
    seen = []
    queue.set_callback(lambda request, userdata: seen.append(userdata))
    for i in range(4):
        queue.start_async(np.array([i - 1.0], np.float32), i)  # i == 0 fails
    with pytest.raises(ArithmeticError):
        queue.wait_all()
    assert sorted(seen) == [1, 2, 3]
    queue.wait_all()  # reported once

    def broken(request, userdata):
        raise KeyError(userdata)

    queue.set_callback(broken)
    queue.start_async(np.array([1.0], np.float32), "x")
    with pytest.raises(KeyError):
        queue.wait_all()
    assert queue.is_ready()


def test_a_request_refuses_changes_while_it_runs(compiled):
    request = compiled.create_infer_request()
    gate = threading.Event()
    request.set_callback(lambda _: gate.wait(30))
    request.start_async(np.array([1.0], np.float32))
    with pytest.raises(RequestBusyError):
        request.set_tensor("x", np.array([2.0], np.float32))
    with pytest.raises(RequestBusyError):
        request.infer(np.array([2.0], np.float32))
    assert request.wait_for(10) is False
    gate.set()
    assert request.wait_for(-1)


def test_a_request_refuses_changes_while_a_synchronous_inference_runs(compiled):
    request = compiled.create_infer_request()
    started, gate = threading.Event(), threading.Event()
    device_infer = compiled.device_model.infer

    def slow(inputs):
        started.set()
        gate.wait(30)
        return device_infer(inputs)

    compiled.device_model.infer = slow
    running = threading.Thread(target=request.infer, args=(np.array([1.0], np.float32),))
    running.start()
    try:
        assert started.wait(30)
        assert "busy" in repr(request)
        with pytest.raises(RequestBusyError, match=r"infer\(\) runs on another thread"):
            request.start_async(np.array([2.0], np.float32))
        with pytest.raises(RequestBusyError, match=r"infer\(\) runs on another thread"):
            request.set_tensor("x", np.array([2.0], np.float32))
    finally:
        gate.set()
        running.join(30)
    assert "idle" in repr(request)
    assert request.get_output_tensor().data.tolist() == [2.0]
    compiled.device_model.infer = device_infer
    with pytest.raises(ArithmeticError):  # a failed inference leaves the request usable
        request.infer(np.array([-1.0], np.float32))
    assert request.infer(np.array([3.0], np.float32))[0].tolist() == [4.0]


def test_the_worker_thread_ends_with_its_request(compiled):
    request = compiled.create_infer_request()
    request.start_async(np.array([1.0], np.float32))
    request.wait()
    thread = request._worker.thread
    del request
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()


def test_types_dimensions_and_shapes():
    assert ember.Type.f32 == ember.Type("FP32") == ember.Type(np.float32) == "f32"
    assert repr(ember.Type.f32) == str(ember.Type.f32) == "<Type: 'float32'>"
    assert ember.Type.bf16.get_type_name() == "bf16"
    assert repr(ember.Tensor(np.zeros((2, 3), np.float32))) == "<Tensor: shape[2,3] type: f32>"
    with pytest.raises(RuntimeError):
        ember.Type.bf16.to_dtype()  # numpy has no bfloat16
    bounded = ember.Dimension(1, 8)
    assert bounded.is_dynamic and str(bounded) == "1..8" and bounded.get_max_length() == 8
    with pytest.raises(DynamicShapeError):
        ember.PartialShape("[1,?,3]").to_shape()
    assert ember.PartialShape("[1,?,3]") == [1, -1, 3]
    shape = ember.PartialShape([2, 3]).to_shape()
    assert shape == (2, 3) and shape == [2, 3] and shape != [2, 4]
    assert str(ember.Shape([2, 3])) == "[2,3]"


@pytest.mark.parametrize(("key", "value", "default", "expected"), [
    ("INFERENCE_NUM_THREADS", "2", 0, 2),
    ("DISABLE_TRANSFORMATIONS", "YES", False, True),
    ("DISABLE_TRANSFORMATIONS", "NO", False, False),
    ("NUM_STREAMS", "AUTO", -1, -1),
    ("NUM_STREAMS", "3", -1, 3),
    ("PERFORMANCE_HINT", "throughput", "LATENCY", "THROUGHPUT"),
    ("EXECUTION_MODE_HINT", "accuracy", "PERFORMANCE", "ACCURACY"),
    ("INFERENCE_PRECISION_HINT", ember.Type.bf16, "f32", "bf16"),
    ("INFERENCE_PRECISION_HINT", "BF16", "f32", "bf16"),
    ("GRAPH_OPTIMIZATION_LEVEL", "ALL", "EXTENDED", "ALL"),
])
def test_property_values_in_openvino_spellings(key, value, default, expected):
    assert normalize_value(key, value, default) == expected


@pytest.mark.parametrize(("key", "value"), [
    ("PERFORMANCE_HINT", "FASTEST"), ("EXECUTION_MODE_HINT", "FAST"), ("NUM_STREAMS", "many"),
    ("NUM_STREAMS", -3),
    ("INFERENCE_PRECISION_HINT", "f33"), ("PERFORMANCE_HINT_NUM_REQUESTS", True),
])
def test_bad_hint_values_are_refused(key, value):
    with pytest.raises(PropertyValueError, match=key):
        normalize_value(key, value)
