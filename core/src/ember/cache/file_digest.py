"""Content digests of model files, remembered against each file's identity.

``compile_model(path)`` must never give a stale hit, yet must not hash a large file on every warm
start. A file's content digest is therefore stored next to its *identity*: device, inode, size,
``mtime_ns`` and ``ctime_ns``. Any write changes ``ctime`` (which no user call can set back, unlike
``mtime``), a replaced file has a new inode, so a matching identity means unchanged content. Two
guards close the remaining gaps:

- a file modified within :data:`RACY_SECONDS` of being hashed is not remembered, because a second
  write inside the same timestamp tick would leave its identity unchanged (git's "racy" rule);
- models with external weight files remember those files' identities too, and any change to one of
  them invalidates the digest.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import TYPE_CHECKING, BinaryIO

from ember.common import checksum, safe_json
from ember.errors import BlobFormatError

if TYPE_CHECKING:
    from pathlib import Path

    import blake3

    from ember.store.signing import Signer

#: A file whose mtime is this close to the moment it was hashed is not remembered.
RACY_SECONDS = 2.0
_CHUNK = 16 << 20  # large enough for BLAKE3's threads to pay within one update
#: Model files up to protobuf's limit are read whole; larger ones are streamed.
_WHOLE_FILE_MAX = 2 << 30
_MEMO_MAX = 1 << 20
# Every external-data reference in an ONNX file contains this protobuf field: key "location".
_EXTERNAL_DATA_MARKER = b"\x0a\x08location"

Identity = list[int]


def identity(stat: os.stat_result) -> Identity:
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


class FileDigests:
    """The remembered digests of one cache directory (``<cache>/files/*.json``)."""

    # Paths are str here, handled with os.path: a warm start runs this and imports no pathlib.
    def __init__(self, cache_root: str, directory: str) -> None:
        self.cache_root = cache_root
        self._directory = directory
        # What this process already read from (or wrote to) the memo files: the same rule
        # applies, the memo file is just not read again.
        self._known: dict[str, dict] = {}

    @property
    def directory(self) -> Path:
        from pathlib import Path

        return Path(self._directory)

    def digest(self, path: str | os.PathLike[str], signer: Signer | None = None) -> str:
        """The checksum of a model file and its external data files, remembered when safe.

        With a ``signer`` the memo is signed, and a memo that does not verify is ignored: a
        forged memo would otherwise map this file to another model's (signed) entry.
        """
        path = os.path.realpath(path)
        stat = os.stat(path)
        known = self._known.get(path)
        if known is not None and self._still_valid(known, path, stat):
            return str(known["digest"])
        memo_path = os.path.join(self._directory,
                                 f"{checksum.hexdigest(os.fsencode(path))[:40]}.json")
        remembered = read_memo(memo_path, signer)
        if remembered is not None and self._still_valid(remembered, path, stat):
            self._known[path] = remembered
            return str(remembered["digest"])
        digest, external = _hash_model_files(path)
        # ctime too: anyone can set mtime back, nobody can set ctime back.
        newest = max(max(s.st_mtime, s.st_ctime) for s in [stat, *map(os.stat, external)])
        if time.time() - newest > RACY_SECONDS:
            memo = {
                "path": path,
                "identity": identity(stat),
                "external": [[name, identity(os.stat(name))] for name in external],
                "digest": digest,
            }
            self._known[path] = memo
            if signer is not None:
                memo["mac"] = _memo_tag(signer, memo_path, memo)
            # Written by the background worker: this start has the digest already, and the
            # file is for the next one (published whole by rename all the same; a process that
            # exits first finishes it at exit). On a cold start it goes to disk while the device
            # compiles, not before.
            # (imported here: a start whose memo holds imports no writing machinery)
            from ember.store.atomic import background

            parts = tuple(os.path.relpath(self._directory, self.cache_root).split(os.sep))
            background.submit(self._remember, parts, os.path.basename(memo_path),
                              json.dumps(memo).encode(), start=False)
        return digest

    def _remember(self, parts: tuple[str, ...], name: str, memo: bytes) -> None:
        from ember.store.atomic import write_inside

        # Remembering is an optimisation; the cache reports directory problems when it writes.
        with contextlib.suppress(OSError):
            write_inside(self.cache_root, parts, name, memo)

    @staticmethod
    def _still_valid(memo: dict, path: str, stat: os.stat_result) -> bool:
        if memo.get("path") != path or memo.get("identity") != identity(stat):
            return False
        try:
            return all(type(name) is str and identity(os.stat(name)) == ident
                       for name, ident in memo["external"])
        except (OSError, TypeError, ValueError):
            return False


def _memo_tag(signer: Signer, memo_path: str, memo: dict) -> str:
    fields = {name: value for name, value in memo.items() if name != "mac"}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    stem = os.path.splitext(os.path.basename(memo_path))[0]
    return signer.tag(f"file-digest:{stem}", text).hex()


def read_memo(memo_path: str, signer: Signer | None = None) -> dict | None:
    """A remembered digest, or None for a missing, unreadable or malformed memo (untrusted)."""
    try:
        with open(memo_path, "rb") as memo_file:
            memo = safe_json.loads(memo_file.read(_MEMO_MAX + 1), what="file digest memo",
                                   max_size=_MEMO_MAX, max_depth=4)
    except (OSError, BlobFormatError):
        return None
    if not (type(memo) is dict and type(memo.get("digest")) is str
            and type(memo.get("external")) is list):
        return None
    if signer is not None and not (
            type(memo.get("mac")) is str
            and signer.equal(_memo_tag(signer, memo_path, memo).encode(), memo["mac"].encode())):
        return None
    return memo


def _hash_model_files(path: str) -> tuple[str, list[str]]:
    """The digest of a model file (and its external data files).

    A model file (at most protobuf's 2 GB) is read whole, not mapped (a file truncated meanwhile
    must not raise SIGBUS), hashed with BLAKE3's threads, and its wire format walked to learn
    whether it names external data (onnx_scan), so a fresh host hashes a big model at near
    memory speed. Larger files are streamed and searched for the external-data marker.
    """
    from ember.model.onnx_scan import refers_to_external_data

    with open(path, "rb") as model_file:
        size = os.fstat(model_file.fileno()).st_size
        hasher = checksum.hasher(size)
        data: bytes | None = None
        if size <= _WHOLE_FILE_MAX:
            data = model_file.read()
            hasher.update(data)
            has_external_data = refers_to_external_data(data)
        else:  # larger than any protobuf message: no model to read its references from
            has_external_data = _hash_stream(model_file, hasher)
    external = _external_files(path, data) if has_external_data else []
    del data
    for extra in external:
        hasher.update(b"\0" + os.fsencode(os.path.basename(extra)) + b"\0")
        with open(extra, "rb") as data_file:
            while chunk := data_file.read(_CHUNK):
                hasher.update(chunk)
    return hasher.hexdigest(), external


def _hash_stream(model_file: BinaryIO, hasher: blake3.blake3) -> bool:
    """Hash a file in chunks; return whether the external-data marker occurs in it."""
    has_external_data = False
    tail = b""
    while chunk := model_file.read(_CHUNK):
        hasher.update(chunk)
        head = chunk[:len(_EXTERNAL_DATA_MARKER)]
        has_external_data = (has_external_data or _EXTERNAL_DATA_MARKER in chunk
                             or _EXTERNAL_DATA_MARKER in tail + head)  # across chunks
        tail = chunk[-len(_EXTERNAL_DATA_MARKER):]
    return has_external_data


def _external_files(model_path: str, data: bytes | None) -> list[str]:
    """The external weight files a model refers to, from its bytes' wire format (no onnx)."""
    from ember.model.onnx_scan import external_locations

    try:
        locations = external_locations(data) if data is not None else set()
    except (ValueError, IndexError):
        return []  # not a readable model: compiling it will report that properly
    # only files inside the model's directory: onnx refuses the others when loading, and a
    # digest must not read what the model cannot use
    directory = os.path.realpath(os.path.dirname(model_path))
    inside = []
    for location in locations:
        extra = os.path.join(directory, location)
        real = os.path.realpath(extra)
        if os.path.commonpath([real, directory]) == directory and os.path.isfile(extra):
            inside.append(extra)
    return sorted(inside)
