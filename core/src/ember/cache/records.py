"""What a cache directory reports about itself: its entries and its counters.

Only listings and statistics make these (``ember cache ls``, ``ember.cache.stats``); a cache hit
does not import this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class CacheEntry(NamedTuple):
    """One compiled model in a cache directory."""

    key: str
    path: Path
    model_name: str
    device: str
    plugin: str
    plugin_version: str
    size: int
    created: float
    last_used: float
    compile_seconds: float


class CacheStats(NamedTuple):
    """Counters over a cache directory's lifetime (until cleared)."""

    hits: int = 0  # from the local directory
    remote_hits: int = 0  # from the remote tier (and written back to the directory)
    misses: int = 0
    writes: int = 0
    remote_writes: int = 0
    evictions: int = 0
    damaged: int = 0
    #: compiles not worth caching: cheaper than exporting (and so importing) their result
    not_admitted: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    compile_seconds_saved: float = 0.0
    entries: int = 0
    size: int = 0
