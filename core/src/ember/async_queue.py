"""``AsyncInferQueue``: a pool of infer requests kept busy, as OpenVINO's.

``AsyncInferQueue(compiled, jobs)`` makes ``jobs`` requests (0: the compiled model's
``OPTIMAL_NUMBER_OF_INFER_REQUESTS``). ``start_async(inputs, userdata)`` waits for an idle
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
from ember.infer_request import InferRequest

if TYPE_CHECKING:
    from ember.compiled_model import CompiledModel, Inputs


class AsyncInferQueue:
    """A pool of asynchronous infer requests, with the idle ones handed out first come.

    The idle requests' ids wait in a ``SimpleQueue`` (C code): ``start_async`` takes one,
    waiting while there is none, and a request's worker puts its id back once the inference and
    the callback are done. Per inference, that is one put and one get, and no Python lock or
    Condition: on a model that runs in ~0.1 ms, the queue's own Python is what limits it.
    """

    def __init__(self, compiled_model: CompiledModel, jobs: int = 0) -> None:
        if jobs <= 0:
            jobs = int(compiled_model.get_property(props.OPTIMAL_NUMBER_OF_INFER_REQUESTS))
        self._requests = [compiled_model.create_infer_request() for _ in range(max(jobs, 1))]
        self._idle: SimpleQueue[int] = SimpleQueue()
        self._userdata: list[Any] = [None] * len(self._requests)
        self._callback: Callable[[InferRequest, Any], None] | None = None
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        for index, request in enumerate(self._requests):
            request.set_callback(self._finished, index)
            request._on_idle = partial(self._idle.put, index)
            self._idle.put(index)

    # -- OpenVINO's API ----------------------------------------------------------------------

    def set_callback(self, callback: Callable[[InferRequest, Any], None]) -> None:
        """Call ``callback(request, userdata)`` after each inference of the pool."""
        self._callback = callback

    def start_async(self, inputs: Inputs | None = None, userdata: Any = None,
                    share_inputs: bool = False) -> None:
        """Start an inference on the next idle request, waiting for one if all are busy.

        Inputs are checked and copied here (unless ``share_inputs``): a wrong input raises now.
        """
        index = self._idle.get()
        self._userdata[index] = userdata
        try:
            self._requests[index].start_async(inputs, userdata, share_inputs)
        except BaseException:
            self._idle.put(index)
            raise

    def get_idle_request_id(self) -> int:
        """The id of an idle request, waiting for one if all are busy (it is not reserved)."""
        index = self._idle.get()
        self._idle.put(index)
        return index

    def is_ready(self) -> bool:
        """Whether a request is idle (start_async would not wait)."""
        return not self._idle.empty()

    def wait_all(self) -> None:
        """Wait until every request is idle; raise the first error since the last call."""
        idle = [self._idle.get() for _ in self._requests]  # each comes back when it is done
        for index in idle:
            self._idle.put(index)
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

    # -- on a request's worker thread --------------------------------------------------------

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
                from ember.infer_request import log

                log.exception("an AsyncInferQueue callback raised")
                error = exc
        if error is not None:
            with self._errors_lock:
                self._errors.append(error)
            request._error = None
