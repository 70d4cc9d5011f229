"""A plugin's handle on the cache for pieces smaller than a model, such as OpenCL programs.

Devices without EXPORT_IMPORT (OpenVINO's GPU among them) still cache what is slow to build, in
the same CACHE_DIR: the core hands their ``compile`` hook a :class:`KernelCache`. Entries are
``blobs/<key>.cl_cache`` files in the core's container, with its checksum, atomic publish,
per-key locks, eviction and statistics: a plugin never writes a file itself.

The plugin names what identifies an entry (oneDNN's *cache blob id*: kernel source, build
options, platform, device and driver); the core adds the plugin's distribution and version and
Ember's own, so an upgrade never reuses an old binary.

Kernel entries are native code the plugin hands to a driver (``clCreateProgramWithBinary``): with
a signing key (``CACHE_SIGNING_KEY``) the core verifies each entry's MAC in :meth:`get`, before a
byte reaches the plugin, and signs what :meth:`put` writes. Without one, whoever can write the
cache directory chooses the binaries a driver is given (see docs/caching.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ember._version import __version__
from ember.cache.key import CacheKey, entry_key
from ember.cache.store import KERNEL_SUFFIX, ModelCache
from ember.log import get_logger

if TYPE_CHECKING:
    from ember.signing import Signer

log = get_logger("ember.cache")


class KernelCache:
    """Keyed binary entries for one plugin and device, in a model-cache directory."""

    def __init__(self, cache: ModelCache, *, plugin: str, plugin_version: str, device: str,
                 max_size: int | None = None, signer: Signer | None = None) -> None:
        self.cache = cache
        self.signer = signer
        self._scope = {"kind": "kernel", "plugin": plugin, "plugin_version": plugin_version}
        self._fields = {"plugin": plugin, "plugin_version": plugin_version, "device": device}
        self._max_size = max_size
        self.problems: list[str] = []  # reported by the core as one warning per compile

    def key(self, blob_id: bytes | str | Mapping[str, Any]) -> CacheKey:
        """The entry key for a plugin's identification of a kernel (bytes, text or a mapping)."""
        if isinstance(blob_id, bytes):
            blob_id = blob_id.hex()
        return entry_key({**self._scope, "id": blob_id})

    def has(self, key: CacheKey) -> bool:
        """Whether an entry exists for ``key`` (not whether it is intact: ``get`` checks)."""
        return self.cache.blob_path(key.digest, KERNEL_SUFFIX).exists()

    def report(self) -> None:
        """Warn, once, about the problems noted so far, and forget them. The core calls this
        after ``compile``; a plugin that builds later (at the first inference of a new input
        shape) calls it after such a build."""
        if self.problems:
            problems, self.problems[:] = list(self.problems), []
            self.cache.warn("; ".join(problems))

    def get(self, key: CacheKey) -> bytes | memoryview | None:
        """The verified payload of ``key``, or None (a damaged entry is noted and ignored)."""
        header, payload = self.cache.read(key, KERNEL_SUFFIX, self.signer)
        if header is None:
            if isinstance(payload, str):
                self.problems.append(f"{payload}; rebuilt it")
            return None
        self.cache.record("hit", key.digest, bytes=header.payload_length)
        return payload

    def put(self, key: CacheKey, payload: bytes | memoryview, *, name: str = "",
            architecture: str = "") -> bool:
        """Publish an entry atomically; False (and a noted problem) when it cannot be written."""
        fields = {"ember_version": __version__, "device_architecture": architecture,
                  "model_name": name, **self._fields}
        failure = self.cache.write(key, fields, payload, KERNEL_SUFFIX, self.signer)
        if failure:
            self.problems.append(failure)
            return False
        self.cache.record("miss", key.digest)
        if self._max_size is not None:
            self.cache.evict(self._max_size)
        return True

    def reject(self, key: CacheKey, reason: str) -> None:
        """Note that an entry's payload was refused by the device (a driver change, a binary
        that no longer loads): the plugin rebuilds it and ``put`` replaces it."""
        self.cache.record("damaged", key.digest)
        self.problems.append(f"kernel entry {key.digest[:12]} was rejected ({reason}); rebuilt")

    @contextlib.contextmanager
    def lock(self, key: CacheKey, timeout: float = 300.0) -> Iterator[bool]:
        """Hold the key's cross-process lock while building, so that one process builds it."""
        with self.cache.lock(key.digest, timeout) as locked:
            yield locked
