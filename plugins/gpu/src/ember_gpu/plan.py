"""A specialised model, ready to build and run: one program source, its launches, its memory.

A plan is plain data (no OpenCL object): the program's source, the kernels to launch in order
with their global sizes, the bytes of the constant arena, the size of the workspace, and where
each model input is written and each output read. ``executable.py`` runs it; the source is what
identifies the program in the caches; ``plan_codec.py`` stores it in the kernel cache, so that a
warm start neither parses the model nor lowers it. This module imports no code generator.
"""

from __future__ import annotations

import numpy as np

from ember_gpu.memory import Region

#: The version of the generated code's conventions (kernel arguments, arenas, helpers). It heads
#: every program's source, so it is part of the source digest in every cache blob id.
CODEGEN_VERSION = 1

PRELUDE = (f"// ember-gpu program, code generation {CODEGEN_VERSION}\n"
           "#pragma OPENCL FP_CONTRACT OFF\n")  # round a * b + c twice, as numpy does
FP64 = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"


class Launch:
    __slots__ = ("global_size", "kernel")

    def __init__(self, kernel: str, global_size: int) -> None:
        self.kernel = kernel
        self.global_size = global_size


class OutputSlot:
    __slots__ = ("dtype", "host", "region", "shape")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, region: Region | None = None,
                 host: np.ndarray | None = None) -> None:
        self.shape = shape
        self.dtype = dtype
        self.region = region  # in the workspace
        self.host = host  # known at compile time


class Plan:
    __slots__ = ("constants", "inputs", "launches", "name", "outputs", "source", "workspace_size")

    def __init__(self, name: str, source: str, launches: tuple[Launch, ...], constants: bytes,
                 workspace_size: int, inputs: tuple[Region | None, ...],
                 outputs: tuple[OutputSlot, ...]) -> None:
        self.name = name
        self.source = source
        self.launches = launches
        self.constants = constants
        self.workspace_size = workspace_size
        self.inputs = inputs  # None: the input is not read on the device
        self.outputs = outputs

    @property
    def kernel_names(self) -> tuple[str, ...]:
        return tuple(launch.kernel for launch in self.launches)
