"""How AUTO measures its candidates: inputs made from the ports, then interleaved timed calls.

The candidates are compiled models of one model on different devices. Each first runs one
warm-up call (kernels built per shape, arenas allocated), on a thread of its own that AUTO stops
waiting for after a deadline: a device that takes more than ``WARM_UP_FACTOR`` times the first
candidate's warm-up and more than ``MIN_WARM_UP_LIMIT`` seconds (a first call also builds per
shape), or for the first more than ``FIRST_WARM_UP_LIMIT`` seconds, is left out, since it cannot
be the fastest, and its call finishes on its own (the timing waits for it, up to
``ABANDONED_WAIT``, as it holds the cores).

Those that are left then take turns, one block of calls each per round (for ``BLOCK_SECONDS``,
at least ``MIN_BLOCK_CALLS`` calls, or two of a device whose calls are slow), so that a machine
whose load changes slows all of them alike. Each turn starts after a pause of
``SETTLE_SECONDS``, and only its second half counts: an engine's worker threads keep spinning
for a while after its last call (after onnxruntime's calls on PP-OCR's detector, OpenVINO's next
calls took twice as long for some 40 ms, enough to rank the two the wrong way round), and a
device's own threads wake slowly after the pause (on a model of a millisecond its first calls
took up to twice as long). A device whose better of two turns is ``SLOWER_FACTOR`` times the
best median is dropped, and the others' rounds start over without it (its threads may outlive
its turns); the rounds end after ``ROUNDS`` in all or ``BUDGET`` seconds (at least
``MIN_ROUNDS`` since the last drop). The fastest median wins.

The inputs are the application's own when it has already run one (AUTO serves on CPU while it
measures), else made from the ports: fixed dimensions as they are, a dynamic batch (the first
axis, or a dimension named like one) 1, other dynamic dimensions one of ``DYNAMIC_SIZES`` (the
first that the first candidate runs; one size per dimension name), uniform floats in [0, 1),
zero integers.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ember.runtime import auto_exit

if TYPE_CHECKING:
    from ember.model.port import Port
    from ember.runtime.compiled_model import CompiledModel

#: Sizes tried, in turn, for the dynamic dimensions that are not a batch, in generated inputs,
#: until the first candidate runs them: enough for the strides and paddings of image and audio
#: models, small enough for a slow device's warm-up (48: a text line's height, which PP-OCR's
#: recogniser needs and does not declare).
DYNAMIC_SIZES = (128, 48, 256, 32)
FIRST_WARM_UP_LIMIT = 20.0
WARM_UP_FACTOR = 20.0
#: The least time another candidate's warm-up is given: a first inference also builds per shape
#: (OpenVINO compiles its kernels then), which a few-millisecond reference would cut short.
MIN_WARM_UP_LIMIT = 2.0
SLOWER_FACTOR = 3.0
ROUNDS = 25
MIN_ROUNDS = 3
BUDGET = 1.0
#: Seconds the timed rounds wait for a left-out device's first inference to end (it shares the
#: cores); the application is served meanwhile, so waiting costs it nothing.
ABANDONED_WAIT = 30.0
#: A device's turn in a round: calls until this long has passed, and at least
#: ``MIN_BLOCK_CALLS`` of them unless the turn has lasted ``LONG_BLOCK_SECONDS`` (a slow
#: device's turn then ends after two calls, and the second counts alone).
BLOCK_SECONDS = 0.03
MIN_BLOCK_CALLS = 4
LONG_BLOCK_SECONDS = 0.2
#: The pause before each turn, for the previous device's spinning worker threads to go idle.
SETTLE_SECONDS = 0.05
#: Times a turn is tried while each begins before the application's running inference ends.
BLOCK_ATTEMPTS = 3
_POLL = 0.05
#: What ``measure`` is given when the application runs inferences meanwhile: entered around each
#: timed turn, it holds the application's new inferences back until the turn ends, and gives
#: True when none of them was still running as the turn began.
AppPause = Callable[[], AbstractContextManager[bool]]
_REFUSED = "it cannot run the inputs measured with"


class Measurement(NamedTuple):
    """What measuring found: per device, the median seconds of a call, or why it has none."""

    seconds: dict[str, float]
    left_out: dict[str, str]

    @property
    def fastest(self) -> str | None:
        return min(self.seconds, key=self.seconds.__getitem__) if self.seconds else None

    def describe(self) -> str:
        """``"CPU 0.071 ms, GPU.0 0.740 ms; TEMPLATE left out (...)"``, fastest first."""
        timed = ", ".join(f"{name} {value * 1e3:.3g} ms" for name, value in
                          sorted(self.seconds.items(), key=lambda item: item[1]))
        others = "; ".join(f"{name} left out ({why})" for name, why in self.left_out.items())
        return "; ".join(part for part in (timed, others) if part)


def sizes_guessed(ports: Sequence[Port]) -> bool:
    """Whether inputs made for ``ports`` guess a size (a dynamic dimension that is not a
    batch): then their timings need not rank the devices as the application's inputs would
    (a small image can favour one device, the application's large one another)."""
    return _shapes(ports, DYNAMIC_SIZES[0]) != _shapes(ports, DYNAMIC_SIZES[1])


def generated_inputs(ports: Sequence[Port], size: int = DYNAMIC_SIZES[0],
                     seed: int = 0) -> list[np.ndarray]:
    """Inputs for ``ports``, ``size`` for the dynamic dimensions that are not a batch."""
    rng = np.random.default_rng(seed)
    arrays = []
    for port, shape in zip(ports, _shapes(ports, size), strict=True):
        dtype = np.dtype(port.dtype)
        if dtype.kind == "f":
            arrays.append(rng.random(shape).astype(dtype))
        else:  # integers, booleans, strings: zeros (an index, a flag, an empty string)
            arrays.append(np.zeros(shape, dtype))
    return arrays


def _shapes(ports: Sequence[Port], size: int) -> list[list[int]]:
    sizes: dict[str, int] = {}
    shapes = []
    for port in ports:
        shape = []
        for axis, dim in enumerate(port.shape):
            if isinstance(dim, int):
                shape.append(dim)
                continue
            named = dim if isinstance(dim, str) and dim else None
            if named is not None and named in sizes:
                shape.append(sizes[named])
                continue
            chosen = 1 if axis == 0 or (named is not None and "batch" in named.lower()) else size
            if named is not None:
                sizes[named] = chosen
            shape.append(chosen)
        shapes.append(shape)
    return shapes


def measure(candidates: Mapping[str, CompiledModel],
            inputs: Sequence[list[np.ndarray]],
            pause_app: AppPause | None = None) -> Measurement:
    """Time each candidate (see the module's docstring); candidates in the order to try them,
    the one expected fastest first. ``inputs`` holds the sets of inputs to try, in turn, until
    the first candidate runs one; the others are timed on that one. If the first candidate runs
    none, nothing is timed: another device accepting inputs that the first refuses says
    nothing about the inputs the application will give. :class:`ember.runtime.auto_exit.Cancelled`
    when the process begins to end meanwhile: no first inference or round starts after that.

    ``pause_app``, when the application runs inferences meanwhile (AUTO serving on one device
    while it measures), holds them back during each turn: they would share the cores with the
    device timed, and slow each device differently. A turn that began while one of them was
    still running is timed again."""
    seconds: dict[str, list[float]] = {}
    left_out: dict[str, str] = {}
    reference: float | None = None
    chosen: list[np.ndarray] | None = None
    abandoned: list[threading.Thread] = []
    for name, compiled in candidates.items():
        if chosen is None:
            took: float | str = "no inputs to try"
            for option in inputs:
                took = _warm_up(compiled, option, FIRST_WARM_UP_LIMIT)
                if not isinstance(took, str):
                    chosen = option
                    break
                if not took.startswith(_REFUSED):  # too slow: other sizes will not help
                    break
            if chosen is None:
                why = took if isinstance(took, str) else "no inputs to try"
                return Measurement({}, {other: why for other in candidates})
        else:
            assert reference is not None  # set with chosen, by the first candidate
            took = _warm_up(compiled, chosen, max(WARM_UP_FACTOR * reference, MIN_WARM_UP_LIMIT),
                            abandoned)
        if isinstance(took, str):
            left_out[name] = took
            continue
        reference = took if reference is None else min(reference, took)
        seconds[name] = []
    if chosen is None:  # no candidates
        return Measurement({}, left_out)
    _wait_for(abandoned, ABANDONED_WAIT)
    deadline = time.perf_counter() + BUDGET
    counted = 0  # rounds since the contenders last changed
    for _round in range(ROUNDS):
        for name in list(seconds):
            auto_exit.check()
            try:
                block = _timed_block(candidates[name], chosen, pause_app)
            except Exception as exc:  # ran once, then failed: not a device to serve on
                auto_exit.check()  # or failed because the interpreter is shutting down
                left_out[name] = f"an inference failed: {str(exc)[:200]}"
                del seconds[name]
                continue
            seconds[name].append(statistics.median(block))
        counted += 1
        if not seconds:
            break
        best = min(statistics.median(times) for times in seconds.values())
        dropped = False
        for name, times in list(seconds.items()):
            # two turns, the better of them that slow: one turn can follow another device's
            # threads still busy (an OpenCL runtime's), which once cost a 1 ms model 40 ms
            if len(times) >= 2 and min(times) > SLOWER_FACTOR * best:
                left_out[name] = (f"{statistics.median(times) * 1e3:.3g} ms, more than "
                                  f"{SLOWER_FACTOR:g}x the fastest")
                del seconds[name]
                dropped = True
        if dropped and len(seconds) > 1:
            # The rounds so far shared the cores with the device dropped (an OpenCL runtime's
            # or a numpy device's threads outlive its turn): time the rest again without it.
            for times in seconds.values():
                times.clear()
            counted, deadline = 0, time.perf_counter() + BUDGET
            continue
        if len(seconds) <= 1 or (counted >= MIN_ROUNDS and time.perf_counter() > deadline):
            break
    return Measurement({name: statistics.median(times) for name, times in seconds.items()},
                       left_out)


def _timed_block(compiled: CompiledModel, inputs: list[np.ndarray],
                 pause_app: AppPause | None = None) -> list[float]:
    """Seconds of the calls in the second half of one turn (see the module's docstring)."""
    for _attempt in range(BLOCK_ATTEMPTS):
        with pause_app() if pause_app is not None else nullcontext(True) as quiet:
            time.sleep(SETTLE_SECONDS)  # the application's last inference spins threads too
            times = _turn(compiled, inputs)
        if quiet:
            break
    return times[len(times) // 2:]


def _turn(compiled: CompiledModel, inputs: list[np.ndarray]) -> list[float]:
    times: list[float] = []
    begin = time.perf_counter()
    while True:
        start = time.perf_counter()
        compiled._infer_arrays(inputs)
        times.append(time.perf_counter() - start)
        lasted = time.perf_counter() - begin
        if len(times) >= 2 and lasted >= BLOCK_SECONDS and (
                len(times) >= MIN_BLOCK_CALLS or lasted >= LONG_BLOCK_SECONDS):
            return times


def _warm_up(compiled: CompiledModel, inputs: list[np.ndarray], limit: float,
             abandoned: list[threading.Thread] | None = None) -> float | str:
    """Seconds one call took, or why there is none: it raised, or it was still running after
    ``limit`` seconds (its thread is then added to ``abandoned``). The call runs on an ordinary
    (not daemon) thread, which finishes it if it is abandoned: a process ending meanwhile waits
    for that call (see :mod:`ember.runtime.auto_exit`), rather than tearing a driver down under
    it; the measuring stops there."""
    outcome: list[float | str] = []

    def call() -> None:
        start = time.perf_counter()
        try:
            compiled._infer_arrays(inputs)
        except Exception as exc:
            outcome.append(f"{_REFUSED}: {str(exc)[:200]}")
            return
        outcome.append(time.perf_counter() - start)

    auto_exit.check()
    thread = threading.Thread(target=call, name="ember-auto-measure")
    thread.start()
    deadline = time.perf_counter() + limit
    while thread.is_alive() and (left := deadline - time.perf_counter()) > 0:
        thread.join(min(left, _POLL))
        auto_exit.check()  # the process is ending: stop waiting, whatever the call gives
    if not outcome:
        if abandoned is not None:
            abandoned.append(thread)
        return f"its first inference took more than {limit:.3g} s"
    return outcome[0]


def _wait_for(threads: list[threading.Thread], limit: float) -> None:
    """Wait (at most ``limit`` seconds) for abandoned first inferences to end: one still
    running holds the cores the timed rounds measure (a slow OpenCL device's first call of a
    large image computes on the same CPU), which ranked the others by chance."""
    deadline = time.perf_counter() + limit
    for thread in threads:
        while thread.is_alive() and (left := deadline - time.perf_counter()) > 0:
            thread.join(min(left, _POLL))
            auto_exit.check()
