"""Inference inputs: what users pass, turned into one checked array per input port.

``prepare_inputs`` accepts every form OpenVINO does (one array, a list in port order, a dict keyed
by name, index or Port; Tensors, nested lists, scalars) and raises ``InferenceInputError`` naming
the input for anything it cannot run. ``InputChecks`` is the same, worked out once per compiled
model: the common call (a dict keyed by name, or a list, of numpy arrays that already have the
ports' dtypes and shapes) is checked against precomputed tuples and nothing is converted; anything
else goes through ``prepare_inputs``, so errors and conversions are the same on both paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Union

import numpy as np

from ember.errors import InferenceInputError
from ember.model.port import Port
from ember.runtime.tensor import Tensor, as_array

#: What an inference accepts: one array, a list in input order, or a dict keyed by input name,
#: index or Port (a mapping's key type is invariant: a dict keyed by names only is its own case).
Inputs = Union[np.ndarray, Sequence[Any], Mapping[str, Any],  # noqa: UP007
               Mapping[Union[str, int, Port], Any]]  # noqa: UP007


#: One port's checks, as plain values compared on every call: (dtype, shape, rank, pick, sizes).
#: ``shape`` is the whole shape when every dimension is fixed (one tuple comparison), else None;
#: for a shape with dynamic dimensions and fixed ones, ``pick`` picks the fixed ones out of an
#: array's shape (an itemgetter, C code: no Python loop per call) and ``sizes`` are their sizes.
#: A plain tuple, only ever unpacked: a NamedTuple class costs every warm start its creation.
_Expected = tuple[np.dtype, tuple[int, ...] | None, int,
                  Callable[[tuple[int, ...]], Any] | None, Any]


class InputChecks:
    """``prepare_inputs`` for one list of ports, with what does not depend on the values
    computed once (a compiled model keeps one: its inferences are the hot path)."""

    def __init__(self, ports: Sequence[Port]) -> None:
        self.ports = tuple(ports)
        self.names = tuple(port.name for port in self.ports)
        self._expected = tuple(_expected(port) for port in self.ports)

    def prepare(self, inputs: Inputs) -> list[np.ndarray]:
        """One checked array per port, in port order (see :func:`prepare_inputs`).

        The plain forms (an exact dict by name, a list or tuple, one array for a one-input
        model) of numpy arrays or Tensors with the ports' dtypes and shapes are returned as
        given; anything else, or anything that would need a conversion or an error message,
        goes to ``prepare_inputs``.
        """
        kind, names = type(inputs), self.names
        values: Sequence[Any] | None = None
        if kind is dict:
            if len(inputs) == len(names):  # then every name present means no other key
                try:
                    values = list(map(inputs.__getitem__, names))  # type: ignore[union-attr]
                except KeyError:  # keyed by index or Port, or a wrong name
                    values = None
        elif kind is list or kind is tuple:
            if len(inputs) == len(names):  # type: ignore[arg-type]
                values = inputs  # type: ignore[assignment]
        elif kind is np.ndarray and len(names) == 1:
            values = (inputs,)  # type: ignore[assignment]
        if values is not None:
            arrays = _as_given(values, self._expected, tensors=True)
            if arrays is not None:
                return arrays
        return prepare_inputs(self.ports, inputs)

    def are_feeds(self, inputs: dict[Any, Any]) -> bool:
        """Whether a dict can go to the device as it is: keyed by exactly the port names, each
        a numpy array (not a Tensor) of its port's dtype and shape."""
        if len(inputs) != len(self.names):
            return False
        try:
            values = list(map(inputs.__getitem__, self.names))
        except KeyError:
            return False
        return _as_given(values, self._expected, tensors=False) is not None


def _as_given(values: Sequence[Any], expected: tuple[_Expected, ...], *, tensors: bool
              ) -> list[np.ndarray] | None:
    """The arrays, one per port, when each value is a numpy array (or, with ``tensors``, a
    Tensor's) of its port's dtype and shape; None as soon as one is not.

    A loop with no comprehension or generator in one frame: right after onnxruntime has run, with
    the CPU's caches cold, each Python frame on this path costs more than the comparisons do.
    """
    arrays = []
    for value, (dtype, shape, rank, pick, sizes) in zip(values, expected, strict=True):
        if type(value) is not np.ndarray:
            if not tensors or type(value) is not Tensor:
                return None
            value = value.data
        if value.dtype is not dtype and value.dtype != dtype:  # the same object, mostly
            return None
        got = value.shape
        if shape is not None:
            if got != shape:
                return None
        elif len(got) != rank or (pick is not None and pick(got) != sizes):
            return None
        arrays.append(value)
    return arrays


def _expected(port: Port) -> _Expected:
    # a fixed dimension is an int, as _check reads one (a name or None matches any size)
    fixed = [(axis, size) for axis, size in enumerate(port.shape) if isinstance(size, int)]
    sizes = tuple(size for _, size in fixed)
    if len(fixed) == len(port.shape):
        return (np.dtype(port.dtype), sizes, len(sizes), None, None)
    if not fixed:
        return (np.dtype(port.dtype), None, len(port.shape), None, None)
    # itemgetter of one axis returns the item, of several a tuple: compare like with like
    pick = itemgetter(*(axis for axis, _ in fixed))
    return (np.dtype(port.dtype), None, len(port.shape), pick,
            sizes[0] if len(sizes) == 1 else sizes)


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
