"""The outputs of one inference (:class:`InferResult`, over a model's :class:`OutputNames`), and
the part of a compiled model an infer request runs (:class:`InferTarget`).

``ember.runtime.compiled_model`` builds results and creates infer requests;
``ember.runtime.infer_request`` reads results and runs a compiled model through
:class:`InferTarget`: both import this module, and neither imports the other's, so that no import
runs in a circle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ember.model.port import Port

if TYPE_CHECKING:
    from ember.contract.device import DeviceDescription, DeviceModel
    from ember.runtime.inputs import InputChecks


class OutputNames:
    """A model's output ports with their names and positions, worked out once per compiled
    model and shared by every result it returns."""

    def __init__(self, ports: Sequence[Port]) -> None:
        self.ports = tuple(ports)
        self.names = tuple(port.name for port in self.ports)
        self.position = {name: index for index, name in enumerate(self.names)}


class InferResult(Mapping[str, np.ndarray]):
    """Outputs of one inference, keyed by output name; also indexable by position or Port."""

    __slots__ = ("_arrays", "_outputs")

    def __init__(self, ports: Sequence[Port], arrays: Sequence[np.ndarray]) -> None:
        self._outputs = OutputNames(ports)
        self._arrays = list(arrays)
        if len(self._arrays) != len(self._outputs.names):
            raise ValueError(f"{len(self._arrays)} arrays for {len(self._outputs.names)} outputs")

    @classmethod
    def of(cls, outputs: OutputNames, arrays: list[np.ndarray]) -> InferResult:
        """A result over a compiled model's own ``OutputNames`` and one array per output: the
        per-inference path, which builds nothing but the result itself."""
        result = cls.__new__(cls)
        result._outputs = outputs
        result._arrays = arrays
        return result

    def __getitem__(self, key: str | int | Port) -> np.ndarray:
        if isinstance(key, Port):
            key = key.name
        if isinstance(key, int):
            if not -len(self._arrays) <= key < len(self._arrays):
                raise IndexError(f"output index {key} out of range: "
                                 f"the model has {len(self._arrays)} outputs")
            return self._arrays[key]
        try:
            return self._arrays[self._outputs.position[key]]
        except KeyError:
            raise KeyError(f"no output {key!r}; outputs are {list(self._outputs.names)}"
                           ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs.names)

    def __len__(self) -> int:
        return len(self._arrays)

    def to_tuple(self) -> tuple[np.ndarray, ...]:
        """The output arrays, in the model's output order."""
        return tuple(self._arrays)

    def to_dict(self) -> dict[str, np.ndarray]:
        """The output arrays by output name, in the model's output order."""
        return dict(zip(self._outputs.names, self._arrays, strict=True))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {a.dtype}{list(a.shape)}"
                           for n, a in zip(self._outputs.names, self._arrays, strict=True))
        return f"<InferResult {shapes}>"


class InferTarget(Protocol):
    """What an infer request uses of its :class:`ember.CompiledModel`."""

    device: DeviceDescription
    device_model: DeviceModel
    input_checks: InputChecks
    output_names: OutputNames
    inputs: list[Port]
    outputs: list[Port]
    _output_count: int
    _infer_feeds: Callable[[dict[str, np.ndarray]], Sequence[np.ndarray]] | None

    def _infer_arrays(self, arrays: list[np.ndarray]) -> InferResult: ...

    def _checked(self, results: Sequence[np.ndarray]) -> list[np.ndarray]: ...
