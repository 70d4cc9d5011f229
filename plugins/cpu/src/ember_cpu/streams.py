"""CPU's streams: how many inferences run at once, and on how many threads each.

OpenVINO's model, on onnxruntime: a *stream* is one inference in flight with its own threads.
One session serves every stream (onnxruntime runs concurrent ``run`` calls on one session, each
on its caller's thread when the session has one intra-op thread), so streams cost no memory;
the infer requests an application keeps busy (``OPTIMAL_NUMBER_OF_INFER_REQUESTS``, an
AsyncInferQueue's size) are the streams.

- ``NUM_STREAMS`` > 0 is taken as given; ``-1``/``"AUTO"`` (the default) and ``-2``/``"NUMA"``
  follow ``PERFORMANCE_HINT``: one stream for LATENCY, one per core for THROUGHPUT and
  CUMULATIVE_THROUGHPUT;
- the cores are ``INFERENCE_NUM_THREADS`` when set, else the CPUs this process may run on; each
  stream gets an equal share of them, at least one. With LATENCY and no thread count,
  onnxruntime picks its own (one thread per physical core).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ember.plugin import PropertyValueError

HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
_NAMED = {"AUTO": -1, "NUMA": -2}


class Streams:
    """How a compiled model runs: its streams, and each one's threads.

    A plain class, not a NamedTuple: every warm start plans its streams, and creating a
    NamedTuple class at import costs more than the rest of this module.
    """

    __slots__ = ("streams", "threads_per_stream")

    def __init__(self, streams: int, threads_per_stream: int) -> None:
        self.streams = streams
        #: onnxruntime's intra_op_num_threads for the session (0: its own choice)
        self.threads_per_stream = threads_per_stream

    def __repr__(self) -> str:
        return f"Streams(streams={self.streams}, threads_per_stream={self.threads_per_stream})"

    def runtime_properties(self) -> dict[str, int]:
        """What the compiled model reports (see ember.contract.hints.runtime_properties)."""
        return {"NUM_STREAMS": self.streams,
                "OPTIMAL_NUMBER_OF_INFER_REQUESTS": self.streams}


def plan(config: Mapping[str, Any]) -> Streams:
    """Streams and threads for a compile's config; ``PropertyValueError`` for a bad value."""
    hint = config.get("PERFORMANCE_HINT", "LATENCY")
    if hint not in HINTS:
        raise PropertyValueError(f"PERFORMANCE_HINT must be one of {', '.join(HINTS)}, "
                                 f"not {hint!r}")
    threads = config.get("INFERENCE_NUM_THREADS", 0)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise PropertyValueError(f"INFERENCE_NUM_THREADS must be an int >= 0, not {threads!r}")
    asked = config.get("NUM_STREAMS", -1)
    asked = _NAMED.get(str(asked).upper(), asked)
    if not isinstance(asked, int) or isinstance(asked, bool) or asked < -2 or asked == 0:
        raise PropertyValueError(f"NUM_STREAMS must be a number >= 1, AUTO or NUMA, "
                                 f"not {config.get('NUM_STREAMS')!r}")
    cores = threads or _usable_cpus()
    if asked > 0:
        streams = asked
    elif hint == "LATENCY":
        return Streams(1, threads)
    else:
        streams = cores
    return Streams(streams, max(1, cores // streams))


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
