"""From an ONNX model to plans: everything a cache miss does, nothing a warm start imports.

``read_model_graph`` decodes and checks the graph (``graph.py``) and refuses in ``compile``
what lowering would refuse later (``admission.py``); ``make_plan`` lowers the graph for one set
of inputs, folds BatchNormalization into convolutions, fuses elementwise chains and writes the
program (``lowering.py``, ``transforms.py``, ``fusion.py``, ``emit.py``). Only a miss imports
this module (and onnx).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence

import numpy as np

from ember.plugin import Model
from ember_gpu.admission import check_runnable
from ember_gpu.emit import Emitter
from ember_gpu.fusion import group_nodes
from ember_gpu.graph import Graph, read_graph
from ember_gpu.lowering import lower
from ember_gpu.opencl import OpenCLDevice
from ember_gpu.ops import SUPPORTED_OPS
from ember_gpu.plan import Plan
from ember_gpu.transforms import fold_batchnorm_into_conv


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


def read_model_graph(model: Model, device_name: str, device: OpenCLDevice) -> Graph:
    """The checked graph of ``model``: raises what ``compile`` must raise for it."""
    with collector_paused():
        graph = read_graph(model, device_name, SUPPORTED_OPS)
    check_runnable(graph, device_name, device.has_fp64)
    return graph


def make_plan(graph: Graph, arrays: Sequence[np.ndarray], device_name: str,
              device: OpenCLDevice, transformations: bool) -> Plan:
    """Lower, transform, fuse and write the kernels of ``graph`` for these inputs."""
    with collector_paused():
        device_graph = lower(graph, arrays, device_name, device.has_fp64)
        if transformations:
            fold_batchnorm_into_conv(device_graph)
        groups = group_nodes(device_graph.nodes, device_graph.outputs, fuse=transformations)
        shapes = ",".join("x".join(map(str, a.shape)) for a in arrays)
        return Emitter(device_graph).emit(groups, f"{graph.name}[{shapes}]")
