"""A model compiled for a device: call it, make infer requests from it, export it.

Shaped like OpenVINO's ``CompiledModel``: ``compiled(inputs)`` runs one inference and returns the
outputs, which can be read by name, by index or by output port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, overload

import numpy as np

from ember import properties as props
from ember.contract.device import DeviceDescription, DeviceModel
from ember.contract.hints import runtime_properties
from ember.errors import InferenceInputError, PluginError, UnknownPropertyError
from ember.model.port import Port, find_port
from ember.properties.typed import as_returned
from ember.runtime.infer_result import InferResult, OutputNames
from ember.runtime.inputs import InputChecks, Inputs, prepare_inputs

if TYPE_CHECKING:
    from ember.runtime.infer_request import InferRequest

# prepare_inputs and Inputs lived here first: still importable from this module, as InferRequest
# is (imported on first use: a start that only calls the compiled model never needs it).


def __getattr__(name: str) -> Any:
    if name == "InferRequest":
        from ember.runtime.infer_request import InferRequest

        return InferRequest
    raise AttributeError(f"module 'ember.runtime.compiled_model' has no attribute {name!r}")


__all__ = ["CompiledModel", "InferRequest", "InferResult", "Inputs", "OutputNames",
           "prepare_inputs"]


class CompiledModel:
    """A model compiled for one device. Made by ``Core.compile_model`` or ``Core.import_model``."""

    def __init__(
        self,
        device_model: DeviceModel,
        device: DeviceDescription,
        config: Mapping[str, Any],
        exporter: Callable[[CompiledModel], bytes],
        *,
        loaded_from_cache: bool = False,
    ) -> None:
        # A duck-type check: isinstance() on a runtime Protocol costs more than a cache hit's
        # bookkeeping.
        if not (callable(getattr(device_model, "infer", None))
                and hasattr(device_model, "inputs") and hasattr(device_model, "outputs")):
            raise PluginError(f"{device.name} returned {type(device_model).__name__}, "
                              "which is not an ember.contract.device.DeviceModel")
        self.device_model = device_model
        self.device = device
        self.config = dict(config)
        self._exporter = exporter
        self._loaded_from_cache = loaded_from_cache
        self.inputs: list[Port] = list(device_model.inputs)
        self.outputs: list[Port] = list(device_model.outputs)
        # Everything an inference checks or names that does not depend on the values: worked
        # out here, not on every call, where it would be a visible part of a small model's
        # inference (an audio or classifier model runs in well under a millisecond).
        self.input_checks = InputChecks(self.inputs)
        self.output_names = OutputNames(self.outputs)
        self._output_count = len(self.outputs)
        #: the device's optional inference on a dict keyed by input name (DeviceModel)
        self._infer_feeds: Callable[[dict[str, np.ndarray]], Sequence[np.ndarray]] | None = \
            getattr(device_model, "infer_feeds", None)

    # -- running -----------------------------------------------------------------------------

    def __call__(self, inputs: Inputs | None = None, share_inputs: bool = True,
                 share_outputs: bool = False, *, decode_strings: bool = True) -> InferResult:
        """Run one inference and return its outputs (OpenVINO's sharing flags are accepted:
        Ember never copies inputs here, and outputs are fresh arrays)."""
        # _infer_arrays inlined: right after onnxruntime has run, with the CPU's caches cold,
        # every Python frame on this path is a measurable share of a small model's inference
        # (benchmarks/bench_throughput.py).
        infer_feeds = self._infer_feeds  # one read: AUTO may swap it between two calls
        if (infer_feeds is not None and type(inputs) is dict
                and self.input_checks.are_feeds(inputs)):
            results = infer_feeds(inputs)  # the caller's dict is what the device takes
        else:
            results = self.device_model.infer(
                self.input_checks.prepare({} if inputs is None else inputs))
        if type(results) is not list or len(results) != self._output_count:
            results = self._checked(results)
        return InferResult.of(self.output_names, results)

    def infer_new_request(self, inputs: Inputs | None = None) -> InferResult:
        """Run one inference on a new infer request (thread-safe; OpenVINO's spelling)."""
        return self._infer_arrays(self.input_checks.prepare({} if inputs is None else inputs))

    def _infer_arrays(self, arrays: list[np.ndarray]) -> InferResult:
        """One inference on inputs already checked by ``input_checks``."""
        results = self.device_model.infer(arrays)
        if type(results) is not list or len(results) != self._output_count:
            results = self._checked(results)
        return InferResult.of(self.output_names, results)

    def _checked(self, results: Sequence[np.ndarray]) -> list[np.ndarray]:
        """A plugin's results as a list of one array per output (a plugin may return any
        sequence); PluginError for a wrong count."""
        results = list(results)
        if len(results) != self._output_count:
            raise PluginError(f"{self.device.name} returned {len(results)} outputs for a model "
                              f"with {len(self.outputs)}")
        return results

    def create_infer_request(self) -> InferRequest:
        """A new :class:`~ember.InferRequest` on this compiled model, for one inference at a time
        (each thread or asynchronous job uses its own)."""
        from ember.runtime.infer_request import InferRequest

        return InferRequest(self)

    def input(self, key: str | int | Port = 0) -> Port:
        """An input port by name, index or port (the first one by default); ``KeyError`` for an
        unknown name."""
        return _port(self.inputs, key, "input")

    def output(self, key: str | int | Port = 0) -> Port:
        """An output port by name, index or port (the first one by default); ``KeyError`` for an
        unknown name."""
        return _port(self.outputs, key, "output")

    # -- exporting and properties ------------------------------------------------------------

    @overload
    def export_model(self) -> bytes: ...

    @overload
    def export_model(self, model_stream: IO[bytes]) -> None: ...

    def export_model(self, model_stream: IO[bytes] | None = None) -> bytes | None:
        """The compiled model as an Ember blob, for ``Core.import_model`` on a later start;
        given a binary stream (OpenVINO's other form), the blob is written into it instead."""
        data = self._exporter(self)
        if model_stream is None:
            return data
        model_stream.write(data)
        return None

    def get_property(self, key: str) -> Any:
        """A property's value, in the type OpenVINO returns (see :mod:`ember.properties.typed`)."""
        values = self._properties()
        try:
            return as_returned(key, values[key])
        except KeyError:
            raise UnknownPropertyError(key, "this compiled model", list(values)) from None

    def _properties(self) -> dict[str, Any]:
        values: dict[str, Any] = dict(self.config)
        values.pop(props.CACHE_ENCRYPTION_CALLBACKS, None)  # functions, not a property to show
        values[props.LOADED_FROM_CACHE] = self._loaded_from_cache
        values[props.EXECUTION_DEVICES] = [self.device.name]
        values.update(runtime_properties(self.device_model, values))
        values[props.SUPPORTED_PROPERTIES] = sorted({*values, props.SUPPORTED_PROPERTIES})
        return values

    def __repr__(self) -> str:
        return (f"<CompiledModel on {self.device.name}: {len(self.inputs)} input(s), "
                f"{len(self.outputs)} output(s)>")


def _port(ports: Sequence[Port], key: str | int | Port, kind: str) -> Port:
    """A port by name, index or Port (ember.model.model.find_port); an unknown output is a KeyError,
    as in any Mapping."""
    try:
        return find_port(list(ports), key, kind)
    except InferenceInputError as exc:
        if kind == "input":
            raise
        raise KeyError(str(exc)) from None
