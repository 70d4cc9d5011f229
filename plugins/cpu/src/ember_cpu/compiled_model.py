"""A model compiled for CPU: an onnxruntime session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.errors import InvalidModelError, PropertyValueError
from ember.model import Model, Port


class CpuCompiledModel:
    """Follows :class:`ember.device.DeviceModel`."""

    def __init__(self, session: Any, inputs: list[Port], outputs: list[Port]) -> None:
        self.session = session
        self.inputs = inputs
        self.outputs = outputs
        self._output_names = [p.name for p in outputs]

    @classmethod
    def build(cls, model: Model, num_threads: int) -> CpuCompiledModel:
        import onnxruntime as ort

        if num_threads < 0:
            raise PropertyValueError(f"INFERENCE_NUM_THREADS must be >= 0, not {num_threads}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        try:
            session = ort.InferenceSession(
                model.to_bytes(), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise InvalidModelError(str(model.path or model.friendly_name), str(exc)) from exc
        return cls(session, list(model.inputs), list(model.outputs))

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        feeds = {port.name: array for port, array in zip(self.inputs, inputs, strict=True)}
        return self.session.run(self._output_names, feeds)
