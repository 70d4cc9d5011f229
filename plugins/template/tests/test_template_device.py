"""The TEMPLATE device end to end, checked against onnx.reference on real models."""

import pytest
from onnx import TensorProto, helper

import ember
from ember.plugin import BlobFormatError, UnsupportedOperatorError, read_frame, write_frame
from ember.testing import cnn, mlp, ppocr_cls_path
from ember_template import plan_format


@pytest.fixture(scope="module")
def core():
    return ember.Core()


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


def _shortened_data(payload: bytes) -> bytes:
    """The same plan with 64 bytes cut from its data section, framing redone."""
    frame = read_frame(payload, plan_format.KIND, plan_format.FORMAT_VERSION, sections=2)
    topology, data = (bytes(section) for section in frame.sections)
    return write_frame(plan_format.KIND, plan_format.FORMAT_VERSION, [topology, data[:-64]])


def test_damaged_plan_payload_is_refused():
    plan = ember.Core().compile_model(mlp().SerializeToString(), "TEMPLATE").device_model.plan
    payload = plan_format.dumps(plan)
    assert plan_format.loads(payload).num_slots == plan.num_slots
    with pytest.raises(BlobFormatError, match="magic"):
        plan_format.loads(payload[:-1] + b"X")
    with pytest.raises(BlobFormatError):
        plan_format.loads(payload[:40])
    with pytest.raises(BlobFormatError, match="outside"):  # a constant past its section's end
        plan_format.loads(_shortened_data(payload))


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
