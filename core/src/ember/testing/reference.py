"""Expected outputs: ONNX's own reference implementation, the oracle for every device, and
onnxruntime, the one real models are compared with."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun


class BatchNormalization(OpRun):
    """Inference-mode BatchNormalization for every opset.

    onnx.reference (1.23) runs BatchNormalization-9 in *training* mode, normalising with the batch's
    own statistics, because it fills in the default ``momentum`` and takes its presence to mean
    training. Opsets 9 to 13 define a single-output BatchNormalization as inference (and 14+ only
    trains with ``training_mode=1``, which no inference model sets), so this replaces it.
    """

    op_domain = ""

    def _run(  # the signature is onnx.reference's: every attribute of every opset's version
        self, x: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray,
        var: np.ndarray, epsilon: float | None = None, **_unused_attributes: object,
    ) -> tuple[np.ndarray]:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        eps = 1e-5 if epsilon is None else epsilon
        y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
        return ((y * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype),)


def reference_outputs(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` on ``inputs`` with ``onnx.reference`` and return its outputs in order."""
    evaluator = ReferenceEvaluator(model, new_ops=[BatchNormalization])
    return list(evaluator.run(None, dict(inputs)))


def onnxruntime_outputs(model: onnx.ModelProto,
                        inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` on ``inputs`` with onnxruntime's CPU provider (its telemetry off), every
    graph optimisation off so that the oracle is the operators themselves."""
    import os

    for name in ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED"):
        os.environ.setdefault(name, "1")
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    return list(session.run(None, dict(inputs)))
