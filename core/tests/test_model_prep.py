"""OpenVINO's model-preparation API on Ember: layouts, OVAny, runtime info, ordered ops, graph
building with ember.opset, save_model and serialize."""

import numpy as np
import onnx
import pytest

import ember
from ember import layout_helpers
from ember import opset13 as ops
from ember.testing import models


@pytest.fixture(scope="module")
def core():
    return ember.Core()


def test_layouts_as_openvino_spells_them():
    nchw = ember.Layout("NCHW")
    assert nchw.to_string() == "[N,C,H,W]" and str(nchw) == "[N,C,H,W]"
    assert repr(nchw) == "<Layout: [N,C,H,W]>"
    assert nchw == ember.Layout("[N,C,H,W]") == "nchw" and not nchw.empty
    assert ember.Layout().empty and ember.Layout().to_string() == ""
    assert layout_helpers.height_idx(nchw) == 2 and layout_helpers.width_idx("NHWC") == 2
    assert layout_helpers.channels_idx("NHWC") == 3 and layout_helpers.batch_idx(nchw) == 0
    assert layout_helpers.height_idx("...HW") == -2 and not layout_helpers.has_depth(nchw)
    assert ember.Layout("NC...").to_string() == "[N,C,...]"
    with pytest.raises(RuntimeError):
        layout_helpers.depth_idx(nchw)


@pytest.mark.parametrize("text", ["NCHWN", "[N,,C]", "[N,C", "N-C", "......", "N...C...",
                                  "x" * 5000, "\x00", "[", "]"])
def test_a_malformed_layout_is_one_runtime_error(text):
    try:
        layout = ember.Layout(text)
    except RuntimeError:
        return
    assert isinstance(layout.to_string(), str)


def test_a_ports_layout_is_empty_until_set(core):
    model = core.read_model(models.mlp().SerializeToString())
    assert layout_helpers.get_layout(model.input()).empty
    layout_helpers.set_layout(model.input(), ember.Layout("NC"))
    assert layout_helpers.get_layout(model.input()).to_string() == "[N,C]"


def test_ovany_converts_as_openvino_does():
    assert ember.OVAny(3).astype(str) == "3"
    assert ember.OVAny("0.5 1 2").aslist(float) == [0.5, 1.0, 2.0]
    assert ember.OVAny("YES").astype(bool) is True
    assert ember.OVAny(["a", "b"]).astype(str) == "a b"
    with pytest.raises(RuntimeError):
        ember.OVAny("abc").astype(int)


def _with_metadata(props):
    proto = models.mlp()
    onnx.helper.set_model_props(proto, props)
    return proto.SerializeToString()


def test_rt_info_reads_onnx_metadata_both_ways(core):
    model = core.read_model(_with_metadata({"model_info model_type": "Classification",
                                            "model_info labels": "cat dog", "author": "me"}))
    assert model.get_rt_info(["model_info", "model_type"]).astype(str) == "Classification"
    assert model.get_rt_info(["model_info", "labels"]).aslist() == ["cat", "dog"]
    assert model.get_rt_info(["framework", "author"]).astype(str) == "me"  # OpenVINO's view
    assert model.has_rt_info(["model_info"]) and not model.has_rt_info(["model_info", "nope"])
    with pytest.raises(RuntimeError) as error:
        model.get_rt_info(["model_info", "mean_values"])
    assert str(error.value) == ("Cannot get runtime attribute. Path to runtime attribute is "
                                "incorrect.")


@pytest.mark.parametrize("props", [{"": "x"}, {"   ": "y"}, {"a  b": "z", "a": "w"},
                                   {"k" * 10000: "v"}, {"a b c": "1", "a b": "2"}])
def test_forged_metadata_keys_read_without_crashing(core, props):
    model = core.read_model(_with_metadata(props))
    info = model.get_rt_info()
    assert "framework" in info
    for key in props:
        assert model.get_rt_info(["framework", key]).astype(str) == props[key]


def test_rt_info_survives_save_model_and_keys_the_cache(core, tmp_path):
    model = core.read_model(models.mlp().SerializeToString())
    model.set_rt_info(["cat", "dog"], ["model_info", "labels"])
    assert model.get_rt_info(["model_info", "labels"]).astype(str) == "cat dog"
    ember.save_model(model, tmp_path / "saved.onnx")
    again = core.read_model(str(tmp_path / "saved.onnx"), None)
    assert again.get_rt_info(["model_info", "labels"]).aslist() == ["cat", "dog"]

    config = {"CACHE_DIR": str(tmp_path / "cache")}
    first = core.compile_model(again, "CPU", config)
    assert not first.get_property("LOADED_FROM_CACHE")
    same = core.read_model(str(tmp_path / "saved.onnx"))
    assert core.compile_model(same, "CPU", config).get_property("LOADED_FROM_CACHE")
    other = core.read_model(str(tmp_path / "saved.onnx"))
    other.set_rt_info("bird", ["model_info", "labels"])
    assert not core.compile_model(other, "CPU", config).get_property("LOADED_FROM_CACHE")


def test_ordered_ops_come_from_the_onnx_graph(core):
    model = core.read_model(models.mlp().SerializeToString())
    ops_ = model.get_ordered_ops()
    kinds = [op.get_type_name() for op in ops_]
    assert kinds[0] == "Parameter" and kinds[-1] == "Result"
    assert kinds.count("Constant") == 6 and "Gemm" in kinds  # ONNX's operator names
    fc1 = next(op for op in ops_ if op.get_friendly_name() == "fc1")
    assert fc1.get_attributes() == {"transB": 1}
    assert [i.get_source_output().get_node().get_friendly_name() for i in fc1.inputs()] == \
        ["x", "w1", "b1"]
    assert fc1.get_output_partial_shape(0) == ember.PartialShape(["batch", 32])
    assert [p.get_friendly_name() for p in model.get_parameters()] == ["x"]
    result = model.get_results()[0]
    assert result.input_value(0).get_node().get_type_name() == "Softmax"
    w1 = next(op for op in ops_ if op.get_friendly_name() == "w1")
    assert w1.get_data().shape == (32, 16)


def _resize_and_crop_graph():
    """A wrapper library's kind of graph: resize keeping the aspect, pad, crop, If."""
    image = ops.parameter([1, 3, 20, 40], np.float32, name="image")
    shape = ops.shape_of(image, "i32")
    height = ops.gather(shape, ops.constant(np.array([2], np.int32)), ops.constant(0))
    width = ops.gather(shape, ops.constant(np.array([3], np.int32)), ops.constant(0))
    scale = ops.divide(ops.constant(np.array([10.0], np.float32)),
                       ops.convert(height, "f32"))
    new_w = ops.convert(ops.floor(ops.multiply(ops.convert(width, "f32"), scale)), "i64")
    sizes = ops.concat([ops.constant(np.array([10], np.int64)), new_w], 0)
    resized = ops.interpolate(image, sizes, "linear_onnx", "sizes", axes=[2, 3])
    padded = ops.pad(resized, [0, 0, 1, 1], [0, 0, 1, 1], "constant", 0.0)
    cropped = ops.slice(padded, np.array([1, 1]), np.array([11, 21]), np.array([1, 1]),
                        np.array([2, 3]))
    flat = ops.reshape(ops.transpose(cropped, [0, 2, 3, 1]), [1, -1], special_zero=False)
    condition = ops.greater(ops.convert(width, "f32"), ops.constant(np.array([30.0], np.float32)))
    if_node = ops.if_op(ops.squeeze(condition, [0]))
    then_in = ops.parameter([1, 600], np.float32, name="then_in")
    else_in = ops.parameter([1, 600], np.float32, name="else_in")
    if_node.set_then_body(ember.Model([ops.relu(then_in)], [then_in], "then"))
    if_node.set_else_body(ember.Model([ops.subtract(else_in, 1.0)], [else_in], "else"))
    if_node.set_input(flat.output(0), then_in, else_in)
    chosen = if_node.set_output(ops.result(ops.relu(then_in)), ops.result(
        ops.subtract(else_in, 1.0)))
    return ember.Model([ops.result(chosen, name="out")], [image], "wrapper")


def test_a_built_graph_runs_and_equals_numpy(core):
    model = _resize_and_crop_graph()
    assert model.get_friendly_name() == "wrapper"
    assert [o.name for o in model.outputs] == ["out"]
    onnx.checker.check_model(model.proto, full_check=True)
    image = np.random.default_rng(0).standard_normal((1, 3, 20, 40)).astype(np.float32)
    got = core.compile_model(model, "CPU")(image)[0]
    resized = image[:, :, ::2, ::2]  # half-pixel linear at exactly half size: 2x2 means
    resized = (image[:, :, ::2, ::2] + image[:, :, 1::2, ::2] + image[:, :, ::2, 1::2]
               + image[:, :, 1::2, 1::2]) / 4
    expected = np.maximum(resized.transpose(0, 2, 3, 1).reshape(1, -1), 0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_opset_needs_constant_attributes():
    data = ops.parameter([2, 3], np.float32)
    with pytest.raises(ember.errors.NotSupportedError, match="constant"):
        ops.transpose(data, ops.shape_of(data))
    assert ember.opset10.interpolate is ember.opset13.interpolate is ember.opset.interpolate


def test_save_model_forms(core, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    model = core.read_model(models.cnn().SerializeToString())
    big = core.read_model(models.mlp(features=64, hidden=64).SerializeToString())
    ember.save_model(big, tmp_path / "big.xml")  # OpenVINO's form: ONNX whatever the suffix
    ember.save_model(big, tmp_path / "big_f32.onnx", compress_to_fp16=False)
    ember.serialize(big, tmp_path / "big_ser.onnx")
    sizes = {p.name: p.stat().st_size for p in tmp_path.glob("big*")}
    assert sizes["big.xml"] < 0.7 * sizes["big_f32.onnx"] == 0.7 * sizes["big_ser.onnx"]
    x = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    exact = core.compile_model(big, "CPU")(x)[0]
    halved = core.compile_model(str(tmp_path / "big.xml"), "CPU")(x)[0]
    np.testing.assert_allclose(halved, exact, atol=2e-3)
    with pytest.raises(TypeError):
        ember.save_model(model)
    stored = ember.save_model("cnn", model)  # the store's form: a name first
    assert stored.parent.name == "cnn" and core.compile_model("cnn", "CPU")


WARM_START = """
import sys
import numpy as np
import ember as ov
core = ov.Core()
model = core.read_model(sys.argv[1])
ppp = ov.preprocess.PrePostProcessor(model)
ppp.input().tensor().set_shape([1, 32, 32, 3]).set_element_type(ov.Type.u8) \\
    .set_layout(ov.Layout("NHWC"))
ppp.input().preprocess().resize(ov.preprocess.ResizeAlgorithm.RESIZE_LINEAR)
ppp.input().model().set_layout(ov.Layout("NCHW"))
model = ppp.build()
compiled = core.compile_model(model, "CPU", {"CACHE_DIR": sys.argv[2]})
compiled.infer_new_request({0: np.zeros((1, 32, 32, 3), np.uint8)})
print(compiled.get_property("LOADED_FROM_CACHE"), "onnx" in sys.modules, model.is_parsed)
"""


def test_the_same_preprocessing_at_every_start_hits_the_cache_without_onnx(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "cnn.onnx"
    path.write_bytes(models.cnn().SerializeToString())
    runs = [subprocess.run([sys.executable, "-c", WARM_START, str(path), str(tmp_path / "c")],
                           capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    assert runs == [["False", "True", "True"], ["True", "False", "False"]]


def test_equal_preprocessing_keys_equal_and_different_preprocessing_differs(core):
    from ember.model.model_edits import recipe
    from ember.preprocess import PrePostProcessor

    def prepared(mean):
        model = core.read_model(models.cnn().SerializeToString())
        ppp = PrePostProcessor(model)
        ppp.input().preprocess().mean(mean).custom(lambda node: ops.relu(node))
        ppp.input().model().set_layout("NCHW")
        return recipe(ppp.build().edits)

    assert prepared([1.0, 2.0, 3.0]) == prepared([1.0, 2.0, 3.0])
    assert prepared([1.0, 2.0, 3.0]) != prepared([1.0, 2.0, 4.0])


def _crop_square_then_resize(image, size):
    """A wrapper library's custom preprocessing (NHWC): crop the centre square with an If on
    the image's aspect, then resize it, all built with ember.opset10 as the libraries do."""
    from ember import opset10 as opset

    h_axis, w_axis = 1, 2
    shape = opset.shape_of(image, name="shape")
    width = opset.convert(opset.gather(shape, opset.constant(w_axis), axis=0), "i32")
    height = opset.convert(opset.gather(shape, opset.constant(h_axis), axis=0), "i32")
    bodies = []
    for axis, long_, short in ((h_axis, 0, 1), (w_axis, 1, 0)):
        frame = opset.parameter([-1, -1, -1, 3], np.float32, "frame")
        dims = [opset.parameter([], np.int32, "height"), opset.parameter([], np.int32, "width")]
        offset = opset.unsqueeze(opset.divide(opset.subtract(dims[long_], dims[short]),
                                              opset.constant(2, dtype=np.int32)), 0)
        cropped = opset.slice(frame, start=offset, stop=opset.add(offset, dims[short]),
                              step=[1], axes=[axis])
        result = opset.result(cropped)
        bodies.append((ember.Model([result], [frame, *dims], f"crop{axis}"), frame, dims, result))
    if_node = opset.if_op(opset.greater(height, width).output(0))
    if_node.set_then_body(bodies[0][0])
    if_node.set_else_body(bodies[1][0])
    if_node.set_input(image, bodies[0][1], bodies[1][1])
    if_node.set_input(height.output(0), bodies[0][2][0], bodies[1][2][0])
    if_node.set_input(width.output(0), bodies[0][2][1], bodies[1][2][1])
    square = if_node.set_output(bodies[0][3], bodies[1][3])
    resized = opset.interpolate(square, [size, size], scales=np.array([0.0, 0.0], np.float32),
                                axes=[h_axis, w_axis], mode="linear",
                                shape_calculation_mode="sizes")
    return opset.clamp(resized, opset.constant(-10.0, dtype=ember.Type.f32),
                       opset.constant(10.0, dtype=ember.Type.f32))


@pytest.mark.parametrize(("height", "width", "device"),
                         [(48, 32, "CPU"), (32, 40, "CPU"), (48, 32, "TEMPLATE"), (32, 40, "GPU")])
def test_a_wrapper_librarys_custom_preprocessing_runs(core, height, width, device):
    if device == "GPU":  # PoCL's OpenCL device on a machine without a GPU: GPU.0
        device = next(d for d in core.available_devices if d.startswith("GPU"))
    from ember.preprocess import PrePostProcessor
    from ember.utils.decorators import custom_preprocess_function

    model = core.read_model(models.cnn().SerializeToString())
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_shape([1, -1, -1, 3]).set_layout(ember.Layout("NHWC"))
    ppp.input().preprocess().custom(custom_preprocess_function(
        lambda output: _crop_square_then_resize(output, 16)))
    ppp.input().model().set_layout(ember.Layout("NCHW"))
    built = ppp.build()
    assert built.input().shape == (1, None, None, 3)

    image = np.random.default_rng(3).standard_normal((1, height, width, 3)).astype(np.float32)
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[:, top:top + side, left:left + side]
    # half-pixel linear at exactly half size: the mean of each 2x2 block
    half = (square[:, ::2, ::2] + square[:, 1::2, ::2] + square[:, ::2, 1::2]
            + square[:, 1::2, 1::2]) / 4
    by_hand = np.ascontiguousarray(np.clip(half, -10, 10).transpose(0, 3, 1, 2))
    expected = core.compile_model(core.read_model(models.cnn().SerializeToString()),
                                  device)(by_hand)[0]
    np.testing.assert_allclose(core.compile_model(built, device)(image)[0], expected,
                               rtol=1e-4, atol=1e-5)


def test_postprocess_layout_and_type_and_errors_as_openvino(core):
    from ember.preprocess import PrePostProcessor

    model = core.read_model(models.cnn().SerializeToString())
    ppp = PrePostProcessor(model)
    ppp.output().model().set_layout("NC")
    ppp.output().tensor().set_layout("CN").set_element_type(ember.Type.f16)
    built = ppp.build()
    assert built.output().shape == (5, "batch") and built.output().dtype == np.float16
    assert layout_helpers.get_layout(built.output()) == ember.Layout("CN")
    x = np.random.default_rng(4).standard_normal((2, 3, 16, 16)).astype(np.float32)
    plain = core.compile_model(core.read_model(models.cnn().SerializeToString()), "CPU")(x)[0]
    np.testing.assert_allclose(core.compile_model(built, "CPU")(x)[0], plain.T.astype(np.float16))

    u8 = PrePostProcessor(core.read_model(models.cnn().SerializeToString()))
    u8.input().tensor().set_element_type(ember.Type.u8)
    u8.input().preprocess().mean(1.0)  # OpenVINO: mean wants a float tensor
    with pytest.raises(RuntimeError, match="float"):
        u8.build()


def test_a_model_built_from_a_read_graph_and_new_ops(core):
    """A wrapper library's graph surgery: the read graph's last op, a TopK behind it, and a new
    Model of the read graph's own parameters."""
    from ember import opset10 as opset

    model = core.read_model(models.mlp().SerializeToString())
    assert model.get_parameters()[0] is model.get_parameters()[0]  # the same nodes every call
    probabilities = model.get_output_op(0).input(0).get_source_output().get_node()
    assert probabilities.get_type_name() == "Softmax"
    top = opset.topk(probabilities.output(0), 3, 1, "max", "value")
    built = ember.Model([opset.result(top.output(0), name="scores"),
                         opset.result(top.output(1), name="labels")],
                        model.get_parameters(), "classification")
    assert [(p.name, p.dtype) for p in built.outputs] == [("scores", np.float32),
                                                          ("labels", np.int32)]
    x = np.random.default_rng(6).standard_normal((4, 16)).astype(np.float32)
    plain = core.compile_model(model, "CPU")(x)[0]
    result = core.compile_model(built, "CPU")(x)
    scores, labels = result["scores"], result["labels"]
    np.testing.assert_array_equal(labels, np.argsort(-plain, axis=1)[:, :3])
    np.testing.assert_allclose(scores, np.sort(plain, axis=1)[:, ::-1][:, :3], rtol=1e-6)


@pytest.mark.parametrize("step", [[0, 3, 1, 2], "NCHW"])
def test_convert_layout_without_a_model_layout_gives_the_tensor_its_shape(core, step):
    from ember.preprocess import PrePostProcessor

    ppp = PrePostProcessor(core.read_model(models.cnn().SerializeToString()))
    ppp.input().tensor().set_layout(ember.Layout("NHWC"))
    ppp.input().preprocess().convert_layout(step)
    built = ppp.build()
    assert built.input().shape == ("batch", 16, 16, 3)
    x = np.random.default_rng(7).standard_normal((2, 16, 16, 3)).astype(np.float32)
    plain = core.compile_model(core.read_model(models.cnn().SerializeToString()), "CPU")
    expected = plain(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))[0]
    np.testing.assert_allclose(core.compile_model(built, "CPU")(x)[0], expected, atol=1e-5)


def test_a_model_preprocessed_twice_applies_both_in_order(core):
    from ember.preprocess import PrePostProcessor

    model = core.read_model(models.cnn().SerializeToString())
    for factor in (2.0, 3.0):
        ppp = PrePostProcessor(model)
        ppp.input().preprocess().scale(factor)
        ppp.output().postprocess().custom(lambda node: ember.opset.add(node, 1.0))
        model = ppp.build()
    assert len(model.edits) == 2
    x = np.random.default_rng(8).standard_normal((1, 3, 16, 16)).astype(np.float32)
    plain = core.compile_model(core.read_model(models.cnn().SerializeToString()), "CPU")
    expected = plain(x / 6.0)[0] + 2.0
    np.testing.assert_allclose(core.compile_model(model, "CPU")(x)[0], expected, rtol=1e-5,
                               atol=1e-5)
