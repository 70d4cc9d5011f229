"""Compile through the cache: import on a hit, compile once per key across processes on a miss.

The sequence, for one key:

1. Read the entry. If it is intact and the plugin imports it, that is a hit.
2. Otherwise take the key's cross-process lock (waiting at most ``lock_timeout``). The holder may
   have published the entry while we waited: read again.
3. Still nothing: say why (the parts of the key that differ from an entry for the same model),
   compile, export, and publish atomically if the compile was worth caching.

A damaged entry, a failing import, an unwritable directory or a lock that never comes: each costs
one warning and a compile, never an exception or a wrong model. What a plugin raises is sorted
first (:data:`EXPECTED_FAILURES`): a payload it refuses is the cache's business (a CacheWarning),
anything else is a bug in the plugin, and gets a PluginWarning of its own that names the plugin
and the device, so that it is not mistaken for the cache's routine recompile.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ember.common.log import get_logger
from ember.errors import BlobFormatError, EmberError
from ember.store import blob

if TYPE_CHECKING:
    from ember.cache.key import CacheKey
    from ember.cache.local import ModelCache
    from ember.cache.remote import RemoteTier
    from ember.store.signing import Signer

log = get_logger("ember.cache")

#: What a device compiled: the cache only hands it between the device's own callbacks (compile,
#: export, import), so it need not know the plugin contract's type for it.
DeviceModel = TypeVar("DeviceModel")
INFO = 20  # logging.INFO, without importing logging on a hit

#: How long a process waits for another one compiling the same model before compiling itself.
LOCK_TIMEOUT_ENV = "EMBER_CACHE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 300.0
#: Set to 1: store every compile, however cheap (tests that need an entry, and users who would
#: rather always have one); admission by timing is skipped.
ADMIT_ALL_ENV = "EMBER_CACHE_ADMIT_ALL"
#: What may legitimately stop a plugin from importing or exporting an entry: a payload or model it
#: refuses (BlobFormatError, NotSupportedError: Ember's errors), the disk, the memory. Anything
#: else it raises is a bug in it (see :func:`warn_plugin_bug`).
EXPECTED_FAILURES = (EmberError, OSError, MemoryError)


def warn_plugin_bug(plugin: str, device: str, action: str, exc: BaseException,
                    should: str) -> None:
    """Say, apart from the cache's own warning, that ``plugin`` raised ``exc`` (not one of
    :data:`EXPECTED_FAILURES`) while ``action``: a PluginWarning and an error in the log, both
    naming the plugin and the device. ``should`` says what the plugin should have raised."""
    import warnings

    from ember.errors import PluginWarning

    message = (f"{plugin} (device {device}) raised {type(exc).__name__} while {action}: {exc}; "
               f"this is a bug in the plugin ({should})")
    log.error("%s", message)
    warnings.warn(message, PluginWarning, stacklevel=2)


def lock_timeout() -> float:
    """Seconds to wait for a key's lock: ``EMBER_CACHE_LOCK_TIMEOUT``, else 300."""
    try:
        return float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT))
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT


@contextlib.contextmanager
def build_lock(cache: ModelCache, digest: str, name: str, problems: list[str]) -> Iterator[bool]:
    """Hold the key's cross-process lock while compiling ``name``, waiting at most
    :func:`lock_timeout`. Yields whether it is held: when the wait ran out, that is noted in
    ``problems`` and the caller compiles anyway (a stuck process must not stop this one)."""
    timeout = lock_timeout()
    with cache.lock(digest, timeout) as locked:
        if not locked:
            problems.append(f"waited {timeout:.1f} s for another process compiling {name}; "
                            "compiled it here too")
        yield locked


def compile_with_cache(
    cache: ModelCache,
    key: CacheKey,
    *,
    compile_model: Callable[[], DeviceModel],
    export_model: Callable[[DeviceModel], bytes | memoryview],
    import_model: Callable[[bytes | memoryview], DeviceModel],
    header_fields: dict[str, Any],
    max_size: int | None = None,
    remote: RemoteTier | None = None,
    signer: Signer | None = None,
) -> tuple[DeviceModel, bool]:
    """Return the compiled model and whether it was loaded from the cache (either tier).

    With a ``signer`` (CACHE_SIGNING_KEY), entries are written signed and only entries that
    verify are hits. Whatever goes wrong with the cache is collected and reported as one
    CacheWarning at the end.
    """
    steps = _Steps(cache, key, compile_model, export_model, import_model, header_fields,
                   max_size, remote, signer)
    try:
        return steps.run()
    finally:
        if steps.problems:
            cache.warn("; ".join(steps.problems))


class _Steps(Generic[DeviceModel]):
    """One compile through the cache; ``problems`` collects what to warn about, once."""

    def __init__(self, cache: ModelCache, key: CacheKey,
                 compile_model: Callable[[], DeviceModel],
                 export_model: Callable[[DeviceModel], bytes | memoryview],
                 import_model: Callable[[bytes | memoryview], DeviceModel],
                 header_fields: dict[str, Any], max_size: int | None,
                 remote: RemoteTier | None, signer: Signer | None) -> None:
        self.cache = cache
        self.key = key
        self.compile_model = compile_model
        self.export_model = export_model
        self.import_model = import_model
        self.header_fields = header_fields
        self.max_size = max_size
        self.remote = remote
        self.signer = signer
        self.problems: list[str] = []
        self.plugin_warned = False  # once per compile: the look under the lock sees it again
        self.refused_entry = False  # an entry was there and refused: the new one replaces it

    @property
    def name(self) -> str:
        return str(self.header_fields.get("model_name", "the model"))

    def _plugin_bug(self, action: str, exc: Exception, should: str) -> None:
        if self.plugin_warned:
            return
        self.plugin_warned = True
        fields = self.header_fields
        plugin = f"{fields.get('plugin', 'the plugin')} {fields.get('plugin_version', '')}"
        warn_plugin_bug(plugin.strip(), str(fields.get("device", "?")), action, exc, should)

    def run(self) -> tuple[DeviceModel, bool]:
        hit = self._import_local() or self._import_remote()
        if hit is not None:
            return hit, True
        with build_lock(self.cache, self.key.digest, self.name, self.problems) as locked:
            if locked:  # the process we waited for may have published it
                hit = self._quietly(self._import_local)
                if hit is not None:
                    return hit, True
            if self.remote is None:
                return self._compile_and_store(), False
            with self.remote.fleet_lock(self.key.digest, expiry=lock_timeout()) as fleet:
                if fleet == "busy":  # another host compiles it: wait for its entry
                    hit = self._import_remote(wait=True)
                elif fleet == "held":  # published between our look and our lock?
                    hit = self._quietly(self._import_remote)
                if hit is not None:
                    return hit, True
                return self._compile_and_store(), False

    def _quietly(self, look: Callable[[], DeviceModel | None]) -> DeviceModel | None:
        seen = len(self.problems)
        hit = look()
        del self.problems[seen:]  # a second look at the same entry: already reported
        return hit

    # -- hits --------------------------------------------------------------------------------

    def _import_local(self) -> DeviceModel | None:
        header, payload = self.cache.read(self.key, signer=self.signer)
        if header is None:
            if isinstance(payload, str):
                self.refused_entry = True
                self.problems.append(f"{payload}; compiled instead")
            return None
        assert not isinstance(payload, str | None)
        return self._import(header, payload, "hit")

    def _import_remote(self, *, wait: bool = False) -> DeviceModel | None:
        if self.remote is None:
            return None
        fetch = self.remote.wait_for if wait else self.remote.get
        data, problem = fetch(self.key.digest)
        if problem:
            self.problems.append(problem)
        if data is None:
            return None
        try:  # the remote tier verified the MAC (or, unsigned, the checksums) over every byte
            header, payload = blob.unpack(data, verify_payload=False)
        except BlobFormatError as exc:  # pragma: no cover - verified by the tier
            self.problems.append(f"remote entry {self.key.digest[:12]} refused: {exc}")
            return None
        compiled = self._import(header, payload, None)
        if compiled is not None:
            from ember.store.atomic import background

            # Write-back, so that the next start is local; this start need not wait for the disk.
            background.submit(self._write_back, data, header)
        return compiled

    def _import(self, header: blob.BlobHeader, payload: bytes | memoryview,
                event: str | None) -> DeviceModel | None:
        start = time.perf_counter()
        try:
            compiled = self.import_model(payload)
        except EXPECTED_FAILURES as exc:  # a payload the plugin refuses: recompile, no crash
            if not self.refused_entry:  # the look under the lock meets the same entry again
                self.cache.record("damaged", self.key.digest)
            self.refused_entry = True
            self.problems.append(f"cache entry {self.key.digest[:12]} for {header.model_name} "
                                 f"could not be imported ({type(exc).__name__}: {exc}); "
                                 "compiled instead")
            return None
        except Exception as exc:  # the plugin's bug: still a compile, but said out loud
            self._plugin_bug(f"importing cache entry {self.key.digest[:12]} for "
                             f"{header.model_name} (compiled instead)", exc,
                             "a payload it cannot use should raise BlobFormatError")
            return None
        if event is not None:
            saved = header.compile_seconds - (time.perf_counter() - start)
            self.cache.record(event, self.key.digest, bytes=header.payload_length,
                              saved=max(saved, 0.0), later=True)
        return compiled

    def _write_back(self, data: bytes | bytearray, header: blob.BlobHeader) -> None:
        failure = self.cache.write_blob(self.key, data)
        if failure:
            log.warning("%s: a remote entry was used without a local copy", failure)
        # recorded here, where the directory exists; the import itself saved this much
        self.cache.record("remote_hit", self.key.digest, bytes=header.payload_length,
                          saved=header.compile_seconds)

    # -- a miss ------------------------------------------------------------------------------

    def _compile_and_store(self) -> DeviceModel:
        # Explaining reads every entry's header: only for someone who will read the answer.
        reason = self.cache.explain_miss(self.key) if log.isEnabledFor(INFO) else None
        if reason:
            log.info("cache miss for %s on %s: an entry for the same model differs: %s",
                     self.name, self.header_fields.get("device"), reason)
        self.cache.record("miss", self.key.digest)
        # Work queued for later (the file digest's memo) gets its worker now, while the device
        # compiles: a compile leaves the interpreter lock free, so the new thread's start costs
        # this one nothing. (Imported here: a hit writes nothing, and does not pay for it.)
        from ember.store.atomic import background

        background.start()
        start = time.perf_counter()
        compiled = self.compile_model()
        compile_seconds = time.perf_counter() - start
        payload = self._admitted_export(compiled, compile_seconds)
        if payload is None:
            return compiled
        fields = {**self.header_fields, "created": time.time(),
                  "compile_seconds": compile_seconds, "key": self.key.digest,
                  "key_parts": self.key.parts}
        chunks = self.cache.encode(self.key, fields, payload, self.signer)
        failure = self.cache.write_blob(self.key, *chunks)
        data = b"".join(chunks) if self.remote else None
        if failure:
            self.problems.append(f"{failure}: {self.name} was compiled but is not cached")
        elif self.refused_entry:
            self.problems.append("the entry was replaced")
        if not failure and self.max_size is not None:
            self.cache.evict(self.max_size)
        if data is not None and self.remote is not None:
            remote_failure = self.remote.put(self.key.digest, data)
            if remote_failure:
                self.problems.append(remote_failure)
            else:
                self.cache.record("remote_write", self.key.digest, bytes=len(data))
        return compiled

    def _admitted_export(self, compiled: DeviceModel,
                         compile_seconds: float) -> bytes | memoryview | None:
        """The payload to store, or None when there is none (the export failed: noted) or the
        compile is not worth storing."""
        # Admission: importing costs about what exporting did (the same bytes, the other way).
        # A compile cheaper than that would only be slowed down by the cache. A process's first
        # export also pays one-time costs (its modules' imports, first allocations) that no
        # later import pays, so a refusal is measured a second time before it stands: one-time
        # costs must not keep small models out of the cache.
        admit_all = _admit_all()
        export_seconds = 0.0
        for _attempt in range(1 if admit_all else 2):
            # The compile succeeded: a failing export must not undo it, whoever is to blame.
            try:
                payload, export_seconds = _timed_export(self.export_model, compiled)
            except EXPECTED_FAILURES as exc:
                self.problems.append(f"exporting {self.name} for the cache failed "
                                     f"({type(exc).__name__}: {exc}); it is not cached")
                return None
            except Exception as exc:
                self._plugin_bug(f"exporting {self.name} for the cache (it is not cached)", exc,
                                 "a model it cannot export should raise NotSupportedError")
                return None
            if admit_all or compile_seconds >= export_seconds:
                return payload
        log.info("not caching %s: compiling (%.1f ms) is cheaper than importing (~%.1f ms)",
                 self.name, compile_seconds * 1e3, export_seconds * 1e3)
        self.cache.record("not_admitted", self.key.digest, compile_seconds=compile_seconds,
                          export_seconds=export_seconds)
        return None


def _admit_all() -> bool:
    return os.environ.get(ADMIT_ALL_ENV, "") not in ("", "0")


def _timed_export(export_model: Callable[[DeviceModel], bytes | memoryview],
                  compiled: DeviceModel) -> tuple[bytes | memoryview, float]:
    """Export, and measure the export's own work: its CPU time with the garbage collector held
    off, so that neither a preempted thread on a busy machine nor a collection of the
    application's garbage makes a worthwhile compile look cheap."""
    import gc  # here: only a miss exports, and a hit need not import it

    collecting = gc.isenabled()
    gc.disable()
    try:
        start = time.thread_time()
        payload = export_model(compiled)
        return payload, time.thread_time() - start
    finally:
        if collecting:
            gc.enable()
