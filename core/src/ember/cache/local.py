"""A model-cache directory: blobs, locks, remembered file digests and an event log.

Layout of a cache directory (all names are Ember's; other tools' files are left alone)::

    blobs/<key>.blob    one Ember blob per compiled model (ember.store.blob format)
    locks/<key>.lock    cross-process lock files, one per key being compiled
    files/<id>.json     content digests of model files (see file_digest.py)
    events.log          append-only JSON lines: hits, misses, writes, evictions, damage

Blobs are read whole into memory, never memory-mapped: a file truncated by another process
then gives a checksum error, not a SIGBUS. Nothing read here is unpickled or evaluated, and every
byte read back is untrusted: blobs go through ember.store.blob's total parser (and, with a signing
key, ember.store.signing's MAC), event lines through ember.common.safe_json. What a header claims is
compared with the file's size before anything is allocated, and a file with holes (a sparse file
claims a size it does not hold on disk) is verified in bounded pieces before it is read whole. Every
file here is opened through ember.store.confined: a link planted in the directory is refused, never
followed.

Without a signing key a cache directory is as trustworthy as whoever can write to it: the
checksums catch damage, not forgery. With one (``CACHE_SIGNING_KEY``), every entry written is
signed and an entry that does not verify is a miss.
"""

from __future__ import annotations

import _thread  # threading's locks, without importing threading (~1 ms of a warm start)
import atexit
import contextlib
import json
import os
import time
import warnings
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from ember.cache.file_digest import RACY_SECONDS, FileDigests, Identity, identity
from ember.cache.key import CacheKey, explain_difference
from ember.cache.shared_dir import check_in_pieces, has_holes, warn_if_shared
from ember.common import safe_json
from ember.common.log import get_logger
from ember.errors import BlobFormatError, CacheWarning, PlantedLinkError
from ember.store import blob, confined

if TYPE_CHECKING:
    from pathlib import Path

    from ember.cache.records import CacheEntry, CacheStats
    from ember.store.signing import Signer

log = get_logger("ember.cache")

BLOB_SUFFIX = ".blob"
#: Kernel entries (compiled OpenCL programs and the like, see kernel_cache.py): OpenVINO's name.
KERNEL_SUFFIX = ".cl_cache"
_SUFFIXES = (BLOB_SUFFIX, KERNEL_SUFFIX)
#: A temporary file older than this was left by a killed writer and is removed by prune().
STALE_TEMP_SECONDS = 3600
_EVENTS_COMPACT_BYTES = 1 << 20
#: An entry's last use (its mtime, for least-recently-used eviction) is brought forward on a hit
#: only when older than this: eviction needs no finer clock, and a hit saves a write.
LAST_USE_RESOLUTION = 60.0
#: An events.log larger than this is not read for statistics (it is compacted well before).
_EVENTS_MAX_READ = 64 << 20
_EVENT_LINE_MAX = 4096

_EVENT_COUNTER = {"hit": "hits", "miss": "misses", "write": "writes", "evict": "evictions",
                  "damaged": "damaged", "remote_hit": "remote_hits",
                  "remote_write": "remote_writes", "not_admitted": "not_admitted"}
_COUNTERS = (*_EVENT_COUNTER.values(), "bytes_read", "bytes_written")

# In-process locks per (directory, key): file locks alone do not order threads reliably on every
# platform, and a thread waiting here costs no file descriptor. One table per process, not per
# ModelCache: two caches of the same directory (two Cores) must share a key's lock. Weak values
# keep it bounded by the keys being compiled now: a lock is dropped once no thread holds or waits
# for it (each keeps a strong reference meanwhile), so a long-running process that compiles many
# models does not keep a lock per key it ever saw.
_thread_locks: weakref.WeakValueDictionary[tuple[str, str], _thread.LockType] = \
    weakref.WeakValueDictionary()
_thread_locks_guard = _thread.allocate_lock()


def __getattr__(name: str) -> Any:
    # CacheEntry and CacheStats live in ember.cache.records since a hit stopped defining them
    if name in ("CacheEntry", "CacheStats"):
        from ember.cache import records

        return getattr(records, name)
    raise AttributeError(f"module 'ember.cache.local' has no attribute {name!r}")


class ModelCache:
    """One cache directory. Cheap to create: nothing is written until the first blob."""

    # The paths are kept as str and used through os.path: a hit runs here, and importing
    # pathlib would cost every warm start milliseconds. root, blobs and locks are Paths for
    # everyone else.
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        self._blobs = os.path.join(self._root, "blobs")
        self._locks = os.path.join(self._root, "locks")
        self._events = os.path.join(self._root, "events.log")
        self.file_digests = FileDigests(self._root, os.path.join(self._root, "files"))
        self._verified: dict[str, Identity] = {}  # entries this process checked, by identity

    @property
    def root(self) -> Path:
        from pathlib import Path

        return Path(self._root)

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    # -- reading -----------------------------------------------------------------------------

    def blob_path(self, key: str, suffix: str = BLOB_SUFFIX) -> Path:
        return self.blobs / f"{key}{suffix}"

    def _blob_file(self, key: str, suffix: str = BLOB_SUFFIX) -> str:
        return os.path.join(self._blobs, key + suffix)

    def read(self, key: CacheKey, suffix: str = BLOB_SUFFIX, signer: Signer | None = None
             ) -> tuple[blob.BlobHeader | None, bytes | memoryview | str | None]:
        """Look up ``key``: ``(header, payload)`` for an intact entry, ``(None, None)`` when
        there is none, ``(None, problem)`` when the entry cannot be used (damaged, unreadable,
        or, with a ``signer``, unsigned or not signed with its key).

        Nothing is warned here: the caller reports one warning per compile.
        """
        path = self._blob_file(key.digest, suffix)
        if signer is None:
            warn_if_shared(self._root)
        try:
            fd = confined.open_file(self._root, ("blobs",), key.digest + suffix, os.O_RDONLY)
            with open(fd, "rb") as blob_file:
                size = os.fstat(fd).st_size
                if has_holes(os.fstat(fd)):  # claims more than the disk holds: check first
                    check_in_pieces(blob_file, size, key.digest, signer)
                if signer is None:  # the common path: ember.store.signing is not imported
                    header, payload = blob.read_file(blob_file, size)
                else:  # a signed cache checks the entry's MAC at every read
                    from ember.store.signing import open_blob

                    header, payload = open_blob(blob_file.read(size + 1), key.digest, signer)
                # After the read: a write that changed what was read has changed ctime by now.
                stat = os.fstat(fd)
                if signer is None:
                    if self._verified.get(path) != identity(stat):
                        blob.check_payload(header, payload)
                    if header.key != key.digest:
                        raise BlobFormatError(f"entry holds key {header.key[:12]}..., "
                                              "not its file name")
                if time.time() - stat.st_mtime > LAST_USE_RESOLUTION:
                    with contextlib.suppress(OSError):
                        os.utime(fd)  # last use, for least-recently-used eviction (this inode)
                        stat = os.fstat(fd)
        except (FileNotFoundError, PlantedLinkError):  # a link was warned about, once
            return None, None
        except OSError as exc:
            return None, f"cache entry {path} cannot be read ({exc.strerror or exc})"
        except BlobFormatError as exc:
            self.record("damaged", key.digest)
            return None, f"cache entry {os.path.basename(path)} is damaged ({exc})"
        # Entries are replaced by rename (a new inode), never rewritten in place; a write in
        # place changes ctime, which nobody can set back. So an entry whose identity has not
        # changed since this process verified it need not be hashed again (git's racy rule
        # applies: not within RACY_SECONDS of its last change).
        if time.time() - max(stat.st_mtime, stat.st_ctime) > RACY_SECONDS:
            self._verified[path] = identity(stat)
        return header, payload

    def explain_miss(self, key: CacheKey) -> str | None:
        """Why no entry matched, when an entry for the same model exists; None otherwise."""
        for entry_path in self._blob_files():
            header = _read_header(entry_path)
            if header is None or header.key_parts.get("model") != key.model_digest:
                continue
            return explain_difference(key.parts, header.key_parts)
        return None

    # -- writing -----------------------------------------------------------------------------

    def write(self, key: CacheKey, header_fields: dict[str, Any],
              payload: bytes | memoryview, suffix: str = BLOB_SUFFIX,
              signer: Signer | None = None) -> str | None:
        """Publish a blob atomically (signed with ``signer`` when given); return None, or what
        went wrong (nothing is raised)."""
        return self._publish(key, suffix, *self.encode(key, header_fields, payload, signer))

    @staticmethod
    def encode(key: CacheKey, header_fields: dict[str, Any], payload: bytes | memoryview,
               signer: Signer | None = None) -> tuple[bytes | memoryview, ...]:
        """The chunks of an entry's file (prefix, payload and, signed, the tag): not joined."""
        prefix, _ = blob.encode({**header_fields, "key": key.digest, "key_parts": key.parts},
                                payload, signed=signer is not None)
        if signer is None:
            return prefix, payload
        from ember.store.signing import seal

        return seal(signer, key.digest, prefix, payload)

    def write_blob(self, key: CacheKey, *chunks: bytes | bytearray | memoryview,
                   suffix: str = BLOB_SUFFIX) -> str | None:
        """Publish a whole blob as it is (one fetched from the remote tier, already verified),
        given as consecutive chunks."""
        return self._publish(key, suffix, *chunks)

    def _publish(self, key: CacheKey, suffix: str,
                 *chunks: bytes | bytearray | memoryview) -> str | None:
        from ember.store.atomic import write_inside  # here: a hit writes no entry

        try:
            write_inside(self._root, ("blobs",), key.digest + suffix, *chunks)
        except PlantedLinkError:
            return None  # warned about once, by ember.store.confined; not a failure to repeat
        except OSError as exc:
            return f"the model cache {self._root} cannot be written ({exc.strerror or exc})"
        self.record("write", key.digest, bytes=sum(memoryview(c).nbytes for c in chunks))
        self.compact_events()
        return None

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float) -> Iterator[bool]:
        """Hold the cross-process lock of ``key``; yields False when not acquired in time.

        The lock is an OS file lock, released by the kernel when its holder dies, so a crashed
        process never leaves a lock that others must break.
        """
        deadline = time.monotonic() + timeout
        with _thread_locks_guard:
            thread_lock = _thread_locks.setdefault((self._root, key), _thread.allocate_lock())
        if not thread_lock.acquire(timeout=max(timeout, 0)):
            yield False
            return
        try:
            file_lock = confined.file_lock(self._root, ("locks",), f"{key}.lock",
                                           max(deadline - time.monotonic(), 0))
            try:
                locked = file_lock.__enter__()
            except OSError:
                # a read-only directory (nothing to coordinate, nothing will be written), or a
                # planted link (refused with a warning; writes will be refused too)
                yield True
                return
            try:
                yield locked
            finally:
                file_lock.__exit__(None, None, None)
        finally:
            thread_lock.release()

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        warnings.warn(message, CacheWarning, stacklevel=5)

    # -- statistics --------------------------------------------------------------------------

    def record(self, event: str, key: str, *, later: bool = False, **fields: Any) -> None:
        """Append one event line; a single O_APPEND write, so concurrent writers do not mix.

        ``later``: append it when the process exits (or statistics are read here first), not
        now: a hit is recorded so, so that a warm start does not wait for the event log.
        """
        line = json.dumps({"event": event, "key": key, "time": time.time(), **fields}) + "\n"
        if later and len(_deferred) < _MAX_DEFERRED:
            _deferred.append((self, line))
            return
        self._append(line)

    def _append(self, line: str) -> None:
        try:
            fd = confined.open_file(self._root, (), "events.log",
                                    os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except OSError:
            return  # no directory yet, or read-only: statistics are best effort
        try:
            os.write(fd, line.encode())
        except OSError:
            pass
        finally:
            os.close(fd)

    def stats(self) -> CacheStats:
        from ember.cache.records import CacheStats

        flush_deferred_events()
        entries = self.entries()
        return CacheStats(**self._counters(), entries=len(entries),
                          size=sum(e.size for e in entries))

    def _counters(self) -> dict[str, Any]:
        counts: dict[str, Any] = dict.fromkeys(_COUNTERS, 0)
        counts["compile_seconds_saved"] = 0.0
        for event in self._read_events():
            kind = event.get("event")
            if type(kind) is not str:
                continue
            if kind == "summary":  # what compaction folded together
                for name in counts:
                    counts[name] += _count(event, name)
                continue
            if kind in _EVENT_COUNTER:
                counts[_EVENT_COUNTER[kind]] += 1
            if kind in ("hit", "remote_hit"):
                counts["bytes_read"] += _count(event, "bytes")
                counts["compile_seconds_saved"] += _count(event, "saved")
            elif kind == "write":
                counts["bytes_written"] += _count(event, "bytes")
        return counts

    def compact_events(self) -> None:
        """Fold the event log into one summary line once it grows large (called after writes).

        Events appended by other processes while the log is rewritten may be lost: these are
        statistics, and losing a few is better than making every start take a lock.
        """
        try:
            if os.lstat(self._events).st_size < _EVENTS_COMPACT_BYTES:
                return
            with confined.file_lock(self._root, ("locks",), "events.lock", 0) as locked:
                if locked:
                    from ember.store.atomic import write_inside

                    summary = {"event": "summary", **self._counters()}
                    write_inside(self._root, (), "events.log",
                                 (json.dumps(summary) + "\n").encode())
        except OSError:
            pass

    def _read_events(self) -> Iterator[dict[str, Any]]:
        """The log's events; a malformed line (anyone may append one) is skipped."""
        try:
            with open(confined.open_file(self._root, (), "events.log", os.O_RDONLY),
                      "rb") as log_file:
                data = log_file.read(_EVENTS_MAX_READ)
        except OSError:
            return
        for line in data.splitlines():
            with contextlib.suppress(BlobFormatError):
                event = safe_json.loads(line, what="event", max_size=_EVENT_LINE_MAX,
                                        max_depth=2, max_nodes=64)
                if type(event) is dict:
                    yield event

    # -- listing and maintenance -------------------------------------------------------------

    def _blob_files(self) -> list[Path]:
        from ember.store.atomic import TEMP_PREFIX  # listing is for misses and maintenance

        if confined.is_link(self._root, "blobs"):
            return []  # another directory's files are not ours to list, verify or remove
        try:
            return [p for p in self.blobs.iterdir()
                    if p.suffix in _SUFFIXES and not p.name.startswith(TEMP_PREFIX)]
        except OSError:
            return []

    def entries(self) -> list[CacheEntry]:
        """Every readable entry, least recently used first."""
        from ember.cache.records import CacheEntry

        found = []
        for path in self._blob_files():
            header = _read_header(path)
            try:
                stat = path.stat()
            except OSError:
                continue
            if header is None:
                found.append(CacheEntry(path.stem, path, "?", "?", "?", "?", stat.st_size,
                                        stat.st_mtime, stat.st_mtime, 0.0))
                continue
            found.append(CacheEntry(
                key=header.key, path=path, model_name=header.model_name, device=header.device,
                plugin=header.plugin, plugin_version=header.plugin_version, size=stat.st_size,
                created=header.created, last_used=stat.st_mtime,
                compile_seconds=header.compile_seconds,
            ))
        return sorted(found, key=lambda e: e.last_used)

    def verify(self, signer: Signer | None = None) -> list[tuple[Path, str]]:
        """Check every entry's header and checksums (and signature, given a ``signer``); return
        ``(path, problem)`` for bad ones."""
        from ember.store.signing import open_blob

        problems = []
        for path in self._blob_files():
            try:
                with _open_entry(path) as entry_file:
                    open_blob(entry_file.read(), path.stem, signer)
            except (OSError, BlobFormatError) as exc:
                problems.append((path, str(exc)))
        return problems

    def prune(self, max_size: int) -> list[CacheEntry]:
        """Remove damaged entries, temporary files left by killed writers, and then least
        recently used entries until the blobs total at most ``max_size`` bytes."""
        from ember.store.atomic import TEMP_PREFIX

        for path, _problem in self.verify():
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in (self.root, self.blobs, self.file_digests.directory):
            for temp in folder.glob(f"{TEMP_PREFIX}*") if folder.is_dir() else []:
                with contextlib.suppress(OSError):
                    if time.time() - temp.stat().st_mtime > STALE_TEMP_SECONDS:
                        temp.unlink()
        return self.evict(max_size)

    def evict(self, max_size: int) -> list[CacheEntry]:
        """Remove least recently used entries until the blobs total at most ``max_size`` bytes."""
        removed = []
        entries = self.entries()
        total = sum(e.size for e in entries)
        for entry in entries:  # oldest use first
            if total <= max_size:
                break
            with contextlib.suppress(FileNotFoundError):
                entry.path.unlink()
                removed.append(entry)
                self.record("evict", entry.key, bytes=entry.size)
            total -= entry.size
        return removed

    def clear(self) -> None:
        """Remove every entry, lock, remembered digest and statistic of this directory."""
        import shutil

        for name in ("blobs", "locks", "files"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._events)


# Events recorded ``later`` (hits), appended at exit: one list per process, because the atexit
# hook that empties it is per process, and a hit must not wait for the event log of whichever
# cache directory it came from. Bounded: beyond _MAX_DEFERRED, a long-running process that hits
# often appends as it goes.
_deferred: list[tuple[ModelCache, str]] = []
_MAX_DEFERRED = 1000


def flush_deferred_events() -> None:
    """Append the events recorded ``later`` (at exit, and before statistics are read)."""
    while _deferred:
        cache, line = _deferred.pop(0)
        cache._append(line)


atexit.register(flush_deferred_events)


def _open_entry(path: Path) -> BinaryIO:
    """An entry of a listing, opened as ember.store.confined opens files: a FIFO or a link planted
    among the entries is refused (OSError), never read (a FIFO would block a listing forever)."""
    blobs = path.parent
    return open(confined.open_file(str(blobs.parent), (blobs.name,), path.name, os.O_RDONLY),
                "rb")


def _read_header(path: Path) -> blob.BlobHeader | None:
    """A blob file's header (for listings), or None when it is not a readable blob."""
    try:
        with _open_entry(path) as blob_file:
            return blob.read_file_header(blob_file)
    except (OSError, BlobFormatError):
        return None


def _count(event: dict[str, Any], name: str) -> float:
    """A counter's value in an event line: a finite, non-negative number, else 0."""
    value = event.get(name, 0)
    return value if type(value) in (int, float) and value >= 0 else 0
