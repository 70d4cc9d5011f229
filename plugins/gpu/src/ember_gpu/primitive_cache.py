"""The in-memory primitive cache: built kernels by cache blob id, least recently used first out.

It sits in front of the persistent cache, as oneDNN's primitive cache does: creating a kernel
that is already in memory returns it (a ``cache_hit``) and neither builds nor reads a blob. Its
capacity (in kernels; 0 switches it off) is ``EMBER_PRIMITIVE_CACHE_CAPACITY`` (default 1024,
oneDNN's), read on first use, or whatever ``set_primitive_cache_capacity`` last set.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

CAPACITY_ENV = "EMBER_PRIMITIVE_CACHE_CAPACITY"
DEFAULT_CAPACITY = 1024

_lock = threading.Lock()
_entries: OrderedDict[bytes, Any] = OrderedDict()
_capacity: int | None = None


def _from_environment() -> int:
    try:
        return max(int(os.environ.get(CAPACITY_ENV, DEFAULT_CAPACITY)), 0)
    except ValueError:
        return DEFAULT_CAPACITY


def get_primitive_cache_capacity() -> int:
    """How many kernels the primitive cache keeps."""
    global _capacity
    with _lock:
        if _capacity is None:
            _capacity = _from_environment()
        return _capacity


def set_primitive_cache_capacity(capacity: int) -> None:
    """Keep at most ``capacity`` kernels in memory (0: none); the least recently used go first."""
    global _capacity
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
        raise ValueError(f"the primitive cache capacity is a count >= 0, not {capacity!r}")
    with _lock:
        _capacity = capacity
        _trim()


def lookup(blob_id: bytes) -> Any | None:
    with _lock:
        found = _entries.get(blob_id)
        if found is not None:
            _entries.move_to_end(blob_id)
        return found


def insert(blob_id: bytes, kernel: Any) -> Any:
    """Keep ``kernel``; if an identical one arrived meanwhile (another thread), return that."""
    global _capacity
    with _lock:
        if _capacity is None:
            _capacity = _from_environment()
        found = _entries.get(blob_id)
        if found is not None:
            _entries.move_to_end(blob_id)
            return found
        if _capacity:
            _entries[blob_id] = kernel
            _trim()
        return kernel


def size() -> int:
    with _lock:
        return len(_entries)


def _trim() -> None:
    while len(_entries) > (_capacity or 0):
        _entries.popitem(last=False)
