"""The TEMPLATE device end to end, checked against onnx.reference on real models."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ember
from ember.errors import BlobFormatError, InvalidModelError, UnsupportedOperatorError
from ember.testing import cnn, mlp, ppocr_cls_path, random_inputs, reference_outputs
from ember.testing.models import PPOCR_CLS_INPUT_SHAPE
from ember_template import plan_format


@pytest.fixture(scope="module")
def core():
    return ember.Core()


@pytest.fixture(scope="module")
def ppocr():
    return onnx.load(str(ppocr_cls_path()))


def ppocr_inputs(batch=2):
    rng = np.random.default_rng(1)
    return {"x": rng.random((batch, *PPOCR_CLS_INPUT_SHAPE[1:]), dtype=np.float32)}


CASES = {
    "mlp": (mlp, lambda m: random_inputs(m.inputs, batch=3)),
    "cnn": (cnn, lambda m: random_inputs(m.inputs, batch=2)),
}


@pytest.mark.parametrize("transformations", [True, False], ids=["fused", "reference-graph"])
@pytest.mark.parametrize("name", CASES)
def test_matches_onnx_reference(core, name, transformations):
    build, make_inputs = CASES[name]
    proto = build()
    model = core.read_model(proto.SerializeToString())
    inputs = make_inputs(model)
    compiled = core.compile_model(model, "TEMPLATE",
                                  {"DISABLE_TRANSFORMATIONS": not transformations})
    expected = reference_outputs(proto, inputs)
    for got, want in zip(compiled(inputs).to_tuple(), expected, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_ppocr_classifier_matches_onnx_reference(core, ppocr):
    compiled = core.compile_model(ppocr_cls_path(), "TEMPLATE")
    inputs = ppocr_inputs()
    (got,) = compiled(inputs).to_tuple()
    (want,) = reference_outputs(ppocr, inputs)
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("source", ["mlp", "cnn", "ppocr"])
def test_export_import_is_bitwise_identical(core, source):
    if source == "ppocr":
        model, inputs = core.read_model(ppocr_cls_path()), ppocr_inputs()
    else:
        model = core.read_model(CASES[source][0]().SerializeToString())
        inputs = CASES[source][1](model)
    compiled = core.compile_model(model, "TEMPLATE")
    imported = core.import_model(compiled.export_model(), "TEMPLATE")
    assert [p.name for p in imported.inputs] == [p.name for p in compiled.inputs]
    for a, b in zip(compiled(inputs).to_tuple(), imported(inputs).to_tuple(), strict=True):
        assert a.tobytes() == b.tobytes()


def test_compile_folds_constants_and_fuses_batchnorm(core):
    plan = core.compile_model(cnn().SerializeToString(), "TEMPLATE").device_model.plan
    ops = [step.op_type for step in plan.steps]
    assert "BatchNormalization" not in ops
    unfused = core.compile_model(cnn().SerializeToString(), "TEMPLATE",
                                 {"DISABLE_TRANSFORMATIONS": True}).device_model.plan
    assert "BatchNormalization" in [step.op_type for step in unfused.steps]
    ppocr_plan = core.compile_model(ppocr_cls_path(), "TEMPLATE").device_model.plan
    assert "Constant" not in [step.op_type for step in ppocr_plan.steps]


def test_imported_weights_are_views_not_copies(core):
    data = core.compile_model(mlp().SerializeToString(), "TEMPLATE").export_model()
    plan = core.import_model(data, "TEMPLATE").device_model.plan
    assert plan.constants and all(not a.flags.owndata for a in plan.constants.values())


def test_unsupported_operator_names_the_node(core):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="ok"),
         helper.make_node("Det", ["r"], ["y"], name="determinant")],
        "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
    )
    with pytest.raises(UnsupportedOperatorError) as info:
        core.compile_model(helper.make_model(graph).SerializeToString(), "TEMPLATE")
    assert (info.value.op_type, info.value.node_name, info.value.device_name) == (
        "Det", "determinant", "TEMPLATE")


def test_invalid_graph_is_reported(core):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["nowhere"], ["y"])], "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    with pytest.raises(InvalidModelError):
        core.compile_model(helper.make_model(graph).SerializeToString(), "TEMPLATE")


def test_damaged_plan_payload_is_refused():
    plan = ember.Core().compile_model(mlp().SerializeToString(), "TEMPLATE").device_model.plan
    payload = plan_format.dumps(plan)
    assert plan_format.loads(payload).num_slots == plan.num_slots
    with pytest.raises(BlobFormatError, match="magic"):
        plan_format.loads(b"X" + payload[1:])
    with pytest.raises(BlobFormatError):
        plan_format.loads(payload[:40])
    with pytest.raises(BlobFormatError, match="outside"):
        plan_format.loads(payload[: len(payload) - 64])


def test_precision_hint_other_than_f32_is_refused(core):
    with pytest.raises(ember.errors.PropertyValueError, match="f32"):
        core.compile_model(mlp().SerializeToString(), "TEMPLATE",
                           {"INFERENCE_PRECISION_HINT": "f16"})


def test_the_readme_lists_every_operator_and_only_those():
    """What plugins/template/README.md says the device runs is what its kernels register."""
    import re
    from pathlib import Path

    from ember_template.kernels import KERNELS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    match = re.search(r"(\d+) operators of the default ONNX domain: ([^.]+)\.", readme)
    assert match, "the README's Operators section lost its list"
    listed = {name.strip() for name in match.group(2).replace("\n", " ").split(",")}
    assert int(match.group(1)) == len(listed)
    assert listed == set(KERNELS), sorted(listed ^ set(KERNELS))
