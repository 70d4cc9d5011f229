"""The GPU device's compiled model: specialisations of one graph, one per set of input shapes.

Kernels are specialised to static shapes. A model whose inputs are all static (and that has no
shape inputs, see ``graph.py``) is specialised and built in ``compile``. A model with dynamic
dimensions (a batch, PaddleOCR's height and width) is specialised at its first inference with
each new set of input shapes (and shape-input values); the specialisations are kept, the
least recently used dropped beyond ``MAX_SPECIALISATIONS``. Every specialisation's program goes
through the same caches (memory, then ``CACHE_DIR``): a shape seen in an earlier process starts
from its binary. Problems with the cache found during an inference are reported as one
``CacheWarning`` there, as the core does for those found during ``compile``.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ember.model import Port
from ember_gpu import opencl
from ember_gpu.emit import Emitter
from ember_gpu.executable import Executable
from ember_gpu.fusion import group_nodes
from ember_gpu.graph import Graph
from ember_gpu.kernel_store import obtain_kernel
from ember_gpu.lowering import lower
from ember_gpu.opencl import OpenCLDevice
from ember_gpu.persistent_cache import Kernel, KernelDescriptor
from ember_gpu.plan import Plan
from ember_gpu.transforms import fold_batchnorm_into_conv

if TYPE_CHECKING:
    from ember.cache import KernelCache

MAX_SPECIALISATIONS = 8
#: Build options of every program (part of its cache blob id).
BUILD_OPTIONS: tuple[str, ...] = ()

SpecialisationKey = tuple[tuple[tuple[int, ...], ...], tuple[bytes, ...]]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Lowering allocates thousands of short-lived objects without reference cycles: pausing the
    cycle collector meanwhile saves the collections they would trigger over the whole heap
    (reference counting still frees every one of them)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def make_plan(graph: Graph, arrays: Sequence[np.ndarray], device_name: str,
              device: OpenCLDevice, transformations: bool) -> Plan:
    """Lower, transform, fuse and write the kernels of ``graph`` for these inputs."""
    device_graph = lower(graph, arrays, device_name, device.has_fp64)
    if transformations:
        fold_batchnorm_into_conv(device_graph)
    groups = group_nodes(device_graph.nodes, device_graph.outputs, fuse=transformations)
    shapes = ",".join("x".join(map(str, a.shape)) for a in arrays)
    return Emitter(device_graph).emit(groups, f"{graph.name}[{shapes}]")


class GpuCompiledModel:
    """Follows :class:`ember.device.DeviceModel`."""

    def __init__(self, graph: Graph, device_name: str, device: OpenCLDevice,
                 transformations: bool, store: KernelCache | None) -> None:
        self.graph = graph
        self.device_name = device_name
        self.device = device
        self.transformations = transformations
        self.inputs: list[Port] = list(graph.inputs)
        self.outputs: list[Port] = list(graph.outputs)
        self._store = store
        self._specialisations: OrderedDict[SpecialisationKey, Executable] = OrderedDict()
        self._building: dict[SpecialisationKey, threading.Lock] = {}
        self._lock = threading.Lock()
        if all(p.is_static for p in graph.inputs) and not graph.shape_inputs:
            # Everything is known: build now, in compile, where the core reports cache problems.
            shaped = [np.broadcast_to(np.zeros((), p.dtype), p.shape) for p in graph.inputs]
            self._specialise(self._key(shaped), shaped, report=False)  # only shapes are read

    @property
    def specialisations(self) -> list[Executable]:
        with self._lock:
            return list(self._specialisations.values())

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        key = self._key(inputs)
        with self._lock:
            executable = self._specialisations.get(key)
            if executable is not None:
                self._specialisations.move_to_end(key)
        if executable is None:
            executable = self._specialise(key, inputs, report=True)
        return executable.run(inputs)

    def _key(self, inputs: Sequence[np.ndarray]) -> SpecialisationKey:
        shapes = tuple(tuple(int(d) for d in a.shape) for a in inputs)
        values = tuple(np.ascontiguousarray(a).tobytes() for p, a in
                       zip(self.graph.inputs, inputs, strict=True)
                       if p.name in self.graph.shape_inputs)
        return shapes, values

    def _specialise(self, key: SpecialisationKey, inputs: Sequence[np.ndarray],
                    report: bool) -> Executable:
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one build per shape, however many threads ask; other shapes still run
            with self._lock:
                found = self._specialisations.get(key)
            if found is not None:
                return found
            executable = self._build(inputs)
            with self._lock:
                self._specialisations[key] = executable
                while len(self._specialisations) > MAX_SPECIALISATIONS:
                    self._specialisations.popitem(last=False)
                self._building.pop(key, None)
        if report and self._store is not None:
            self._store.report()
        return executable

    def _build(self, inputs: Sequence[np.ndarray]) -> Executable:
        with collector_paused():
            plan = make_plan(self.graph, inputs, self.device_name, self.device,
                             self.transformations)
        runtime = opencl.runtime(self.device)
        if not plan.launches:  # everything was folded at compile time: no program to build
            return Executable(plan, None, runtime)
        descriptor = KernelDescriptor(self.device, plan.source, BUILD_OPTIONS, plan.name,
                                      plan.kernel_names)
        built: list[Executable] = []

        def first_run(kernel: Kernel) -> None:
            built.append(Executable(plan, kernel, runtime))
            built[0].first_run()

        kernel = obtain_kernel(descriptor, self._store, first_run)
        return built[0] if built else Executable(plan, kernel, runtime)
