"""Device memory of a specialised model: two arenas, addressed by offsets baked into the kernels.

Every kernel takes the same two arguments: ``C``, the read-only arena of constants (weights and
folded values, uploaded once), and ``W``, the workspace holding inputs, intermediates and
outputs. Each value lives at a fixed byte offset, written into the kernel source as a literal,
so that launching a kernel sets no argument and the source says exactly what it reads.

Workspace regions are reused: a value's region is freed after the last kernel that reads it, and
the next allocation takes the first free region large enough (the kernel writing a value is
emitted before its inputs are freed, so no kernel reads and writes the same bytes).
"""

from __future__ import annotations

import numpy as np

ALIGNMENT = 64


def _aligned(size: int) -> int:
    return -(-size // ALIGNMENT) * ALIGNMENT


class Region:
    __slots__ = ("arena", "nbytes", "offset")

    def __init__(self, arena: str, offset: int, nbytes: int) -> None:
        self.arena = arena  # "C" (constants) or "W" (workspace)
        self.offset = offset
        self.nbytes = nbytes


class ConstantArena:
    """Host arrays the kernels read, packed at aligned offsets; each array is stored once."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self._offsets: dict[int, Region] = {}
        self._keep: list[np.ndarray] = []  # keeps id() keys valid
        self.size = 0

    def add(self, array: np.ndarray) -> Region:
        region = self._offsets.get(id(array))
        if region is not None:
            return region
        data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        region = Region("C", self.size, data.nbytes)
        padding = _aligned(data.nbytes) - data.nbytes
        self._parts.append(data)
        if padding:
            self._parts.append(np.zeros(padding, np.uint8))
        self.size += data.nbytes + padding
        self._offsets[id(array)] = region
        self._keep.append(array)
        return region

    def to_bytes(self) -> bytes:
        return np.concatenate(self._parts).tobytes() if self._parts else b""


class Workspace:
    """First-fit allocation of workspace regions, with freed regions merged and reused."""

    def __init__(self) -> None:
        self._free: list[tuple[int, int]] = []  # (offset, size), sorted by offset
        self.size = 0

    def allocate(self, nbytes: int) -> Region:
        size = _aligned(max(nbytes, 1))
        for i, (offset, free) in enumerate(self._free):
            if free >= size:
                if free == size:
                    del self._free[i]
                else:
                    self._free[i] = (offset + size, free - size)
                return Region("W", offset, nbytes)
        if self._free and self._free[-1][0] + self._free[-1][1] == self.size:
            offset = self._free.pop()[0]  # grow the last free region instead of leaving a hole
        else:
            offset = self.size
        self.size = offset + size
        return Region("W", offset, nbytes)

    def free(self, region: Region) -> None:
        size = _aligned(max(region.nbytes, 1))
        self._free.append((region.offset, size))
        self._free.sort()
        merged: list[tuple[int, int]] = []
        for offset, free in self._free:
            if merged and merged[-1][0] + merged[-1][1] == offset:
                merged[-1] = (merged[-1][0], merged[-1][1] + free)
            else:
                merged.append((offset, free))
        self._free = merged
