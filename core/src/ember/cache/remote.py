"""A shared cache tier on Redis, for a fleet of hosts that start the same models.

Configured by one URL, ``CACHE_REMOTE=redis://host:6379/0?prefix=ember&ttl=86400&timeout=0.5``
(query options: ``prefix`` namespace, ``ttl`` seconds, ``timeout`` seconds per operation,
``read_only=1`` for hosts that must not write, ``wait`` seconds to wait for another host's
compile, ``unsigned=1`` to waive signing), and a signing key, ``CACHE_SIGNING_KEY``.

Layout in Redis, for an entry ``K`` (the model cache key)::

    <prefix>:manifest:K             JSON: upload id, chunk count, size, HMAC-SHA256
    <prefix>:chunk:K:<upload>:<i>   the blob's bytes, in chunks of CHUNK_SIZE
    <prefix>:lock:K                 the fleet lock: one host compiles K, with an expiry

Chunks are written under a fresh upload id first and the manifest last, so a partial upload is
never an entry. Every entry is signed (HMAC-SHA256 over the whole blob: header and payload);
an entry without a valid signature is never imported. Whoever can write to the Redis server can
therefore waste compute (delete or corrupt entries), never run code or change results: nothing
is unpickled, evaluated, or trusted before its signature and checksums are verified.

The remote never makes a start fail or hang: every operation has a timeout, and after one failure
the tier is skipped by this process for ``DOWN_SECONDS``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from hashlib import sha256
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ember import blob
from ember.errors import BlobFormatError, PropertyValueError

log = logging.getLogger("ember.cache")

CHUNK_SIZE = 4 << 20  # Redis moves a few MB per command without stalling other clients
DOWN_SECONDS = 30.0
_MANIFEST_VERSION = 1
# Releases the fleet lock only if this host still holds it (its expiry may have passed).
_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('del', KEYS[1]) else return 0 end")

_down_until: dict[str, float] = {}  # url -> when to try again, shared by this process
_down_lock = threading.Lock()


@dataclass(frozen=True)
class RemoteSettings:
    url: str  # without the query options
    prefix: str = "ember"
    ttl: int | None = None
    timeout: float = 0.5
    wait: float = 120.0
    read_only: bool = False
    signing_key: bytes | None = None

    @classmethod
    def parse(cls, value: str, signing_key: str | bytes | None) -> RemoteSettings:
        parts = urlsplit(str(value))
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise PropertyValueError(f"CACHE_REMOTE must be a redis:// URL, not {value!r}")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(options) - {"prefix", "ttl", "timeout", "wait", "read_only", "unsigned"}
        if unknown:
            raise PropertyValueError(f"unknown CACHE_REMOTE options {sorted(unknown)}")
        key = signing_key.encode() if isinstance(signing_key, str) else signing_key
        if not key and options.get("unsigned") != "1":
            raise PropertyValueError(
                "a remote cache needs CACHE_SIGNING_KEY (or EMBER_CACHE_SIGNING_KEY), so that "
                "whoever can write to it cannot change results; add ?unsigned=1 to CACHE_REMOTE "
                "to waive that explicitly")
        try:
            return cls(
                url=urlunsplit(parts._replace(query="")),
                prefix=options.get("prefix", "ember"),
                ttl=int(options["ttl"]) if "ttl" in options else None,
                timeout=float(options.get("timeout", 0.5)),
                wait=float(options.get("wait", 120.0)),
                read_only=options.get("read_only") == "1",
                signing_key=key or None,
            )
        except ValueError as exc:
            raise PropertyValueError(f"bad CACHE_REMOTE option: {exc}") from exc


class RemoteTier:
    """One Redis server as a cache tier. Methods never raise: they return what went wrong."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self.host = f"{uuid.uuid4().hex[:8]}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(
                self.settings.url, socket_timeout=self.settings.timeout,
                socket_connect_timeout=self.settings.timeout, retry_on_timeout=False)
        return self._client

    def _name(self, kind: str, *parts: str) -> str:
        return ":".join([self.settings.prefix, kind, *parts])

    def available(self) -> bool:
        with _down_lock:
            return time.monotonic() >= _down_until.get(self.settings.url, 0.0)

    def _failed(self, action: str, exc: BaseException) -> str:
        with _down_lock:
            _down_until[self.settings.url] = time.monotonic() + DOWN_SECONDS
        return (f"the remote cache {self.settings.url} failed while {action} "
                f"({type(exc).__name__}: {exc}); using the local cache only for "
                f"{DOWN_SECONDS:.0f} s")

    # -- reading -----------------------------------------------------------------------------

    def get(self, key: str) -> tuple[bytes | None, str | None]:
        """The verified blob of ``key``; ``(None, None)`` when absent, ``(None, problem)``
        when the server failed or the entry is refused (bad signature, truncated, damaged)."""
        if not self.available():
            return None, None
        try:
            manifest = self.client.get(self._name("manifest", key))
            if manifest is None:
                return None, None
            fields = _manifest_fields(manifest)
            chunks, signature = self._fetch(key, fields)
        except BlobFormatError as exc:
            return None, f"remote entry {key[:12]} refused: {exc}"
        except Exception as exc:  # redis-py raises ConnectionError, TimeoutError, ...
            return None, self._failed("reading", exc)
        if chunks is None:
            return None, f"remote entry {key[:12]} refused: its chunk set is incomplete"
        data = b"".join(chunks)
        problem = self._verify(key, data, fields, signature)
        return (None, problem) if problem else (data, None)

    def _fetch(self, key: str, fields: dict[str, Any]) -> tuple[list[bytes] | None, str | None]:
        """The entry's chunks, and their HMAC computed while the next chunk is on its way (the
        hash releases the GIL), so that signing costs little more than the transfer."""
        signer = (hmac.new(self.settings.signing_key, digestmod=sha256)
                  if self.settings.signing_key is not None else None)
        chunks: list[bytes] = []
        with ThreadPoolExecutor(max_workers=1) as hasher:
            pending: Future[None] | None = None
            for index in range(fields["chunks"]):
                chunk = self.client.get(self._name("chunk", key, fields["upload"], str(index)))
                if chunk is None:
                    return None, None
                if signer is not None:
                    if pending is not None:
                        pending.result()
                    pending = hasher.submit(signer.update, chunk)
                chunks.append(chunk)
            if pending is not None:
                pending.result()
        return chunks, signer.hexdigest() if signer is not None else None

    def _verify(self, key: str, data: bytes, fields: dict[str, Any],
                signature: str | None) -> str | None:
        if len(data) != fields["size"]:
            return f"remote entry {key[:12]} refused: {len(data)} bytes, not {fields['size']}"
        if signature is not None and not hmac.compare_digest(
                signature, str(fields.get("signature", ""))):
            return f"remote entry {key[:12]} refused: missing or wrong signature"
        try:
            # the HMAC covers every byte; without one, the blob's own checksums must
            header, _ = blob.unpack(data, verify_payload=signature is None)
        except BlobFormatError as exc:
            return f"remote entry {key[:12]} refused: {exc}"
        if header.key != key:
            return f"remote entry {key[:12]} refused: it holds another key"
        return None

    # -- writing -----------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> str | None:
        """Publish a blob: chunks under a new upload id, then the manifest. None when done."""
        if self.settings.read_only or not self.available():
            return None
        upload = uuid.uuid4().hex
        chunks = [data[i:i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)]
        manifest = json.dumps({
            "v": _MANIFEST_VERSION, "upload": upload, "chunks": len(chunks), "size": len(data),
            "created": time.time(),
            "signature": (hmac.new(self.settings.signing_key, data, sha256).hexdigest()
                          if self.settings.signing_key else ""),
        })
        ttl = self.settings.ttl
        try:
            pipe = self.client.pipeline(transaction=False)
            for index, chunk in enumerate(chunks):
                pipe.set(self._name("chunk", key, upload, str(index)), chunk, ex=ttl)
            pipe.execute()
            previous = self.client.set(self._name("manifest", key), manifest, ex=ttl, get=True)
        except Exception as exc:
            return self._failed("writing", exc)
        if previous is not None:  # the replaced upload's chunks are garbage now
            with contextlib.suppress(Exception):
                old = _manifest_fields(previous)
                self.client.delete(*[self._name("chunk", key, old["upload"], str(i))
                                     for i in range(old["chunks"])] or ["-"])
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
        except Exception as exc:
            log.warning("%s", self._failed("locking", exc))
            yield "off"
            return
        if not acquired:
            yield "busy"
            return
        try:
            yield "held"
        finally:
            with contextlib.suppress(Exception):
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
            except Exception as exc:
                return None, self._failed("waiting", exc)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        return None, (f"waited {self.settings.wait:.1f} s for another host to compile "
                      f"{key[:12]}; compiling here")


def _manifest_fields(raw: bytes) -> dict[str, Any]:
    try:
        fields = json.loads(raw)
        if fields.get("v") != _MANIFEST_VERSION:
            raise ValueError(f"manifest version {fields.get('v')!r}")
        fields["chunks"], fields["size"] = int(fields["chunks"]), int(fields["size"])
        if not str(fields["upload"]).isalnum() or fields["chunks"] < 0 or fields["size"] < 0:
            raise ValueError("malformed manifest")
        if fields["chunks"] > max(fields["size"], 1):
            raise ValueError("more chunks than bytes")
        return fields
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BlobFormatError(f"unreadable manifest ({exc})") from exc
