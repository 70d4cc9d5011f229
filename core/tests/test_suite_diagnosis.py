"""The conformance suite's messages name the likely cause of a failed check: a device whose default
precision (bf16) changes results beyond f32 tolerance is told so."""

from typing import Any

import numpy as np
import pytest

import ember
from ember.testing.cells import Cell
from ember.testing.toy import ToyPlugin
from ember.testing.zoo import zoo_model


def bf16(array: np.ndarray) -> np.ndarray:
    """``array`` rounded (truncated) to bfloat16 and widened back to float32."""
    return (np.ascontiguousarray(array, np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)


class ReducedPrecisionModel:
    """Runs the model with onnx's reference evaluator, then keeps bf16's 8 bits of mantissa."""

    def __init__(self, model: Any) -> None:
        from onnx.reference import ReferenceEvaluator

        self.inputs, self.outputs = model.inputs, model.outputs
        self.evaluator = ReferenceEvaluator(model.proto)

    def infer(self, inputs):
        feeds = {port.name: array for port, array in zip(self.inputs, inputs, strict=True)}
        return [bf16(out) for out in self.evaluator.run(None, feeds)]


class Bf16Plugin(ToyPlugin):
    def __init__(self, default: str) -> None:
        super().__init__("LOWP", 1)
        self.default = default

    @ember.hookimpl
    def supported_metrics(self, device_name):
        metrics = super().supported_metrics(device_name)
        if metrics is not None:
            metrics["SUPPORTED_CONFIG_KEYS"] = {"INFERENCE_PRECISION_HINT": self.default}
            metrics["CACHING_PROPERTIES"] = ["INFERENCE_PRECISION_HINT"]
        return metrics

    @ember.hookimpl
    def compile(self, model, device_name):
        return ReducedPrecisionModel(model) if self._mine(device_name) else None


@pytest.mark.parametrize(("default", "says"), [
    ("bf16", "The compiled model runs in bf16 (INFERENCE_PRECISION_HINT), which the suite did "
             "not ask for"),
    ("f32", "The differences are of the size bf16 or f16 rounding gives"),
])
def test_a_device_computing_in_bf16_by_default_is_told_so(tmp_path, default, says):
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(Bf16Plugin(default), "lowp")
    cell = Cell("LOWP.0", zoo_model("mlp"), "off", tmp_path)
    compiled = core.compile_model(cell.model.load(), "LOWP.0")
    with pytest.raises(AssertionError, match=r"differs from onnx\.reference") as info:
        cell.check_reference(compiled)
    assert says in str(info.value)


def test_a_plain_wrong_result_gets_no_precision_note(tmp_path):
    core = ember.Core(load_installed_plugins=False)
    core.register_plugin(ToyPlugin("TOY", 1), "toy")  # adds one to its input
    cell = Cell("TOY.0", zoo_model("mlp"), "off", tmp_path)
    compiled = core.compile_model(cell.model.load(), "TOY.0")
    with pytest.raises(AssertionError) as info:
        cell.check_reference(compiled)
    assert "precision" not in str(info.value) and "bf16" not in str(info.value)
