"""Every device runs preprocessed models: the preprocessing steps are ordinary ONNX operators,
so a preprocessed model's outputs equal the model's own, fed the same conversion done by hand."""

import numpy as np
import pytest

import ember
from ember.preprocess import ColorFormat, PrePostProcessor, ResizeAlgorithm
from ember.testing import models

DEVICES = ["CPU", "TEMPLATE", "GPU"]


@pytest.fixture(scope="module")
def core():
    return ember.Core()


def _device(core, name):
    if name == "GPU":  # PoCL gives this machine an OpenCL device; the plugin may name it GPU.0
        gpus = [d for d in core.available_devices if d.startswith("GPU")]
        assert gpus, f"no GPU device: {core.plugin_failures}"
        return gpus[0]
    return name


def _cnn(core):
    return core.read_model(models.cnn().SerializeToString())


@pytest.mark.parametrize("device", DEVICES)
def test_u8_nhwc_bgr_image_to_normalised_nchw(core, device):
    device = _device(core, device)
    model = _cnn(core)
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ember.Type.u8).set_layout(ember.Layout("NHWC")) \
        .set_shape([1, 32, 32, 3]).set_color_format(ColorFormat.BGR)
    # converted before the resize: the GPU device resizes float tensors only
    ppp.input().preprocess().convert_color(ColorFormat.RGB).convert_element_type(ember.Type.f32) \
        .resize(ResizeAlgorithm.RESIZE_NEAREST).mean([10.0, 20.0, 30.0]).scale([50.0, 60.0, 70.0])
    ppp.input().model().set_layout(ember.Layout("NCHW"))
    ppp.output().tensor().set_element_type(ember.Type.f16)
    built = ppp.build()
    assert built.input().dtype == np.uint8 and built.input().shape == (1, 32, 32, 3)
    assert built.output().dtype == np.float16

    image = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    # by hand: BGR -> RGB, half-pixel nearest at exactly half size takes every second pixel
    by_hand = image[:, ::2, ::2, ::-1].astype(np.float32)
    by_hand = ((by_hand - [10.0, 20.0, 30.0]) / [50.0, 60.0, 70.0]).astype(np.float32)
    by_hand = np.ascontiguousarray(by_hand.transpose(0, 3, 1, 2))
    expected = core.compile_model(_cnn(core), device)(by_hand)[0]
    got = core.compile_model(built, device)(image)[0]
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), expected, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_layout_and_custom_steps_and_postprocess(core, device):
    device = _device(core, device)
    model = _cnn(core)
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_layout(ember.Layout("NHWC"))
    ppp.input().preprocess().custom(lambda node: ember.opset.multiply(node, 0.5)) \
        .reverse_channels()
    ppp.input().model().set_layout("NCHW")
    ppp.output().postprocess().custom(lambda node: ember.opset.relu(node))
    built = ppp.build()
    assert built.input().shape == ("batch", 16, 16, 3)

    image = np.random.default_rng(2).standard_normal((2, 16, 16, 3)).astype(np.float32)
    by_hand = np.ascontiguousarray((image * 0.5)[..., ::-1].transpose(0, 3, 1, 2))
    expected = np.maximum(core.compile_model(_cnn(core), device)(by_hand)[0], 0)
    got = core.compile_model(built, device)(image)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_u8_resize_rounds_half_to_even_as_openvino(core, device):
    """hello_classification's pattern: the u8 image is resized as u8 (OpenVINO computes in float
    and rounds half to even), then cast to f32 and transposed to NCHW."""
    device = _device(core, device)
    ppp = PrePostProcessor(_cnn(core))
    ppp.input().tensor().set_shape([1, 32, 32, 3]).set_element_type(ember.Type.u8) \
        .set_layout(ember.Layout("NHWC"))
    ppp.input().preprocess().resize(ResizeAlgorithm.RESIZE_LINEAR)
    ppp.input().model().set_layout(ember.Layout("NCHW"))
    built = ppp.build()

    image = np.random.default_rng(5).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    wide = image.astype(np.float32)
    mean = (wide[:, ::2, ::2] + wide[:, 1::2, ::2] + wide[:, ::2, 1::2] + wide[:, 1::2, 1::2]) / 4
    assert np.any(mean % 1 == 0.5)  # ties, which half-to-even rounding decides
    by_hand = np.ascontiguousarray(np.rint(mean).transpose(0, 3, 1, 2))
    expected = core.compile_model(_cnn(core), device)(by_hand)[0]
    np.testing.assert_allclose(core.compile_model(built, device)(image)[0], expected,
                               rtol=1e-4, atol=1e-5)
