"""``AsyncInferQueue``: a pool of infer requests kept busy, as OpenVINO's.

``AsyncInferQueue(compiled, jobs)`` makes ``jobs`` requests (0: the compiled model's
``OPTIMAL_NUMBER_OF_INFER_REQUESTS``). ``start_async(inputs, userdata)`` waits for a free
request and starts it; the callback given to ``set_callback`` is called as
``callback(request, userdata)`` on that request's worker thread when it succeeds, before the
request is idle again. ``wait_all()`` waits for every request and raises the first error an
inference or a callback raised since the last ``wait_all``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

from ember import properties as props
from ember.runtime.infer_request import InferRequest, _Worker

if TYPE_CHECKING:
    from ember.runtime.compiled_model import CompiledModel, Inputs


#: Inferences each request holds: one running, one waiting on its worker thread behind it.
SLOTS_PER_REQUEST = 2


class AsyncInferQueue:
    """A pool of asynchronous infer requests, with the idle ones handed out first come.

    Each request has two slots: ``start_async`` takes a free one, waiting while there is none,
    and gives the inference to that request's worker thread, where it runs as soon as the one
    before it is done. A worker that finishes an inference then finds the next one already
    waiting, instead of sleeping until the application's thread is scheduled again to start
    it: on a small model that hand-over is as long as the inference. Requests still run one
    inference at a time, so as many run at once as there are requests. The free slots are
    request ids in a ``SimpleQueue`` (C code): per inference one put and one get, no Python
    lock or Condition.
    """

    def __init__(self, compiled_model: CompiledModel, jobs: int = 0) -> None:
        if jobs <= 0:
            jobs = int(compiled_model.get_property(props.OPTIMAL_NUMBER_OF_INFER_REQUESTS))
        self._requests = [compiled_model.create_infer_request() for _ in range(max(jobs, 1))]
        self._slots: SimpleQueue[int] = SimpleQueue()
        self._reserved: int | None = None  # by get_idle_request_id, for the next start_async
        self._userdata: list[Any] = [None] * len(self._requests)
        self._callback: Callable[[InferRequest, Any], None] | None = None
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        for index, request in enumerate(self._requests):
            request.set_callback(self._finished, index)
            request._on_idle = partial(self._slots.put, index)
        for _ in range(SLOTS_PER_REQUEST):
            for index in range(len(self._requests)):
                self._slots.put(index)

    # -- OpenVINO's API ----------------------------------------------------------------------

    def set_callback(self, callback: Callable[[InferRequest, Any], None]) -> None:
        """Call ``callback(request, userdata)`` after each inference of the pool."""
        self._callback = callback

    def start_async(self, inputs: Inputs | None = None, userdata: Any = None,
                    share_inputs: bool = False) -> None:
        """Start an inference on the next free request, waiting for one if all are busy.

        Inputs are checked and copied here (unless ``share_inputs``): a wrong input raises now.
        Without inputs, the inference runs on the inputs set on an idle request (the one
        ``get_idle_request_id`` returned).
        """
        index = self._reserved
        if index is None and inputs is None:
            index = self._take_idle()
        reserved = index is not None
        if index is None:
            index = self._slots.get()
        self._reserved = None
        request = self._requests[index]
        try:
            arrays = request.compiled_model.input_checks.prepare(
                request._inputs if inputs is None else inputs)
            if not share_inputs:
                arrays = [a.copy() for a in arrays]
        except BaseException:
            self._slots.put(index)
            if reserved:
                self._slots.put(index)
            raise
        worker = request._worker
        if worker is None:
            worker = request._worker = _Worker()
        worker.jobs.put((self._run, (index, arrays, userdata)))
        if reserved:  # its other slot, held while the application set its inputs
            self._slots.put(index)

    def get_idle_request_id(self) -> int:
        """The id of an idle request, waiting for one if all are busy; the next ``start_async``
        runs on it (set its inputs, then call ``start_async()``, as with OpenVINO's)."""
        if self._reserved is None:
            self._reserved = self._take_idle()
        return self._reserved

    def is_ready(self) -> bool:
        """Whether a request is free (start_async would not wait)."""
        return self._reserved is not None or not self._slots.empty()

    def wait_all(self) -> None:
        """Wait until every request is idle; raise the first error since the last call."""
        for index in self._take_all():  # each slot comes back when its inference is done
            self._slots.put(index)
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            raise errors[0]

    @property
    def userdata(self) -> list[Any]:
        """The userdata last given to each request (None where none was given yet)."""
        return list(self._userdata)

    def __len__(self) -> int:
        return len(self._requests)

    def __getitem__(self, index: int) -> InferRequest:
        return self._requests[index]

    def __iter__(self) -> Iterator[InferRequest]:
        return iter(self._requests)

    def __repr__(self) -> str:
        return f"<AsyncInferQueue: {len(self._requests)} jobs>"

    # -- slots -------------------------------------------------------------------------------

    def _take_all(self) -> list[int]:
        """Every free slot but the reserved request's, waiting for those in use."""
        held = SLOTS_PER_REQUEST * (len(self._requests) - (self._reserved is not None))
        return [self._slots.get() for _ in range(held)]

    def _take_idle(self) -> int:
        """A request with nothing running or waiting, with both its slots taken (the rare
        path of ``get_idle_request_id``: it waits until the whole pool is idle)."""
        taken = self._take_all()
        index = taken[0]
        for other in taken:
            if other != index:
                self._slots.put(other)
        return index

    # -- on a request's worker thread --------------------------------------------------------

    def _run(self, job: tuple[int, list[Any], Any]) -> None:
        index, arrays, userdata = job
        request = self._requests[index]
        request._busy.acquire()  # the worker runs its jobs in turn: free unless the
        request._sync = False    # application runs infer() on a request of the pool
        request._error = None
        request._userdata = self._userdata[index] = userdata
        request._run_async(arrays)  # calls _finished, frees the request, returns the slot

    def _finished(self, index: int) -> None:
        """The request's callback: the user's, with errors kept for ``wait_all`` (a failed
        inference has no results to call back with)."""
        request = self._requests[index]
        error = request._error
        if error is None and self._callback is not None:
            try:
                self._callback(request, self._userdata[index])
                return
            except Exception as exc:
                from ember.runtime.infer_request import log

                log.exception("an AsyncInferQueue callback raised")
                error = exc
        if error is not None:
            with self._errors_lock:
                self._errors.append(error)
            request._error = None
