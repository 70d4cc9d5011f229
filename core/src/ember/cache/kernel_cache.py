"""A plugin's handle on the cache for pieces smaller than a model, such as OpenCL programs.

Devices without EXPORT_IMPORT (OpenVINO's GPU among them) still cache what is slow to build, in
the same CACHE_DIR: the core hands their ``compile`` hook a :class:`KernelCache`. Entries are
``blobs/<key>.cl_cache`` files in the core's container, with its checksum, atomic publish,
per-key locks, eviction and statistics: a plugin never writes a file itself.

The plugin names what identifies an entry (oneDNN's *cache blob id*: kernel source, build
options, platform, device and driver); the core adds the plugin's distribution and version and
Ember's own, so an upgrade never reuses an old binary.

The one way to obtain an entry is :meth:`KernelCache.get_or_build`: look, lock, look again,
build, publish, the same steps (and the same lock and lock timeout) as a whole model's compile
through the cache (``cached_compile.py``).

Kernel entries are native code the plugin hands to a driver (``clCreateProgramWithBinary``): with
a signing key (``CACHE_SIGNING_KEY``) the core verifies each entry's MAC in :meth:`get`, before a
byte reaches the plugin, and signs what :meth:`put` writes. Without one, whoever can write the
cache directory chooses the binaries a driver is given (see docs/caching.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ember._version import __version__
from ember.cache.cached_compile import (
    EXPECTED_FAILURES,
    build_lock,
    lock_timeout,
    warn_plugin_bug,
)
from ember.cache.key import CacheKey, entry_key, model_identity
from ember.cache.local import KERNEL_SUFFIX, ModelCache
from ember.common.log import get_logger
from ember.model.model import Model

if TYPE_CHECKING:
    from ember.store.signing import Signer

log = get_logger("ember.cache")

T = TypeVar("T")
_NONE = object()  # no usable entry (``load`` may return any value, None included)
_REFUSED = object()  # an entry ``load`` could not use: rebuilt without a second look


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

    def get_or_build(self, key: CacheKey, build: Callable[[], tuple[T, bytes | memoryview]],
                     load: Callable[[memoryview], T], *, name: str = "",
                     architecture: str = "") -> T:
        """The object of entry ``key``: loaded from the entry, else built and published.

        1. Read the entry (no lock: a hit never waits) and ``load`` its verified payload.
        2. Otherwise take the key's cross-process lock, waiting at most the lock timeout
           (``EMBER_CACHE_LOCK_TIMEOUT``, 300 s): a process building the same entry is waited
           for, and its entry read again (unless the first look found a damaged or refused one).
        3. Still nothing: ``build()`` returns the object and the payload to publish; the payload
           is published atomically (``put``) and the object returned.

        :param load: makes the object from a payload. It raises ``BlobFormatError`` (or
            another of Ember's errors) when the payload cannot be used (a binary the driver
            refuses, a format from another build): the entry is rejected (noted in
            ``problems``) and rebuilt. Anything else it raises is a bug in the plugin: the entry
            is rebuilt too, and a ``PluginWarning`` names the plugin and the device. Payloads
            are untrusted bytes.
        :param name: what the entry holds, for its header and for messages.
        :param architecture: the device architecture, for the entry's header.

        Problems (a damaged or refused entry, a lock that never came, an unwritable directory)
        are noted in ``problems``, never raised; exceptions from ``build`` propagate.
        """
        noted = len(self.problems)
        found = self._load(key, load)
        if found is not _NONE and found is not _REFUSED:
            return found  # type: ignore[return-value]
        # an entry exists but cannot be used (damaged, or refused by load): rebuild
        unusable = found is _REFUSED or len(self.problems) > noted
        with build_lock(self.cache, key.digest, name or "a kernel", self.problems) as locked:
            if locked and not unusable:  # the process we waited for may have published it
                found = self._load(key, load)
                if found is not _NONE and found is not _REFUSED:
                    return found  # type: ignore[return-value]
            value, payload = build()
            self.put(key, payload, name=name, architecture=architecture)
            return value

    def _load(self, key: CacheKey, load: Callable[[memoryview], T]) -> T | object:
        payload = self.get(key)
        if payload is None:
            return _NONE
        try:
            return load(memoryview(payload))
        except EXPECTED_FAILURES as exc:  # a payload the plugin cannot use: rebuild
            self.reject(key, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the plugin's bug: rebuild too, but said out loud
            fields = self._fields
            warn_plugin_bug(f"{fields['plugin']} {fields['plugin_version']}".strip(),
                            fields["device"], f"loading kernel entry {key.digest[:12]} (rebuilt)",
                            exc, "a payload it cannot use should raise BlobFormatError")
        return _REFUSED

    def model_digest(self, model: Model) -> str:
        """The content digest of ``model``, as the model cache's key holds it, without parsing
        it: a file's digest is remembered against the file's identity (unchanged file, no
        hashing), bytes are hashed, a Model built in memory is hashed as serialized."""
        return model_identity(model, self.cache.file_digests)[0]

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
    def lock(self, key: CacheKey, timeout: float | None = None) -> Iterator[bool]:
        """Hold the key's cross-process lock while building, so that one process builds it;
        yields False when not acquired within ``timeout`` (default: the lock timeout setting,
        ``EMBER_CACHE_LOCK_TIMEOUT``). :meth:`get_or_build` does this for you."""
        with self.cache.lock(key.digest, lock_timeout() if timeout is None else timeout) as locked:
            yield locked
