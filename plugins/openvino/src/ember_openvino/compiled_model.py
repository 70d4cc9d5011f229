"""A model compiled for OPENVINO: an ``openvino.CompiledModel`` and one infer request per thread.

The call path is the one OpenVINO's own ``InferRequest.infer(inputs, share_inputs=True)``
takes, less its Python dispatch: the core has already checked every input's dtype and shape,
so each array is wrapped in a ``Tensor`` that shares its memory (no copy), set on the request by
index, and the request runs in C++ with the GIL released. The outputs are copied out of the
request's own tensors, which the next inference overwrites.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.plugin import InferenceInputError, Port


class OpenVinoCompiledModel:
    """Follows :class:`ember.DeviceModel`."""

    def __init__(self, compiled: Any, inputs: list[Port], outputs: list[Port],
                 runtime_properties: dict[str, Any], tensor_type: type,
                 feeds: tuple[tuple[int, int], ...], results: tuple[int, ...]) -> None:
        #: OpenVINO's compiled model (the bindings' class); ``export_model`` writes it out
        self.compiled = compiled
        self.inputs = inputs
        self.outputs = outputs
        #: what OpenVINO resolved: NUM_STREAMS, OPTIMAL_NUMBER_OF_INFER_REQUESTS, precision...
        self.runtime_properties = runtime_properties
        self._tensor = tensor_type
        #: (index among the inputs, index among OpenVINO's inputs), for the inputs OpenVINO
        #: reads; and OpenVINO's index of each output
        self._feeds = feeds
        self._results = results
        # an infer request runs one inference at a time: one per calling thread (the core's
        # infer requests may run on several threads at once)
        self._local = threading.local()
        #: the OpenVINO blob this model was imported from, exported again as it is: OpenVINO
        #: (2026.4) writes a blob it cannot import when it exports an imported model. It also
        #: keeps alive the memory OpenVINO imported from in place (``compiler.import_blob``)
        self.imported_blob: bytes | memoryview | None = None

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        try:
            request = self._local.request
        except AttributeError:
            request = self._local.request = self.compiled.create_infer_request()
        tensor = self._tensor
        # a Tensor sharing an array's memory does not keep the array alive: the copies made
        # below are held here until the inference is done
        held = []
        try:
            for position, index in self._feeds:
                array = inputs[position]
                if not (array.flags.c_contiguous and array.flags.writeable):
                    # OpenVINO shares only writeable C-ordered memory (it never writes inputs)
                    array = np.array(array, order="C")
                    held.append(array)
                request.set_input_tensor(index, tensor(array, shared_memory=True))
            # the bindings' own infer: no inputs to set (set above), outputs returned as views
            # of the request's tensors (not copied twice: they are copied below)
            request.infer({}, True, False)
        except RuntimeError as exc:  # OpenVINO's own exception type for a shape it cannot run
            shapes = ", ".join(f"{port.name!r} {list(a.shape)}"
                               for port, a in zip(self.inputs, inputs, strict=False))
            raise InferenceInputError(f"OpenVINO cannot run the model on inputs {shapes}: "
                                      f"{str(exc).strip()}") from exc
        # the request's output tensors are overwritten by its next inference: copy them out
        return [np.array(request.get_output_tensor(index).data, copy=True)
                for index in self._results]
