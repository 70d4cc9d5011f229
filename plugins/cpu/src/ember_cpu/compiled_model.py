"""A model compiled for CPU: an onnxruntime session and the ORT bytes it can be rebuilt from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ember.plugin import InferenceInputError, Port


class CpuCompiledModel:
    """Follows :class:`ember.contract.device.DeviceModel`."""

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
        self._input_names = tuple(p.name for p in inputs)
        self._output_names = [p.name for p in outputs]
        self._run = binding_run(session)

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        # infer_feeds inlined: one Python frame less on every asynchronous inference
        feeds = dict(zip(self._input_names, inputs, strict=True))
        try:
            return self._run(self._output_names, feeds, None)
        except Exception as exc:  # onnxruntime's own types (InvalidArgument, Fail, ...)
            raise _cannot_run(feeds, exc) from exc

    def infer_feeds(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The inference on inputs keyed by name, checked by the core (DeviceModel)."""
        try:
            return self._run(self._output_names, feeds, None)
        except Exception as exc:  # onnxruntime's own types (InvalidArgument, Fail, ...)
            raise _cannot_run(feeds, exc) from exc


def _cannot_run(feeds: dict[str, np.ndarray], exc: Exception) -> InferenceInputError:
    shapes = ", ".join(f"{name!r} {list(a.shape)}" for name, a in feeds.items())
    return InferenceInputError(f"onnxruntime cannot run the model on inputs {shapes}: "
                               f"{str(exc).strip()}")


def binding_run(session: Any) -> Callable[[list[str], dict[str, np.ndarray], Any], list[Any]]:
    """The ``run(output_names, feeds, run_options)`` to call on every inference.

    ``InferenceSession.run`` checks the feeds again (every input present, none an OrtValue of
    another session, no WebGPU graph capture) before calling its C++ binding, ``_sess.run``; the
    core has already checked the names, dtypes and shapes, and Ember feeds only numpy arrays to a
    CPU session, so the binding is called directly: the second check is a measurable share of a
    small model's inference. A session without the binding (another onnxruntime) keeps its public
    ``run``, which takes the same arguments.
    """
    binding = getattr(session, "_sess", None)
    run = getattr(binding, "run", None)
    return run if callable(run) else session.run
