"""``InferRequest``: one inference at a time on a compiled model, synchronous or asynchronous.

Shaped like OpenVINO's: ``infer(inputs)`` runs now; ``start_async(inputs, userdata)`` returns at
once and runs the inference on the request's own worker thread, then calls the callback given to
``set_callback`` there; ``wait()`` and ``wait_for(milliseconds)`` wait for it. A request runs one
inference at a time: starting or changing it while one runs raises ``RequestBusyError``. Devices
release the GIL while they compute (onnxruntime, OpenCL, numpy's large kernels), so requests
running at the same time use several cores.

One lock says a request is busy, sync or async: taken without waiting when an inference starts
(taken already means busy), released when it ends, and what ``wait()`` waits on. Locks are C
code; an Event (Python code over a Condition) cost more than a small model's whole Python path.
"""

from __future__ import annotations

import _thread  # the busy lock; threading (~1 ms) is imported by the first worker only
import weakref
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.common.log import get_logger
from ember.errors import InferenceInputError, RequestBusyError
from ember.model.port import Port, find_port
from ember.runtime.infer_result import InferResult
from ember.runtime.tensor import Tensor

if TYPE_CHECKING:
    import queue

    from ember.runtime.infer_result import InferTarget as CompiledModel
    from ember.runtime.inputs import Inputs

log = get_logger("ember")

_STOP = None  # what a worker's queue receives when its request is gone


class _Worker:
    """A daemon thread running one request's asynchronous inferences, in order.

    The thread holds only the job queue, and a request only while a job of it waits or runs:
    when the request is collected, the worker's finalizer posts the stop marker and the thread
    ends.
    """

    def __init__(self) -> None:
        import queue  # here: only asynchronous requests have a worker
        import threading

        self.jobs: queue.SimpleQueue[tuple[Callable[[Any], None], Any] | None] = \
            queue.SimpleQueue()
        self.thread = threading.Thread(target=_work, args=(self.jobs,), daemon=True,
                                       name="ember-infer-request")
        self.thread.start()
        weakref.finalize(self, self.jobs.put, _STOP)


def _work(jobs: queue.SimpleQueue[tuple[Callable[[Any], None], Any] | None]) -> None:
    get = jobs.get
    while True:
        job = get()
        if job is _STOP:
            return
        job[0](job[1])  # InferRequest._run_async, or AsyncInferQueue._run
        del job  # hold nothing of the request between jobs


class InferRequest:
    """Inputs, the last results, and an optional worker thread for asynchronous inference."""

    def __init__(self, compiled_model: CompiledModel) -> None:
        self.compiled_model = compiled_model
        self._inputs: dict[str, Any] = {}
        self._results: InferResult | None = None
        self._busy = _thread.allocate_lock()  # held while an inference runs (module docstring)
        self._sync = False  # the inference running is infer()'s (for the busy message)
        self._error: BaseException | None = None
        self._callback: Callable[[Any], None] | None = None
        self._callback_userdata: Any = None
        self._userdata: Any = None
        self._on_idle: Callable[[], None] | None = None  # set by AsyncInferQueue
        self._latency = 0.0
        self._worker: _Worker | None = None

    # -- inputs ------------------------------------------------------------------------------

    def set_tensor(self, key: str | Port, tensor: Any) -> None:
        """Set an input by name or port (a Tensor, kept as given, or an array-like)."""
        self._check_idle()
        port = find_port(self.compiled_model.inputs, key, "input")
        self._inputs[port.name] = tensor

    def set_input_tensor(self, index_or_tensor: Any, tensor: Any = None) -> None:
        """``set_input_tensor(tensor)`` for a one-input model, or ``set_input_tensor(i, t)``."""
        if tensor is None:
            self.set_tensor(find_port(self.compiled_model.inputs, None, "input"), index_or_tensor)
        else:
            self.set_tensor(find_port(self.compiled_model.inputs, index_or_tensor, "input"),
                            tensor)

    def set_tensors(self, tensors: Mapping[Any, Any]) -> None:
        """Set several inputs at once, from a mapping of name, index or port to tensor or array."""
        for key, tensor in tensors.items():
            self.set_tensor(find_port(self.compiled_model.inputs, key, "input"), tensor)

    set_input_tensors = set_tensors

    def get_tensor(self, key: str | Port) -> Tensor:
        """An input or an output by name or port, as a Tensor sharing its memory.

        An input not set yet is allocated (zeros, dynamic dimensions 0) and kept, so that writing
        into ``get_input_tensor().data`` sets it, as in OpenVINO.
        """
        name = key.name if isinstance(key, Port) else key
        input_names = [p.name for p in self.compiled_model.inputs]
        if name in input_names:
            return self._input_tensor(find_port(self.compiled_model.inputs, name, "input"))
        return Tensor(self.results[name], shared_memory=True)

    def get_input_tensor(self, index: int | None = None) -> Tensor:
        """Input ``index`` (or the only input, without one) as a Tensor sharing its memory."""
        return self._input_tensor(find_port(self.compiled_model.inputs, index, "input"))

    def get_output_tensor(self, index: int | None = None) -> Tensor:
        """Output ``index`` (or the only output, without one) of the last inference, as a Tensor
        sharing its memory."""
        port = find_port(self.compiled_model.outputs, index, "output")
        return Tensor(self.results[port.name], shared_memory=True)

    def _input_tensor(self, port: Port) -> Tensor:
        value = self._inputs.get(port.name)
        if isinstance(value, Tensor):
            return value
        if value is None:
            shape = tuple(d if isinstance(d, int) else 0 for d in port.shape)
            value = Tensor(np.zeros(shape, port.dtype), shared_memory=True)
        else:
            value = Tensor(np.ascontiguousarray(value), shared_memory=True)
        self._inputs[port.name] = value
        return value

    @property
    def input_tensors(self) -> list[Tensor]:
        """Every input as a Tensor sharing its memory, in the model's order (inputs not set are
        allocated)."""
        return [self._input_tensor(p) for p in self.compiled_model.inputs]

    @property
    def output_tensors(self) -> list[Tensor]:
        """Every output of the last inference, in order, as a Tensor sharing its memory."""
        return [Tensor(a, shared_memory=True) for a in self.results.to_tuple()]

    @property
    def model_inputs(self) -> list[Port]:
        """The compiled model's input ports."""
        return list(self.compiled_model.inputs)

    @property
    def model_outputs(self) -> list[Port]:
        """The compiled model's output ports."""
        return list(self.compiled_model.outputs)

    # -- running -----------------------------------------------------------------------------

    def infer(self, inputs: Inputs | None = None, share_inputs: bool = False,
              share_outputs: bool = False, *, decode_strings: bool = True) -> InferResult:
        """Run one inference now and return its results (inputs given here replace those set)."""
        # CompiledModel.__call__'s path, inlined: each Python frame here is a measurable share
        # of a small model's inference.
        compiled = self.compiled_model
        given = self._inputs if inputs is None else inputs
        if not self._busy.acquire(False):
            self._raise_busy()
        self._sync = True
        try:
            self._error = None
            start = perf_counter()
            infer_feeds = compiled._infer_feeds
            if (infer_feeds is not None and type(given) is dict
                    and compiled.input_checks.are_feeds(given)):
                results = infer_feeds(given)
            else:
                results = compiled.device_model.infer(compiled.input_checks.prepare(given))
            if type(results) is not list or len(results) != compiled._output_count:
                results = compiled._checked(results)
            self._latency = perf_counter() - start
            self._results = result = InferResult.of(compiled.output_names, results)
        finally:
            self._sync = False
            self._busy.release()  # no callback, and no AsyncInferQueue hand-back
        return result

    def start_async(self, inputs: Inputs | None = None, userdata: Any = None,
                    share_inputs: bool = False) -> None:
        """Start one inference on the request's worker thread and return at once.

        Inputs are checked here (a wrong name or shape raises now) and copied unless
        ``share_inputs``, so the caller may reuse its arrays at once.
        :raises RequestBusyError: an inference is already running on this request.
        """
        arrays = self._prepare(inputs, copy=not share_inputs)
        if not self._busy.acquire(False):
            self._raise_busy()
        self._error = None
        self._userdata = userdata
        worker = self._worker
        if worker is None:
            worker = self._worker = _Worker()
        worker.jobs.put((self._run_async, arrays))

    def wait(self) -> None:
        """Wait for the running asynchronous inference; raise what it raised, if anything."""
        self._busy.acquire()
        self._busy.release()
        self._raise_error()

    def wait_for(self, timeout: int) -> bool:
        """Wait at most ``timeout`` milliseconds (OpenVINO's unit; -1 waits for ever); True when
        the request is idle. Raises what the inference raised."""
        done = self._busy.acquire(timeout=-1 if timeout < 0 else timeout / 1000)
        if done:
            self._busy.release()
            self._raise_error()
        return done

    def set_callback(self, callback: Callable[[Any], None], userdata: Any = None) -> None:
        """Call ``callback(userdata)`` on the worker thread after each asynchronous inference,
        success or failure (``wait()`` then tells which)."""
        self._callback, self._callback_userdata = callback, userdata

    def cancel(self) -> None:
        """Nothing to cancel once a device runs an inference: it completes; kept for OpenVINO."""

    def query_state(self) -> list[Any]:
        """The model's variable states: always empty, as ONNX models have none."""
        return []

    def reset_state(self) -> None:
        """Reset the model's variable states: nothing to do, as ONNX models have none."""

    def get_compiled_model(self) -> CompiledModel:
        """The :class:`~ember.CompiledModel` this request runs."""
        return self.compiled_model

    # -- what the last inference left --------------------------------------------------------

    @property
    def results(self) -> InferResult:
        """The last inference's outputs; ``InferenceInputError`` before any inference has run."""
        if self._results is None:
            raise InferenceInputError("no inference has run on this request yet")
        return self._results

    @property
    def latency(self) -> float:
        """Milliseconds the last inference took on the device."""
        return self._latency * 1e3

    @property
    def userdata(self) -> Any:
        """The userdata given to the last ``start_async``."""
        return self._userdata

    # -- internals ---------------------------------------------------------------------------

    def _prepare(self, inputs: Inputs | None, *, copy: bool) -> list[np.ndarray]:
        self._check_idle()
        given = self._inputs if inputs is None else inputs
        arrays = self.compiled_model.input_checks.prepare(given)
        if copy:
            arrays = [a.copy() for a in arrays]
        return arrays

    def _check_idle(self) -> None:
        if self._busy.locked():
            self._raise_busy()

    def _raise_busy(self) -> None:
        if self._sync:
            raise RequestBusyError("the infer request is busy: infer() runs on another thread")
        raise RequestBusyError("the infer request is busy: an asynchronous inference runs; "
                               "wait() for it first")

    def _run_async(self, arrays: list[np.ndarray]) -> None:
        """One asynchronous inference, on the worker thread, then the callback; the request is
        idle (and handed back to its AsyncInferQueue) after it."""
        compiled = self.compiled_model
        start = perf_counter()
        try:
            results = compiled.device_model.infer(arrays)
            if type(results) is not list or len(results) != compiled._output_count:
                results = compiled._checked(results)
            self._results = InferResult.of(compiled.output_names, results)
        except BaseException as exc:  # handed to wait(): nothing is lost on the worker thread
            self._error = exc
        self._latency = perf_counter() - start
        callback = self._callback
        if callback is not None:
            try:
                callback(self._callback_userdata)
            except Exception as exc:
                log.exception("an infer request's callback raised")
                if self._error is None:
                    self._error = exc
        self._busy.release()
        on_idle = self._on_idle
        if on_idle is not None:
            on_idle()

    def _raise_error(self) -> None:
        error = self._error
        if error is not None:
            raise error

    def __repr__(self) -> str:
        state = "busy" if self._busy.locked() else "idle"
        return f"<InferRequest on {self.compiled_model.device.name}: {state}>"
