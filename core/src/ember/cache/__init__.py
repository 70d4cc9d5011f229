"""The model cache: compiled models stored as checksummed blobs in a directory.

Enable it with ``core.set_property({"CACHE_DIR": path})`` (or per device, per compile, or with
the ``EMBER_CACHE_DIR`` environment variable). This package is also the API to look after a
cache directory::

    from ember import cache
    cache.entries("path/to/cache")        # what is cached, least recently used first
    cache.stats("path/to/cache")          # hits, misses, bytes, compile time saved
    cache.verify("path/to/cache")         # [(file, problem)] for damaged entries
    cache.prune("path/to/cache", 10**9)   # drop damaged entries, then least recently used
    cache.clear("path/to/cache")
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ember.cache.key import CacheKey, make_key
from ember.cache.local import ModelCache

if TYPE_CHECKING:
    from pathlib import Path

    from ember.cache.kernel_cache import KernelCache
    from ember.cache.records import CacheEntry, CacheStats


def __getattr__(name: str) -> Any:
    # KernelCache serves devices without EXPORT_IMPORT only, and the listing records serve
    # listings: a CPU start imports neither.
    if name == "KernelCache":
        from ember.cache.kernel_cache import KernelCache

        return KernelCache
    if name in ("CacheEntry", "CacheStats"):
        from ember.cache import records

        return getattr(records, name)
    raise AttributeError(f"module 'ember.cache' has no attribute {name!r}")

__all__ = [
    "CacheEntry",
    "CacheKey",
    "CacheStats",
    "KernelCache",
    "ModelCache",
    "clear",
    "entries",
    "make_key",
    "prune",
    "stats",
    "verify",
]

PathLike = str | os.PathLike[str]


def entries(cache_dir: PathLike) -> list[CacheEntry]:
    """Every entry of a cache directory, least recently used first."""
    return ModelCache(cache_dir).entries()


def stats(cache_dir: PathLike) -> CacheStats:
    """Hits, misses, bytes read and written, compile time saved, entries and size."""
    return ModelCache(cache_dir).stats()


def verify(cache_dir: PathLike) -> list[tuple[Path, str]]:
    """Check every entry's checksums; return the damaged ones with what is wrong."""
    return ModelCache(cache_dir).verify()


def prune(cache_dir: PathLike, max_size: int) -> list[CacheEntry]:
    """Remove damaged entries, then least recently used ones down to ``max_size`` bytes."""
    return ModelCache(cache_dir).prune(max_size)


def clear(cache_dir: PathLike) -> None:
    """Remove everything Ember stored in a cache directory (other files are left alone)."""
    ModelCache(cache_dir).clear()
