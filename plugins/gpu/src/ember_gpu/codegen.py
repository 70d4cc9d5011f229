"""Writing one OpenCL kernel: index arithmetic, typed loads and stores, locals, helpers.

Every kernel runs one work-item per element of its *iteration shape* (for most kernels the shape
of the value it writes) and takes the two arenas of ``memory.py``. Shapes, strides and offsets
are literals in the source, so the OpenCL compiler folds the index arithmetic and unrolls the
fixed-size loops: the source is specialised to one set of input shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ember_gpu import dtypes
from ember_gpu.ir import Value
from ember_gpu.memory import Region

_HALF = np.dtype(np.float16).num

#: OpenCL C helper functions by name; a kernel lists the ones it calls and the program defines
#: each once, ahead of the kernels.
HELPERS: dict[str, str] = {}


def strides(shape: Sequence[int]) -> list[int]:
    result, step = [], 1
    for dim in reversed(shape):
        result.append(step)
        step *= dim
    return result[::-1]


def linear(indices: Sequence[str], shape: Sequence[int]) -> str:
    """The offset of a multi-index in a contiguous tensor of ``shape``, as C code."""
    terms = []
    for index, stride, dim in zip(indices, strides(shape), shape, strict=True):
        if dim == 1 or index == "0":
            continue
        terms.append(index if stride == 1 else f"{index} * {stride}")
    return " + ".join(terms) or "0"


class KernelWriter:
    """Builds the source of one kernel over an iteration shape."""

    def __init__(self, name: str, shape: Sequence[int], locate: Callable[[Value], Region],
                 comment: str = "", wide: bool = False) -> None:
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.global_size = math.prod(self.shape)
        self.itype = "long" if wide else "int"
        self.comment = comment
        self.helpers: list[str] = []
        self.fp64 = False
        self._locate = locate
        self._lines: list[str] = []
        self._index: list[str] | None = None
        self._loads: dict[tuple[int, tuple[int, ...]], str] = {}
        self._pointers: dict[tuple[int, bool], str] = {}
        self._count = 0

    # -- statements ---------------------------------------------------------------------------

    def line(self, text: str) -> None:
        self._lines.append(text)

    def local(self, ctype: str, expression: str, prefix: str = "t") -> str:
        name = f"{prefix}{self._count}"
        self._count += 1
        self._lines.append(f"const {ctype} {name} = {expression};")
        return name

    def fresh(self, prefix: str = "t") -> str:
        name = f"{prefix}{self._count}"
        self._count += 1
        return name

    def use(self, helper: str) -> str:
        if helper not in self.helpers:
            self.helpers.append(helper)
        return helper

    def note_type(self, dtype: object) -> None:
        if dtypes.needs_fp64(dtype):  # type: ignore[arg-type]
            self.fp64 = True

    # -- indices ------------------------------------------------------------------------------

    def index(self) -> list[str]:
        """The multi-index of this work-item in the iteration shape ("0" for unit dimensions)."""
        if self._index is None:
            names: list[str] = []
            rest = "gid"
            decomposition: list[str] = []
            first = next((axis for axis, dim in enumerate(self.shape) if dim != 1), None)
            for axis in reversed(range(len(self.shape))):
                dim = self.shape[axis]
                if dim == 1:
                    names.append("0")
                    continue
                name = f"i{axis}"
                names.append(name)
                if axis == first:  # no other non-unit dimension outside this one
                    decomposition.append(f"const {self.itype} {name} = {rest};")
                    continue
                decomposition.append(f"const {self.itype} {name} = {rest} % {dim};")
                decomposition.append(f"const {self.itype} r{axis} = {rest} / {dim};")
                rest = f"r{axis}"
            self._index = names[::-1]
            self._lines[0:0] = decomposition  # ahead of everything that uses it
        return self._index

    # -- memory -------------------------------------------------------------------------------

    def pointer(self, value: Value, writable: bool = False) -> str:
        key = (id(value), writable)
        found = self._pointers.get(key)
        if found is not None:
            return found
        region = self._locate(value)
        self.note_type(value.dtype)
        ctype = dtypes.storage_type(value.dtype)
        const = "" if writable else "const "
        base = region.arena if region.offset == 0 else f"({region.arena} + {region.offset})"
        found = self._pointers[key] = f"((__global {const}{ctype}*){base})"
        return found

    def load(self, value: Value, offset: str) -> str:
        if value.host is not None and value.numel == 1:
            return dtypes.literal(value.host.reshape(-1)[0], value.dtype)
        if value.dtype.num == _HALF:
            return f"vload_half({offset}, {self.pointer(value)})"
        return f"{self.pointer(value)}[{offset}]"

    def store(self, value: Value, offset: str, expression: str) -> None:
        ptr = self.pointer(value, writable=True)
        if value.dtype.num == _HALF:
            self.line(f"vstore_half_rte({expression}, {offset}, {ptr});")
        else:
            self.line(f"{ptr}[{offset}] = ({dtypes.storage_type(value.dtype)})({expression});")

    def load_broadcast(self, value: Value, shape: Sequence[int] | None = None) -> str:
        """A local holding ``value`` (seen with ``shape``) broadcast to this work-item's index."""
        shape = value.shape if shape is None else tuple(shape)
        key = (id(value), shape)
        found = self._loads.get(key)
        if found is not None:
            return found
        if value.host is not None and value.numel == 1:
            code = dtypes.literal(value.host.reshape(-1)[0], value.dtype)
        elif shape == self.shape:
            code = self.load(value, "gid")
        else:
            pad = len(self.shape) - len(shape)
            index = self.index()
            indices = ["0" if dim == 1 else index[pad + axis] for axis, dim in enumerate(shape)]
            code = self.load(value, linear(indices, shape))
        name = self.local(dtypes.compute_type(value.dtype), code, prefix="a")
        self._loads[key] = name
        return name

    # -- the source ---------------------------------------------------------------------------

    def source(self) -> str:
        head = f"// {self.comment}\n" if self.comment else ""
        body = "\n".join(f"  {line}" for line in self._lines)
        return (f"{head}__kernel void {self.name}(__global const uchar *restrict C, "
                f"__global uchar *restrict W) {{\n"
                f"  const {self.itype} gid = ({self.itype})get_global_id(0);\n{body}\n}}\n")
