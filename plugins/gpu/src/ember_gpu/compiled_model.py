"""The GPU device's compiled model: specialisations of one graph, one per set of input shapes.

Kernels are specialised to static shapes. A model whose inputs are all static (and that has no
shape inputs, see ``graph.py``) is specialised and built in ``compile``. A model with dynamic
dimensions (a batch, PaddleOCR's height and width) is specialised at its first inference with
each new set of input shapes (and shape-input values); the specialisations are kept, the
least recently used dropped beyond ``MAX_SPECIALISATIONS``.

With ``CACHE_DIR``, three kinds of ``.cl_cache`` entries make a warm start free of ONNX work:

- the *model entry* (key: the model file's digest, the device architecture, the options, the
  build of Ember: versions, git commit and ``build_info.code_identity``): the ports and shape
  inputs, all ``compile`` needs before any shape is known;
- a *plan entry* per specialisation (key: the model entry's, the input shapes and shape-input
  values): the lowered plan (``plan_codec.py``);
- the *program entry* of each plan's OpenCL source (``kernel_store.py``): the driver's binary.

A hit on all three neither imports onnx nor parses the model nor lowers it (``planner.py`` is
imported on a miss only). Problems with the cache found during an inference are reported as one
``CacheWarning`` there, as the core does for those found during ``compile``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ember.plugin import InvalidModelError, Model, Port, hexdigest
from ember_gpu import opencl
from ember_gpu.build_info import UNKNOWN, code_identity, ember_git_commit
from ember_gpu.executable import Executable
from ember_gpu.kernel_store import obtain_kernel
from ember_gpu.opencl import OpenCLDevice
from ember_gpu.persistent_cache import Kernel, KernelDescriptor
from ember_gpu.plan import Plan
from ember_gpu.plan_codec import (
    PLAN_FORMAT,
    ModelInfo,
    decode_model_info,
    decode_plan,
    encode_model_info,
    encode_plan,
)

if TYPE_CHECKING:
    from ember.plugin import CacheKey, KernelCache
    from ember_gpu.graph import Graph

MAX_SPECIALISATIONS = 8
#: Build options of every program (part of its cache blob id).
BUILD_OPTIONS: tuple[str, ...] = ()

SpecialisationKey = tuple[tuple[tuple[int, ...], ...], tuple[bytes, ...]]


class GpuCompiledModel:
    """Follows :class:`ember.contract.device.DeviceModel`."""

    def __init__(self, model: Model, device_name: str, device: OpenCLDevice,
                 transformations: bool, store: KernelCache | None) -> None:
        self.device_name = device_name
        self.device = device
        self.transformations = transformations
        self._model = model
        self._graph: Graph | None = None
        self._store = store
        self._digest = ""
        self._model_key: CacheKey | None = None
        if store is None:
            info = self._describe(self._read_graph())
        else:
            self._digest = store.model_digest(model)
            self._model_key = store.key({
                "kind": "gpu-model", "format": PLAN_FORMAT, "model": self._digest,
                "architecture": device.architecture, "transformations": transformations,
                "ember_git": ember_git_commit() or UNKNOWN, "code": code_identity()})
            info = store.get_or_build(self._model_key, self._build_model_info, decode_model_info,
                                      name=_model_label(model),
                                      architecture=device.architecture)
        self.name = info.name
        self.inputs: list[Port] = list(info.inputs)
        self.outputs: list[Port] = list(info.outputs)
        self.shape_inputs = info.shape_inputs
        self._specialisations: OrderedDict[SpecialisationKey, Executable] = OrderedDict()
        self._building: dict[SpecialisationKey, threading.Lock] = {}
        self._lock = threading.Lock()
        if all(p.is_static for p in self.inputs) and not self.shape_inputs:
            # Everything is known: build now, in compile, where the core reports cache problems.
            shaped = [np.broadcast_to(np.zeros((), p.dtype), p.shape) for p in self.inputs]
            self._specialise(self._key(shaped), shaped, report=False)  # only shapes are read

    # -- the model, read only on a cache miss ----------------------------------------------------

    def _read_graph(self) -> Graph:
        if self._graph is None:
            from ember_gpu.planner import read_model_graph

            graph = read_model_graph(self._model, self.device_name, self.device)
            if self._store is not None and self._store.model_digest(self._model) != self._digest:
                raise InvalidModelError(str(self._model.path or "the model"),
                                        "it changed after compile_model; compile it again")
            self._graph = graph
        return self._graph

    @staticmethod
    def _describe(graph: Graph) -> ModelInfo:
        return ModelInfo(graph.name, graph.inputs, graph.outputs, graph.shape_inputs)

    def _build_model_info(self) -> tuple[ModelInfo, bytes]:
        graph = self._read_graph()
        return self._describe(graph), encode_model_info(graph.name, graph.inputs, graph.outputs,
                                                        graph.shape_inputs)

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
                       zip(self.inputs, inputs, strict=True) if p.name in self.shape_inputs)
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

    def _plan(self, inputs: Sequence[np.ndarray]) -> Plan:
        """The plan for these inputs: from its entry, else lowered (and published)."""

        def build() -> tuple[Plan, bytes]:
            from ember_gpu.planner import make_plan

            plan = make_plan(self._read_graph(), inputs, self.device_name, self.device,
                             self.transformations)
            return plan, encode_plan(plan) if self._store is not None else b""

        if self._store is None or self._model_key is None:
            return build()[0]
        key = self._key(inputs)
        values = b"".join(key[1])
        entry = self._store.key({
            "kind": "gpu-plan", "model": self._model_key.digest, "shapes": key[0],
            "dtypes": [np.dtype(a.dtype).str for a in inputs],
            "values": hexdigest(values) if key[1] else ""})
        sizes = [np.dtype(a.dtype).itemsize * int(np.prod(a.shape)) for a in inputs]
        return self._store.get_or_build(
            entry, build, lambda payload: decode_plan(payload, sizes, self.outputs),
            name=f"{self.name}[{','.join('x'.join(map(str, s)) for s in key[0])}]",
            architecture=self.device.architecture)

    def _build(self, inputs: Sequence[np.ndarray]) -> Executable:
        plan = self._plan(inputs)
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


def _model_label(model: Model) -> str:
    """A name for the model entry without parsing the model."""
    return model.path.name if model.path is not None else "model"
