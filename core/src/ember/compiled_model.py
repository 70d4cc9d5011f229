"""A model compiled for a device: call it, make infer requests from it, export it.

Shaped like OpenVINO's ``CompiledModel``: ``compiled(inputs)`` runs one inference and returns the
outputs, which can be read by name, by index or by output port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Union

import numpy as np

from ember import properties as props
from ember.device import DeviceDescription, DeviceModel
from ember.errors import InferenceInputError, PluginError, UnknownPropertyError
from ember.hints import runtime_properties
from ember.infer_request import InferRequest  # lives in its own module; importable here too
from ember.model import Port, find_port
from ember.tensor import Tensor, as_array

#: What an inference accepts: one array, a list in input order, or a dict keyed by input name,
#: index or Port.
Inputs = Union[np.ndarray, Sequence[Any], Mapping[Union[str, int, Port], Any]]  # noqa: UP007


class InferResult(Mapping[str, np.ndarray]):
    """Outputs of one inference, keyed by output name; also indexable by position or Port."""

    def __init__(self, ports: Sequence[Port], arrays: Sequence[np.ndarray]) -> None:
        self._ports = list(ports)
        self._arrays = list(arrays)
        self._by_name = {p.name: a for p, a in zip(self._ports, self._arrays, strict=True)}

    def __getitem__(self, key: str | int | Port) -> np.ndarray:  # type: ignore[override]
        if isinstance(key, Port):
            key = key.name
        if isinstance(key, int):
            if not -len(self._arrays) <= key < len(self._arrays):
                raise IndexError(f"output index {key} out of range: "
                                 f"the model has {len(self._arrays)} outputs")
            return self._arrays[key]
        try:
            return self._by_name[key]
        except KeyError:
            raise KeyError(f"no output {key!r}; outputs are {list(self._by_name)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._arrays)

    def to_tuple(self) -> tuple[np.ndarray, ...]:
        return tuple(self._arrays)

    def to_dict(self) -> dict[str, np.ndarray]:
        return dict(self._by_name)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {a.dtype}{list(a.shape)}" for n, a in self._by_name.items())
        return f"<InferResult {shapes}>"


def prepare_inputs(ports: Sequence[Port], inputs: Inputs) -> list[np.ndarray]:
    """Turn what the user passed into one checked array per input port, in port order."""
    if isinstance(inputs, Mapping):
        by_name: dict[str, Any] = {}
        names = [p.name for p in ports]
        for key, value in inputs.items():
            if isinstance(key, Port):
                key = key.name
            if isinstance(key, int):
                if not 0 <= key < len(ports):
                    raise InferenceInputError(f"input index {key} out of range: model has "
                                              f"{len(ports)} inputs {names}")
                key = ports[key].name
            if key not in names:
                raise InferenceInputError(f"model has no input {key!r}; inputs are {names}")
            by_name[key] = value
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InferenceInputError(f"missing input(s) {missing}; the model needs {names}")
        values = [by_name[n] for n in names]
    elif isinstance(inputs, np.ndarray | Tensor) or np.isscalar(inputs) or (
        len(ports) == 1 and not _is_sequence_of_arrays(inputs)
    ):
        values = [inputs]  # one input given directly, possibly as nested lists
    else:
        values = list(inputs)
    if len(values) != len(ports):
        raise InferenceInputError(
            f"got {len(values)} input(s); the model needs {len(ports)}: {[str(p) for p in ports]}"
        )
    return [_check(port, value) for port, value in zip(ports, values, strict=True)]


def _is_sequence_of_arrays(inputs: Any) -> bool:
    return isinstance(inputs, list | tuple) and all(isinstance(v, np.ndarray | Tensor)
                                                    for v in inputs)


def _check(port: Port, value: Any) -> np.ndarray:
    try:
        array = np.asarray(as_array(value))
    except (ValueError, TypeError) as exc:  # ragged nested lists, objects numpy cannot convert
        raise InferenceInputError(
            f"input {port.name!r} is not an array numpy can build ({exc})") from exc
    if array.dtype != port.dtype:
        # Accept what converts without changing kind (float64 -> float32, int -> float), as
        # numpy users expect; refuse the rest (float -> int would silently truncate).
        if not np.can_cast(array.dtype, port.dtype, casting="same_kind"):
            raise InferenceInputError(
                f"input {port.name!r} expects {port.dtype}, got {array.dtype}"
            )
        array = array.astype(port.dtype)
    fits = array.ndim == len(port.shape) and all(
        not isinstance(want, int) or want == got
        for want, got in zip(port.shape, array.shape, strict=True)
    )
    if not fits:
        raise InferenceInputError(
            f"input {port.name!r} expects shape {_dims(port.shape)}, got {list(array.shape)}"
        )
    return array


def _dims(shape: Sequence[object]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


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
                              "which is not an ember.device.DeviceModel")
        self.device_model = device_model
        self.device = device
        self.config = dict(config)
        self._exporter = exporter
        self._loaded_from_cache = loaded_from_cache
        self.inputs: list[Port] = list(device_model.inputs)
        self.outputs: list[Port] = list(device_model.outputs)

    # -- running -----------------------------------------------------------------------------

    def __call__(self, inputs: Inputs | None = None, share_inputs: bool = True,
                 share_outputs: bool = False, *, decode_strings: bool = True) -> InferResult:
        """Run one inference and return its outputs (OpenVINO's sharing flags are accepted:
        Ember never copies inputs here, and outputs are fresh arrays)."""
        return self._infer_arrays(prepare_inputs(self.inputs, {} if inputs is None else inputs))

    def infer_new_request(self, inputs: Inputs | None = None) -> InferResult:
        """Run one inference on a new infer request (thread-safe; OpenVINO's spelling)."""
        return self._infer_arrays(prepare_inputs(self.inputs, {} if inputs is None else inputs))

    def _infer_arrays(self, arrays: list[np.ndarray]) -> InferResult:
        """One inference on inputs already checked by ``prepare_inputs``."""
        results = list(self.device_model.infer(arrays))
        if len(results) != len(self.outputs):
            raise PluginError(f"{self.device.name} returned {len(results)} outputs for a model "
                              f"with {len(self.outputs)}")
        return InferResult(self.outputs, results)

    def create_infer_request(self) -> InferRequest:
        return InferRequest(self)

    def input(self, key: str | int | Port = 0) -> Port:
        return _port(self.inputs, key, "input")

    def output(self, key: str | int | Port = 0) -> Port:
        return _port(self.outputs, key, "output")

    # -- exporting and properties ------------------------------------------------------------

    def export_model(self) -> bytes:
        """The compiled model as an Ember blob, for ``Core.import_model`` on a later start."""
        return self._exporter(self)

    def get_property(self, key: str) -> Any:
        values = self._properties()
        try:
            return values[key]
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
    """A port by name, index or Port (ember.model.find_port); an unknown output is a KeyError,
    as in any Mapping."""
    try:
        return find_port(list(ports), key, kind)
    except InferenceInputError as exc:
        if kind == "input":
            raise
        raise KeyError(str(exc)) from None
