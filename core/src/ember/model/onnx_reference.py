"""ONNX's reference implementation (``onnx.reference``), run in inference mode.

Devices use it to fold nodes whose inputs are all known at compile time when they have no
folding of their own for that operator (the GPU device does); the test kit uses it as the oracle
every device is compared with (``ember.testing.reference_outputs``). Importing this module
imports onnx: import it where a node is folded or an output computed, not at start-up.
"""

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
