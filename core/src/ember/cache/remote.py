"""A shared cache tier on Redis, for a fleet of hosts that start the same models.

Configured by one URL, ``CACHE_REMOTE=redis://host:6379/0?prefix=ember&ttl=86400&timeout=0.5``
(query options: ``prefix`` namespace, ``ttl`` seconds, ``timeout`` seconds per operation,
``read_only=1`` for hosts that must not write, ``wait`` seconds to wait for another host's
compile, ``max_entry`` the largest entry fetched, ``500M`` or bytes, ``unsigned=1`` to waive
signing), and a signing key, ``CACHE_SIGNING_KEY``. The URL's password and the key are never
shown: not in reprs, warnings or logs (see :func:`redact`).

Layout in Redis, for an entry ``K`` (the model cache key)::

    <prefix>:manifest:K             JSON: upload id, chunk count and size, size, signature
    <prefix>:chunk:K:<upload>:<i>   the entry file's bytes, in chunks of CHUNK_SIZE
    <prefix>:lock:K                 the fleet lock: one host compiles K, with an expiry

Chunks are written under a fresh upload id first and the manifest last, so a partial upload is
never an entry. The chunks hold exactly what a local CACHE_DIR entry holds: a blob signed with
ember.store.signing's keyed BLAKE3 MAC (over the header, the payload and the key K), the tag last;
the manifest repeats the tag in hex. An entry whose MAC does not verify is never imported. Whoever
can write to the Redis server can therefore waste compute (delete or corrupt entries), never run
code or change results: nothing is unpickled, evaluated, or trusted before its signature and
checksums are verified, and every field of a manifest is type- and range-checked first (sizes and
chunk counts bounded, a size above ``max_entry`` refused), so no value written to any key makes a
start fail. The buffer an entry is received into is mapped, not filled: a manifest claiming more
than its chunks hold costs the pages that arrived, not the size it claims.

The remote never makes a start fail or hang: every operation has a timeout, and after one failure
of the server, the network or a reply (:func:`server_errors`) the tier is skipped by this process
for ``DOWN_SECONDS``. Anything else raised here is a bug in Ember, and is not hidden as a server
that went down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ember.common import safe_json
from ember.errors import BlobFormatError, PropertyValueError
from ember.store import blob, signing

log = logging.getLogger("ember.cache")

CHUNK_SIZE = 4 << 20  # Redis moves a few MB per command without stalling other clients
DOWN_SECONDS = 30.0
_MANIFEST_VERSION = 2
#: Bounds on what a manifest may claim, so that a forged one costs bounded memory and commands:
#: at most MAX_BLOB_SIZE / MIN_CHUNK_SIZE = 65,536 chunks.
MAX_BLOB_SIZE = 4 << 30
#: Default of the ``max_entry`` option: the largest entry a host fetches.
DEFAULT_MAX_ENTRY = 2 << 30
MIN_CHUNK_SIZE = 64 << 10
MAX_CHUNK_SIZE = 512 << 20  # Redis's own limit on a string value
_MANIFEST_MAX = 4096
_UPLOAD = re.compile(r"[0-9a-f]{32}").fullmatch
_SIGNATURE = safe_json.is_hex(2 * signing.TAG_SIZE)
# Releases the fleet lock only if this host still holds it (its expiry may have passed).
_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('del', KEYS[1]) else return 0 end")

# The breaker: url -> when to try the server again. Per process, not per RemoteTier: every Core
# of a process makes its own tiers, and a server found down by one must be skipped by all for
# DOWN_SECONDS, not probed again by each (each probe may cost a whole timeout). Bounded by the
# CACHE_REMOTE URLs the program configures (a few); an entry past its time is dropped when read.
_down_until: dict[str, float] = {}
_down_lock = threading.Lock()


@dataclass(frozen=True)
class RemoteSettings:
    url: str = field(repr=False)  # without the query options; holds the password, if any
    prefix: str = "ember"
    ttl: int | None = None
    timeout: float = 0.5
    wait: float = 120.0
    read_only: bool = False
    signing_key: bytes | None = field(default=None, repr=False)
    max_entry: int = DEFAULT_MAX_ENTRY

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in
                          ("prefix", "ttl", "timeout", "wait", "read_only", "max_entry"))
        key = "<set>" if self.signing_key else None
        return f"RemoteSettings(url={redact(self.url)!r}, {shown}, signing_key={key})"

    @property
    def shown_url(self) -> str:
        """The URL with its password replaced, for messages."""
        return redact(self.url)

    @classmethod
    def parse(cls, value: str, signing_key: str | bytes | None) -> RemoteSettings:
        parts = urlsplit(str(value))
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise PropertyValueError(
                f"CACHE_REMOTE must be a redis:// URL, not {redact(str(value))!r}")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(options) - {"prefix", "ttl", "timeout", "wait", "read_only", "unsigned",
                                  "max_entry"}
        if unknown:
            raise PropertyValueError(f"unknown CACHE_REMOTE options {sorted(unknown)}")
        key = signing_key.encode() if isinstance(signing_key, str) else signing_key
        if key is not None and not key:
            raise PropertyValueError("CACHE_SIGNING_KEY is empty: an empty key signs nothing; "
                                     "set a secret, or unset it")
        if not key and options.get("unsigned") != "1":
            raise PropertyValueError(
                "a remote cache needs CACHE_SIGNING_KEY (or EMBER_CACHE_SIGNING_KEY), so that "
                "whoever can write to it cannot change results; add ?unsigned=1 to CACHE_REMOTE "
                "to waive that explicitly")
        try:
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
            return cls(
                url=urlunsplit(parts._replace(query="")),
                prefix=options.get("prefix", "ember"),
                ttl=int(options["ttl"]) if "ttl" in options else None,
                timeout=float(options.get("timeout", 0.5)),
                wait=float(options.get("wait", 120.0)),
                read_only=options.get("read_only") == "1",
                signing_key=key or None,
                max_entry=_size_option(options.get("max_entry")),
            )
        except ValueError as exc:
            raise PropertyValueError(f"bad CACHE_REMOTE option: {exc}") from exc


def _size_option(value: str | None) -> int:
    from ember.common.sizes import parse_size

    if value is None:
        return DEFAULT_MAX_ENTRY
    size = parse_size(value)
    if size is None or not 0 < size <= MAX_BLOB_SIZE:
        raise ValueError(f"max_entry must be a size up to {MAX_BLOB_SIZE} bytes, not {value!r}")
    return size


def redact(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***`` (the user name stays)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    authority, slash, path = rest.partition("/")
    credentials, at, host = authority.rpartition("@")
    if not at:
        return url
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}{slash}{path}"


def _without_secrets(text: str, settings: RemoteSettings) -> str:
    """An exception's text with the URL's password (and the key) taken out, whatever quoted it."""
    password = urlsplit(settings.url).password
    for secret in filter(None, (password, settings.signing_key)):
        shown = secret.decode(errors="replace") if isinstance(secret, bytes) else secret
        if len(shown) >= 3:
            text = text.replace(shown, "***")
    return text.replace(settings.url, settings.shown_url)


class RemoteTier:
    """One Redis server as a cache tier. Methods never raise: they return what went wrong."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self.signer = signing.signer(settings.signing_key)
        self._client: Any = None
        self.host = f"{uuid.uuid4().hex[:8]}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(
                self.settings.url, socket_timeout=self.settings.timeout,
                socket_connect_timeout=self.settings.timeout, retry_on_timeout=False,
                **quiet_connection())
        return self._client

    def _name(self, kind: str, *parts: str) -> str:
        return ":".join([self.settings.prefix, kind, *parts])

    def available(self) -> bool:
        with _down_lock:
            until = _down_until.get(self.settings.url)
            if until is None:
                return True
            if time.monotonic() < until:
                return False
            del _down_until[self.settings.url]  # up again, as far as we know
            return True

    def _failed(self, action: str, exc: BaseException) -> str:
        with _down_lock:
            _down_until[self.settings.url] = time.monotonic() + DOWN_SECONDS
        reason = _without_secrets(f"{type(exc).__name__}: {exc}", self.settings)
        return (f"the remote cache {self.settings.shown_url} failed while {action} "
                f"({reason}); using the local cache only for "
                f"{DOWN_SECONDS:.0f} s")

    # -- reading -----------------------------------------------------------------------------

    def get(self, key: str) -> tuple[bytes | bytearray | memoryview | None, str | None]:
        """The verified blob of ``key``; ``(None, None)`` when absent, ``(None, problem)``
        when the server failed or the entry is refused (bad signature, truncated, damaged).

        Never raises: whatever anyone without the signing key wrote to any key is refused here.
        """
        if not self.available():
            return None, None
        try:
            manifest = self.client.get(self._name("manifest", key))
            if manifest is None:
                return None, None
            fields = manifest_fields(manifest, signed=self.signer is not None)
            if fields["size"] > self.settings.max_entry:
                raise BlobFormatError(f"its manifest claims {fields['size']} bytes, more than "
                                      f"max_entry ({self.settings.max_entry})")
            data = self._fetch(key, fields)
            if data is None:
                return None, f"remote entry {key[:12]} refused: its chunk set is incomplete"
            self._verify(key, data, fields)
        except BlobFormatError as exc:
            return None, f"remote entry {key[:12]} refused: {exc}"
        except server_errors() as exc:
            if _is_data_error(exc):  # a key of another type, an error reply: not a down server
                reason = _without_secrets(str(exc), self.settings)
                return None, f"remote entry {key[:12]} refused: {reason}"
            return None, self._failed("reading", exc)
        return data, None

    def _fetch(self, key: str, fields: dict[str, Any]) -> memoryview | None:
        """The entry's bytes, received into one buffer allocated once (an anonymous mapping:
        pages from the OS cost nothing until written, so a manifest lying about the size costs
        no memory; a bytearray would be zero-filled, every page of the claimed size touched)
        straight from the socket (redis_bulk), with the MAC computed by a worker thread over
        each piece once it has landed (BLAKE3 releases the GIL). The plugin reads this buffer in
        place: no chunk is joined or copied. The MAC is left in ``fields["computed"]``.

        The MAC uses one thread, and the receiver never waits for it: redis-server and the
        receiver already keep two cores busy, so BLAKE3's own threads, or a receiver held back
        until the previous piece was hashed, would compete with them for the cores and end the
        MAC later after the last byte, not sooner (benchmarks/bench_fleet.py measures it).
        """
        import mmap

        from ember.cache.redis_bulk import get_into

        size = fields["size"]
        view = memoryview(mmap.mmap(-1, size))
        covered = size - signing.TAG_SIZE if self.signer is not None else 0
        mac = self.signer.hasher(key) if self.signer is not None else None
        names = [self._name("chunk", key, fields["upload"], str(i))
                 for i in range(fields["chunks"])]
        # one worker: the updates run in the order they were queued, each over landed bytes
        with ThreadPoolExecutor(max_workers=1) as worker:
            queued: list[Future[None]] = []

            def verify_piece(start: int, end: int) -> None:
                if mac is not None and start < covered:
                    queued.append(worker.submit(mac.update, view[start:min(end, covered)]))

            received = get_into(self.client, names, view, verify_piece)
            for update in queued:
                update.result()
        if received is None:
            return None
        if received != size:
            raise BlobFormatError(f"{received} bytes, not the {size} its manifest says")
        if mac is not None:
            fields["computed"] = mac.digest()
        return view

    def _verify(self, key: str, data: memoryview, fields: dict[str, Any]) -> None:
        if self.signer is not None:
            claimed = bytes.fromhex(fields["signature"])
            if not (self.signer.equal(fields["computed"], claimed)
                    and self.signer.equal(bytes(data[-signing.TAG_SIZE:]), claimed)):
                raise BlobFormatError("missing or wrong signature")
        # the MAC covers every byte; without one, the blob's own checksums must
        header, _ = blob.unpack(data, verify_payload=self.signer is None)
        if self.signer is not None and not blob.is_signed(data):
            raise BlobFormatError("its blob is not marked signed")
        if header.key != key:
            raise BlobFormatError("it holds another key")

    # -- writing -----------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> str | None:
        """Publish a blob (the entry file's bytes: signed when a signing key is set, the tag
        last): chunks under a new upload id, then the manifest. None when done."""
        if self.settings.read_only or not self.available():
            return None
        upload = uuid.uuid4().hex
        chunk_size = CHUNK_SIZE
        chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]
        manifest = json.dumps({
            "v": _MANIFEST_VERSION, "upload": upload, "chunks": len(chunks), "size": len(data),
            "chunk_size": chunk_size, "created": time.time(),
            "signature": data[-signing.TAG_SIZE:].hex() if self.signer is not None else "",
        })
        ttl = self.settings.ttl
        try:
            pipe = self.client.pipeline(transaction=False)
            for index, chunk in enumerate(chunks):
                pipe.set(self._name("chunk", key, upload, str(index)), chunk, ex=ttl)
            pipe.execute()
            previous = self.client.set(self._name("manifest", key), manifest, ex=ttl, get=True)
        except server_errors() as exc:
            return self._failed("writing", exc)
        if previous is not None:  # the replaced upload's chunks are garbage now
            # a forged manifest (its chunks are not ours) or a failing server: leave them
            with contextlib.suppress(BlobFormatError, *server_errors()):
                old = manifest_fields(previous, signed=self.signer is not None)
                names = [self._name("chunk", key, old["upload"], str(i))
                         for i in range(old["chunks"])]  # bounded by manifest_fields
                for start in range(0, len(names), 1024):
                    self.client.delete(*names[start:start + 1024])
        return None

    # -- one compile per key across the fleet ------------------------------------------------

    @contextlib.contextmanager
    def fleet_lock(self, key: str, expiry: float) -> Iterator[str]:
        """Yield "held" when this host is the one to compile ``key``, "busy" when another host
        holds the lock, "off" when the tier is read-only, down or failing."""
        if self.settings.read_only or not self.available():
            yield "off"
            return
        token = f"{self.host}:{uuid.uuid4().hex}"
        name = self._name("lock", key)
        try:
            acquired = self.client.set(name, token, nx=True, px=int(expiry * 1000))
        except server_errors() as exc:
            log.warning("%s", self._failed("locking", exc))
            yield "off"
            return
        if not acquired:
            yield "busy"
            return
        try:
            yield "held"
        finally:
            with contextlib.suppress(*server_errors()):  # its expiry releases it anyway
                # a Lua script of our own, run by the server (EVALSHA): compare, then delete
                self.client.register_script(_RELEASE)(keys=[name], args=[token])

    def wait_for(self, key: str) -> tuple[bytes | None, str | None]:
        """Wait (at most the ``wait`` option) for the host holding the lock to publish ``key``;
        return as soon as it has, or when its lock is gone without an entry."""
        deadline = time.monotonic() + self.settings.wait
        delay = 0.02
        while time.monotonic() < deadline:
            data, problem = self.get(key)
            if data is not None or problem is not None:
                return data, problem
            try:
                if not self.client.exists(self._name("lock", key)):
                    return self.get(key)  # published just now, or its holder died
            except server_errors() as exc:
                return None, self._failed("waiting", exc)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        return None, (f"waited {self.settings.wait:.1f} s for another host to compile "
                      f"{key[:12]}; compiling here")


def quiet_connection() -> dict[str, Any]:
    """redis-py's options for a connection that opens with no handshake of its own.

    By default redis-py 8 sends HELLO 3 and a request for maintenance notifications on every new
    connection and looks its own version up in the installed distributions' metadata (a scan of
    site-packages), and every version since 5 sends its name and version with CLIENT SETINFO, in
    two more round trips: all of it before a fresh host's first GET, on the path of its start.
    RESP2 (which the bulk reader expects anyway) needs no HELLO; the client's name only shows in
    CLIENT LIST.
    """
    try:
        import redis.driver_info  # noqa: F401  (redis-py 8: lib_name and lib_version warn)
    except ImportError:
        return {"protocol": 2, "lib_name": None, "lib_version": None}  # redis-py 5 to 7
    return {"protocol": 2, "driver_info": None}


def server_errors() -> tuple[type[Exception], ...]:
    """What a failing server, network or reply raises: redis-py's errors (connection, timeout,
    error replies), the socket's (``OSError``: a reset, a refused connection) and the bulk
    reader's. Imported when first needed: only a host with a remote tier imports redis."""
    from redis.exceptions import RedisError

    from ember.cache.redis_bulk import BulkReadError

    return (RedisError, OSError, BulkReadError)


def _is_data_error(exc: Exception) -> bool:
    """Whether an exception says what a key holds is wrong (WRONGTYPE and other error replies),
    rather than that the server or the connection failed."""
    from redis.exceptions import ResponseError

    from ember.cache.redis_bulk import BulkReadError

    return isinstance(exc, ResponseError | BulkReadError)


def manifest_fields(raw: Any, *, signed: bool) -> dict[str, Any]:
    """A manifest's fields, every one type- and range-checked (anyone may write the key).

    :raises BlobFormatError: ("unreadable manifest ...") for anything else.
    """
    what = "unreadable manifest"
    if not isinstance(raw, bytes):
        raise BlobFormatError(f"{what}: not a string value")
    document = safe_json.obj(
        safe_json.loads(raw, what=what, max_size=_MANIFEST_MAX, max_depth=2, max_nodes=32),
        what)
    get = safe_json.get
    version = document.get("v")
    if type(version) is not int or version != _MANIFEST_VERSION:
        raise BlobFormatError(f"{what}: manifest version {safe_json.short(version)}")
    size = get(document, "size", int, what, check=safe_json.in_range(1, MAX_BLOB_SIZE))
    chunk_size = get(document, "chunk_size", int, what,
                     check=safe_json.in_range(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE))
    chunks = get(document, "chunks", int, what,
                 check=lambda n: n == -(-size // chunk_size))  # so at most MAX_BLOB/MIN_CHUNK
    signature = document.get("signature")
    if signed and not _SIGNATURE(signature):
        raise BlobFormatError("missing or wrong signature (the manifest's is not "
                              f"{2 * signing.TAG_SIZE} hex digits)")
    fields = {
        "upload": get(document, "upload", str, what, check=_UPLOAD),
        "size": size, "chunks": chunks, "chunk_size": chunk_size, "signature": signature,
    }
    if signed and size <= signing.TAG_SIZE:
        raise BlobFormatError(f"{what}: too small to hold a signed blob")
    return fields
