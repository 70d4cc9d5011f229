"""Compile through the cache: import on a hit, compile once per key across processes on a miss.

The sequence, for one key:

1. Read the entry. If it is intact and the plugin imports it, that is a hit.
2. Otherwise take the key's cross-process lock (waiting at most ``lock_timeout``). The holder may
   have published the entry while we waited: read again.
3. Still nothing: say why (the parts of the key that differ from an entry for the same model),
   compile, export, and publish atomically if the compile was worth caching.

A damaged entry, a failing import, an unwritable directory or a lock that never comes: each costs
one warning and a compile, never an exception or a wrong model.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from ember.cache.key import CacheKey
from ember.cache.store import ModelCache
from ember.device import DeviceModel

log = logging.getLogger("ember.cache")

#: How long a process waits for another one compiling the same model before compiling itself.
LOCK_TIMEOUT_ENV = "EMBER_CACHE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 300.0


def lock_timeout() -> float:
    try:
        return float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT))
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT


def compile_with_cache(
    cache: ModelCache,
    key: CacheKey,
    *,
    compile_model: Callable[[], DeviceModel],
    export_model: Callable[[DeviceModel], bytes | memoryview],
    import_model: Callable[[memoryview], DeviceModel],
    header_fields: dict[str, Any],
    max_size: int | None = None,
) -> tuple[DeviceModel, bool]:
    """Return the compiled model and whether it was loaded from the cache.

    Whatever goes wrong with the cache is collected and reported as one CacheWarning at the end.
    """
    problems: list[str] = []
    try:
        return _compile_with_cache(cache, key, compile_model, export_model, import_model,
                                   header_fields, max_size, problems)
    finally:
        if problems:
            cache.warn("; ".join(problems))


def _compile_with_cache(
    cache: ModelCache, key: CacheKey, compile_model: Callable[[], DeviceModel],
    export_model: Callable[[DeviceModel], bytes | memoryview],
    import_model: Callable[[memoryview], DeviceModel], header_fields: dict[str, Any],
    max_size: int | None, problems: list[str],
) -> tuple[DeviceModel, bool]:
    name = header_fields.get("model_name", "the model")
    hit = _import_entry(cache, key, import_model, problems)
    if hit is not None:
        return hit, True
    timeout = lock_timeout()
    with cache.lock(key.digest, timeout) as locked:
        if locked:  # the holder we waited for may have published it
            seen = len(problems)
            hit = _import_entry(cache, key, import_model, problems)
            del problems[seen:]  # the same entry's problem, if any, is already reported
            if hit is not None:
                return hit, True
        else:
            problems.append(f"waited {timeout:.1f} s for another process compiling {name}; "
                            "compiled it here too")
        reason = cache.explain_miss(key)
        if reason:
            log.info("cache miss for %s on %s: an entry for the same model differs: %s",
                     name, header_fields.get("device"), reason)
        cache.record("miss", key.digest)
        start = time.perf_counter()
        compiled = compile_model()
        compile_seconds = time.perf_counter() - start
        try:
            payload, export_seconds = _timed_export(export_model, compiled)
        except Exception as exc:  # the compile succeeded: a failing export must not undo it
            problems.append(f"exporting {name} for the cache failed "
                            f"({type(exc).__name__}: {exc}); it is not cached")
            return compiled, False
        # Admission: importing costs about what exporting did (the same bytes, the other way).
        # A compile cheaper than that would only be slowed down by the cache.
        if compile_seconds < export_seconds:
            log.info("not caching %s: compiling (%.1f ms) is cheaper than importing (~%.1f ms)",
                     name, compile_seconds * 1e3, export_seconds * 1e3)
            return compiled, False
        fields = {**header_fields, "created": time.time(), "compile_seconds": compile_seconds}
        failure = cache.write(key, fields, payload)
        if failure:
            problems.append(f"{failure}: {name} was compiled but is not cached")
        elif problems:
            problems.append("the entry was replaced")
        if not failure and max_size is not None:
            cache.evict(max_size)
        return compiled, False


def _timed_export(export_model: Callable[[DeviceModel], bytes | memoryview],
                  compiled: DeviceModel) -> tuple[bytes | memoryview, float]:
    """Export, and measure the export's own work: its CPU time with the garbage collector held
    off, so that neither a preempted thread on a busy machine nor a collection of the
    application's garbage makes a worthwhile compile look cheap."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        start = time.thread_time()
        payload = export_model(compiled)
        return payload, time.thread_time() - start
    finally:
        if collecting:
            gc.enable()


def _import_entry(cache: ModelCache, key: CacheKey,
                  import_model: Callable[[memoryview], DeviceModel],
                  problems: list[str]) -> DeviceModel | None:
    """Import the entry of ``key``, or note why it cannot be used and return None."""
    header, payload = cache.read(key)
    if header is None:
        if isinstance(payload, str):
            problems.append(f"{payload}; compiled instead")
        return None
    assert isinstance(payload, memoryview)
    start = time.perf_counter()
    try:
        compiled = import_model(payload)
    except Exception as exc:  # a plugin that cannot read its own payload: recompile, never crash
        cache.record("damaged", key.digest)
        problems.append(f"cache entry {key.digest[:12]} for {header.model_name} could not be "
                        f"imported ({type(exc).__name__}: {exc}); compiled instead")
        return None
    saved = header.compile_seconds - (time.perf_counter() - start)
    cache.record("hit", key.digest, bytes=header.payload_length, saved=max(saved, 0.0))
    return compiled
