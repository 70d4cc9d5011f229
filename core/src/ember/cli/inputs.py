"""Inputs for ``ember run`` and ``ember benchmark``: ``.npy`` files, shapes, seeded random arrays.

Arrays are read with ``np.load(..., allow_pickle=False)``: a file holding Python objects is
refused, never unpickled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import click
import numpy as np

from ember.errors import InferenceInputError
from ember.model.port import Port


def parse_assignments(values: Iterable[str], option: str,
                      ports: Sequence[Port]) -> dict[str, str]:
    """``NAME=VALUE`` options by input name; a bare ``VALUE`` names a one-input model's input."""
    names = [p.name for p in ports]
    parsed: dict[str, str] = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals:
            if len(names) != 1:
                raise click.BadParameter(
                    f"{value!r}: give NAME=..., the model's inputs are {names}", param_hint=option)
            name, text = names[0], value
        if name not in names:
            raise click.BadParameter(f"the model has no input {name!r}; its inputs are {names}",
                                     param_hint=option)
        if name in parsed:
            raise click.BadParameter(f"input {name!r} is given twice", param_hint=option)
        parsed[name] = text
    return parsed


def parse_shape(text: str, option: str = "--shape") -> tuple[int, ...]:
    """``"1,3,48,192"`` (or ``1x3x48x192``) as a tuple of positive ints."""
    parts = text.replace("x", ",").split(",")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a shape such as 1,3,48,192",
                                 param_hint=option) from None
    if not dims or any(d <= 0 for d in dims):
        raise click.BadParameter(f"{text!r}: every dimension must be a positive integer",
                                 param_hint=option)
    return dims


def load_array(path: str) -> np.ndarray:
    """An array from a ``.npy`` file, without unpickling anything."""
    try:
        array = np.load(Path(path), allow_pickle=False)
    except ValueError as error:  # object arrays need pickle: refused
        raise InferenceInputError(f"{path}: {error}") from error
    if not isinstance(array, np.ndarray):
        array.close()
        raise InferenceInputError(f"{path} is an .npz archive; give one .npy file per input")
    return array


def concrete_shape(port: Port, given: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape of a random input: ``given`` (checked against the port), or the port's shape
    with a dynamic first (batch) dimension of 1.

    :raises InferenceInputError: when ``given`` does not fit, or another dimension is dynamic.
    """
    if given is not None:
        if len(given) != len(port.shape):
            raise InferenceInputError(
                f"--shape {port.name}: {len(given)} dimensions given, the input has "
                f"{len(port.shape)} ({port})")
        for axis, (want, got) in enumerate(zip(port.shape, given, strict=True)):
            if isinstance(want, int) and want != got:
                raise InferenceInputError(
                    f"--shape {port.name}: dimension {axis} of {port} is {want}, not {got}")
        return given
    shape = []
    for axis, dim in enumerate(port.shape):
        if isinstance(dim, int):
            shape.append(dim)
        elif axis == 0:
            shape.append(1)  # batch
        else:
            example = ",".join(str(d) if isinstance(d, int) else ("1" if i == 0 else "N")
                               for i, d in enumerate(port.shape))
            raise InferenceInputError(
                f"input {port.name!r} has dynamic dimensions ({port}); give its shape with "
                f"--shape {port.name}={example} (numbers in place of N), or an array with "
                f"--input {port.name}=FILE.npy")
    return tuple(shape)


def random_array(shape: Sequence[int], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """Uniform values in [0, 1) for floats, small integers for integers, booleans for bool."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.random(tuple(shape), dtype=np.float64).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, tuple(shape)).astype(bool)
    if dtype.kind in "iu":
        return rng.integers(0, 10, tuple(shape)).astype(dtype)
    raise InferenceInputError(f"cannot make random values of {dtype}; give the input as a file")


def random_feed(ports: Sequence[Port], shapes: Mapping[str, Sequence[int]],
                seed: int) -> dict[str, np.ndarray]:
    """Seeded random arrays of the given shapes, one per port."""
    rng = np.random.default_rng(seed)
    return {port.name: random_array(shapes[port.name], port.dtype, rng) for port in ports}
