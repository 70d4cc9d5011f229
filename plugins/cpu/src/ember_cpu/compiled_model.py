"""A model compiled for CPU: an onnxruntime session and the ORT bytes it can be rebuilt from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.errors import InferenceInputError
from ember.model import Port


class CpuCompiledModel:
    """Follows :class:`ember.device.DeviceModel`."""

    def __init__(self, session: Any, inputs: list[Port], outputs: list[Port],
                 ort_bytes: bytes | memoryview,
                 runtime_properties: dict[str, Any] | None = None) -> None:
        self.session = session
        #: NUM_STREAMS and OPTIMAL_NUMBER_OF_INFER_REQUESTS (streams.py), read by the core
        self.runtime_properties = dict(runtime_properties or {})
        self.inputs = inputs
        self.outputs = outputs
        # onnxruntime uses these bytes in place (use_ort_model_bytes_directly): keep them alive
        # (a view keeps the object it views alive).
        self.ort_bytes = ort_bytes
        self._output_names = [p.name for p in outputs]

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        feeds = {port.name: array for port, array in zip(self.inputs, inputs, strict=True)}
        try:
            return self.session.run(self._output_names, feeds)
        except Exception as exc:  # onnxruntime's own types (InvalidArgument, Fail, ...)
            shapes = ", ".join(f"{name!r} {list(a.shape)}" for name, a in feeds.items())
            raise InferenceInputError(f"onnxruntime cannot run the model on inputs {shapes}: "
                                      f"{str(exc).strip()}") from exc
