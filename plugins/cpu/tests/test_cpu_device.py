"""The CPU device on real onnxruntime."""

import subprocess
import sys

import numpy as np
import pytest

import ember
from ember.testing import mlp, ppocr_cls_path


@pytest.fixture(scope="module")
def core():
    return ember.Core()


def test_cpu_is_listed_with_its_brand(core):
    assert "CPU" in core.available_devices
    assert core.get_property("CPU", "FULL_DEVICE_NAME")
    assert "onnxruntime" in core.get_property("CPU", "DEVICE_ARCHITECTURE")


@pytest.mark.parametrize("setting", [
    {"INFERENCE_NUM_THREADS": -1}, {"INFERENCE_PRECISION_HINT": "bf16"},
    {"GRAPH_OPTIMIZATION_LEVEL": "MAXIMUM"}, {"PERFORMANCE_HINT": "FAST"},
])
def test_values_it_cannot_honour_are_refused(core, setting):
    (name,) = setting
    with pytest.raises(ember.errors.PropertyValueError, match=name):
        core.compile_model(mlp().SerializeToString(), "CPU", setting)


@pytest.mark.parametrize("level", ["DISABLE", "BASIC", "EXTENDED", "ALL"])
@pytest.mark.parametrize("hint", ["LATENCY", "THROUGHPUT"])
def test_export_import_round_trip_is_bitwise_identical(core, level, hint):
    inputs = {"x": np.random.default_rng(2).random((2, 3, 48, 192), dtype=np.float32)}
    config = {"GRAPH_OPTIMIZATION_LEVEL": level, "PERFORMANCE_HINT": hint}
    compiled = core.compile_model(ppocr_cls_path(), "CPU", config)
    imported = core.import_model(compiled.export_model(), "CPU", config)
    assert imported(inputs)[0].tobytes() == compiled(inputs)[0].tobytes()
    assert [p.name for p in imported.inputs] == ["x"]
    assert imported.inputs[0].shape == compiled.inputs[0].shape


def test_dynamic_dimensions(core):
    compiled = core.compile_model(ppocr_cls_path(), "CPU")
    for shape in [(1, 3, 48, 192), (3, 3, 48, 320)]:
        assert compiled(np.zeros(shape, np.float32))[0].shape == (shape[0], 2)


def test_unsupported_operator_names_the_node(core):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(ember.errors.UnsupportedOperatorError) as info:
        core.compile_model(model.SerializeToString(), "CPU")
    assert (info.value.op_type, info.value.node_name) == ("NoSuchOp", "mystery")


def test_architecture_names_the_instruction_set_and_runtime(core):
    import onnxruntime

    architecture = core.get_property("CPU", "DEVICE_ARCHITECTURE")
    assert onnxruntime.__version__ in architecture
    assert "GRAPH_OPTIMIZATION_LEVEL" in core.get_property("CPU", "CACHING_PROPERTIES")


def test_loading_the_plugin_does_not_import_onnxruntime():
    code = ("import sys, ember; ember.Core().available_devices; "
            "print('onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_nothing_is_written_to_the_home_directory(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    code = ("import ember; from ember.testing import mlp; "
            "ember.Core().compile_model(mlp().SerializeToString(), 'CPU')")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert list(home.iterdir()) == []


def test_a_cache_hit_builds_the_session_from_the_bytes_read_without_a_copy(tmp_path):
    core = ember.Core()
    core.set_property({"CACHE_DIR": str(tmp_path)})
    image = np.random.default_rng(0).random((1, 3, 48, 192), dtype=np.float32)
    expected = core.compile_model(ppocr_cls_path(), "CPU")(image)[0]
    warm = core.compile_model(ppocr_cls_path(), "CPU")
    assert warm.get_property("LOADED_FROM_CACHE")
    graph = warm.device_model.ort_bytes
    # The session was built from the payload the cache read (the graph is a view into it,
    # trailer and all), not from a copy of the graph's bytes.
    assert isinstance(graph, memoryview) and type(graph.obj) is bytes
    assert len(graph.obj) > graph.nbytes
    np.testing.assert_array_equal(warm(image)[0], expected)
    # and exporting it again writes the graph alone, not the old trailer with it
    from ember_cpu import payload

    _, exported = ember.store.blob.unpack(warm.export_model())
    assert payload.loads(exported).graph.nbytes == graph.nbytes


def reshape_to_three() -> bytes:
    """x[n] -> Reshape to [3]: any n the ports allow, and onnxruntime fails at run unless n == 3."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(np.array([3], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_failure_inside_onnxruntime_is_an_inference_input_error_naming_the_inputs(core):
    compiled = core.compile_model(reshape_to_three(), "CPU")
    np.testing.assert_array_equal(compiled(np.arange(3, dtype=np.float32))[0], [0, 1, 2])
    for inputs in (np.zeros(4, np.float32), {"x": np.zeros(4, np.float32)}):  # both paths
        with pytest.raises(ember.errors.InferenceInputError,
                           match=r"onnxruntime cannot run the model on inputs 'x' \[4\]"):
            compiled(inputs)


def test_the_session_is_run_through_its_binding_when_it_has_one():
    from ember_cpu.compiled_model import binding_run

    class Binding:
        def run(self, names, feeds, options):
            return ["binding"]

    class Session:
        def run(self, names, feeds, options=None):
            return ["session"]

    with_binding = Session()
    with_binding._sess = Binding()
    assert binding_run(with_binding)([], {}, None) == ["binding"]
    assert binding_run(Session())([], {}, None) == ["session"]  # another onnxruntime's session
