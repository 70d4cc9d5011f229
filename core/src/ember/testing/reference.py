"""Expected outputs: ONNX's own reference implementation, the oracle for every device, and
onnxruntime, the one real models are compared with.

The reference implementation (``onnx.reference`` with BatchNormalization in inference mode) lives
in ``ember.model.onnx_reference``, where production code (the GPU device's constant folding)
uses it too.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx

from ember.model.onnx_reference import BatchNormalization, reference_outputs

__all__ = ["BatchNormalization", "onnxruntime_outputs", "reference_outputs"]


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
