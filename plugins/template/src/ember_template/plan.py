"""The execution plan: what TEMPLATE's compile produces, export writes and import reads back.

A plan is a flat list of steps over numbered value *slots*. Constants (weights, folded values) are
laid out once at compile time; running the plan is a loop that calls one kernel per step and drops
each intermediate value after its last use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ember.plugin import InferenceInputError, Port
from ember_template.kernels import KERNELS

#: Marks an omitted optional input of a step.
NO_SLOT = -1


@dataclass(frozen=True)
class Step:
    """One kernel call: read ``inputs`` slots, write ``outputs`` slots, then free ``release``."""

    op_type: str
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    release: tuple[int, ...] = ()


@dataclass
class Plan:
    """A compiled model for the TEMPLATE device."""

    opset: int
    num_slots: int
    inputs: list[Port]
    outputs: list[Port]
    input_slots: list[int]
    output_slots: list[int]
    constants: dict[int, np.ndarray]
    steps: list[Step]
    #: Constants that are the model's own initializers: slot -> (initializer name, "" as it is
    #: or "T" transposed). A weightless export stores these instead of the bytes.
    weight_names: dict[int, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Resolved once here rather than looked up by name on every step of every inference.
        self._kernels = [KERNELS[step.op_type] for step in self.steps]

    def len_written(self) -> int:
        """How many slot writes the plan holds: constants, inputs and step outputs."""
        return (len(self.constants) + len(self.input_slots)
                + sum(len(step.outputs) for step in self.steps))

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        slots: list[np.ndarray | None] = [None] * self.num_slots
        for slot, value in self.constants.items():
            slots[slot] = value
        for slot, value in zip(self.input_slots, arrays, strict=True):
            slots[slot] = value
        for step, kernel in zip(self.steps, self._kernels, strict=True):
            args = [slots[i] if i != NO_SLOT else None for i in step.inputs]
            try:
                results = kernel(args, step.attrs, self.opset)
            except (ValueError, TypeError, IndexError, KeyError, ArithmeticError,
                    MemoryError) as exc:  # numpy's, for inputs (or a plan) this step cannot run
                raise _step_error(step, args, self.inputs, arrays, exc) from exc
            for slot, value in zip(step.outputs, results, strict=False):
                if slot != NO_SLOT:
                    slots[slot] = value
            for slot in step.release:
                slots[slot] = None
        # Kernels may return views (Reshape, Identity...). An output that is a constant, a view of
        # imported weights or of a caller's input is copied, so that writing into a result can
        # change neither the plan nor the caller's inputs.
        outputs = []
        for slot in self.output_slots:
            value = slots[slot]
            assert value is not None
            if (slot in self.constants or not value.flags.writeable
                    or any(np.may_share_memory(value, a) for a in arrays)):
                value = value.copy()
            outputs.append(value)
        return outputs


def _step_error(step: Step, args: list[np.ndarray | None], ports: list[Port],
                arrays: Sequence[np.ndarray], exc: Exception) -> InferenceInputError:
    """An Ember error naming the node that cannot run, what it was given, and the inputs."""
    given = ", ".join("None" if a is None else f"{a.dtype}{list(a.shape)}" for a in args)
    inputs = ", ".join(f"{port.name!r} {list(np.shape(a))}" for port, a in zip(ports, arrays,
                                                                               strict=False))
    return InferenceInputError(
        f"TEMPLATE cannot run node {step.name!r} ({step.op_type}) on {given} "
        f"({type(exc).__name__}: {exc}); the model's inputs were {inputs}")
