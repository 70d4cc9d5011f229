"""Running a plan: its buffers on the device, its kernels with their arguments set once.

One inference writes the inputs into the workspace, enqueues every kernel in order on the
device's in-order queue, reads the outputs back, and waits. An executable is used by one thread
at a time (a lock): concurrent infer requests on one compiled model take turns, since they share
its workspace.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember_gpu import opencl
from ember_gpu.opencl import Runtime
from ember_gpu.persistent_cache import Kernel
from ember_gpu.plan import Plan

_MIN_BUFFER = 64  # OpenCL buffers cannot be empty


class Executable:
    def __init__(self, plan: Plan, kernel: Kernel | None, runtime: Runtime) -> None:
        cl = opencl.pyopencl()
        self.plan = plan
        self.kernel = kernel
        self._cl = cl
        self._queue = runtime.queue
        flags = cl.mem_flags
        if plan.constants:
            constants = np.frombuffer(plan.constants, dtype=np.uint8)
            self._constants = cl.Buffer(runtime.context, flags.READ_ONLY | flags.COPY_HOST_PTR,
                                        hostbuf=constants)
        else:
            self._constants = cl.Buffer(runtime.context, flags.READ_ONLY, _MIN_BUFFER)
        self._workspace = cl.Buffer(runtime.context, flags.READ_WRITE,
                                    max(plan.workspace_size, _MIN_BUFFER))
        self._launches: list[tuple[Any, tuple[int]]] = []
        for launch in plan.launches:  # a plan without launches (all folded) has no kernel
            assert kernel is not None
            entry = kernel.kernel(launch.kernel)
            entry.set_args(self._constants, self._workspace)
            self._launches.append((entry, (launch.global_size,)))
        self._lock = threading.Lock()

    def first_run(self) -> None:
        """Launch every kernel once on whatever the workspace holds (only the launches matter:
        indices come from work-item ids, gathered indices are clamped)."""
        with self._lock:
            self._enqueue_kernels()
            self._queue.finish()

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        cl = self._cl
        with self._lock:
            staged = []
            for region, array in zip(self.plan.inputs, arrays, strict=True):
                if region is not None and region.nbytes:
                    data = np.ascontiguousarray(array)
                    staged.append(data)
                    cl.enqueue_copy(self._queue, self._workspace, data, dst_offset=region.offset,
                                    is_blocking=False)
            self._enqueue_kernels()
            outputs = []
            for slot in self.plan.outputs:
                if slot.host is not None:
                    outputs.append(slot.host.copy())
                    continue
                result = np.empty(slot.shape, dtype=slot.dtype)
                if result.nbytes:
                    assert slot.region is not None
                    cl.enqueue_copy(self._queue, result, self._workspace,
                                    src_offset=slot.region.offset, is_blocking=False)
                outputs.append(result)
            self._queue.finish()
            del staged
        return outputs

    def _enqueue_kernels(self) -> None:
        enqueue = self._cl.enqueue_nd_range_kernel
        for entry, size in self._launches:
            enqueue(self._queue, entry, size, None)
