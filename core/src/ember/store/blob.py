"""The Ember blob: the one container in which compiled models leave a process.

``CompiledModel.export_model`` writes it, ``Core.import_model`` reads it, and the model cache stores
it. The plugin's payload is carried as opaque bytes; everything the core needs to trust it is in a
self-describing header::

    offset  size  field
    0       8     magic  b"EMBERBLB"
    8       2     container version (little-endian uint16)
    10      2     flags (little-endian uint16): FLAG_SIGNED, or zero
    12      4     header length H (little-endian uint32)
    16      H     header: UTF-8 JSON object (see BlobHeader), space-padded
    16+H    32    BLAKE3 of bytes [0, 16+H): a flipped bit in the header is caught too
    48+H    N     payload; 48+H is a multiple of 64 so that numpy can view weights in place
    48+H+N  32    only with FLAG_SIGNED: keyed MAC of bytes [0, 48+H+N) (ember.store.signing)

The header holds the payload's length and BLAKE3 checksum (see ember.common.checksum), checked
before a single payload byte reaches a plugin. JSON is parsed, never evaluated; nothing is
unpickled. Every byte is untrusted: any input gives a header or one BlobFormatError (the JSON is
read by ember.common.safe_json, every field type-checked), never another exception.
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any, BinaryIO

from ember.common import checksum, safe_json
from ember.common.record import Record
from ember.errors import BlobFormatError

MAGIC = b"EMBERBLB"
CONTAINER_VERSION = 1
_PREFIX = struct.Struct("<8sHHI")
_DIGEST_SIZE = checksum.DIGEST_SIZE
_PAYLOAD_ALIGNMENT = 64
#: Headers larger than this are refused before being read: a foreign file cannot make us allocate.
MAX_HEADER_SIZE = 1 << 20
#: Prefix flag: a signing tag of TAG_SIZE bytes follows the payload (ember.store.signing).
FLAG_SIGNED = 1
TAG_SIZE = 32
_KNOWN_FLAGS = FLAG_SIGNED
#: Payloads declared larger than this are refused (1 TiB: no device blob comes near it).
MAX_PAYLOAD_LENGTH = 1 << 40
_HEX64 = safe_json.is_hex(64)


class BlobHeader(Record):
    """What a blob says about itself.

    ``key`` and ``key_parts`` are the model cache's key and what it was made of ('' and {} for a
    plain export); ``compile_seconds`` is what compiling took, which a cache hit saves.
    """

    _fields = ("ember_version", "plugin", "plugin_version", "device", "device_architecture",
               "payload_length", "payload_checksum", "key", "key_parts", "flags", "model_name",
               "created", "compile_seconds")
    __slots__ = _fields

    def __init__(self, ember_version: str,
                 plugin: str,  # distribution name, or plugin name when not from a distribution
                 plugin_version: str, device: str, device_architecture: str,
                 payload_length: int, payload_checksum: str, key: str = "",
                 key_parts: dict[str, Any] | None = None, flags: tuple[str, ...] = (),
                 model_name: str = "", created: float = 0.0,
                 compile_seconds: float = 0.0) -> None:
        self.ember_version = ember_version
        self.plugin = plugin
        self.plugin_version = plugin_version
        self.device = device
        self.device_architecture = device_architecture
        self.payload_length = payload_length
        self.payload_checksum = payload_checksum
        self.key = key
        self.key_parts: dict[str, Any] = {} if key_parts is None else key_parts
        self.flags = flags
        self.model_name = model_name
        self.created = created
        self.compile_seconds = compile_seconds

    def to_json(self) -> bytes:
        fields = self._asdict()
        fields["flags"] = list(self.flags)
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


_FIELD_NAMES = frozenset(BlobHeader._fields)


def encode(
    header_fields: dict[str, object], payload: bytes | memoryview, *, signed: bool = False
) -> tuple[bytes, BlobHeader]:
    """Build the bytes that precede ``payload`` in a blob, and the header they encode.

    The caller writes ``prefix`` and then ``payload`` (a file write needs no concatenated copy),
    then, when ``signed``, the TAG_SIZE-byte tag of both (ember.store.signing).
    ``header_fields`` are BlobHeader's fields except the payload length and checksum.
    """
    view = memoryview(payload).cast("B")
    header = BlobHeader(
        payload_length=view.nbytes,
        payload_checksum=checksum.hexdigest(view),
        **header_fields,  # type: ignore[arg-type]
    )
    text = header.to_json()
    unpadded = _PREFIX.size + len(text) + _DIGEST_SIZE
    text += b" " * (-unpadded % _PAYLOAD_ALIGNMENT)
    head = _PREFIX.pack(MAGIC, CONTAINER_VERSION, FLAG_SIGNED if signed else 0, len(text)) + text
    return head + checksum.digest(head), header


def pack(header_fields: dict[str, object], payload: bytes | memoryview) -> bytes:
    """A whole blob as one bytes object."""
    prefix, _ = encode(header_fields, payload)
    return prefix + bytes(payload)


def read_header(data: bytes | memoryview) -> tuple[BlobHeader, int]:
    """Parse and check a blob's header; return it and the payload's offset.

    :raises BlobFormatError: with the reason, for anything that is not an intact Ember blob
        header of this container version. The payload is not checked here (see :func:`unpack`).
    """
    view = memoryview(data).cast("B")
    header_size = _check_prefix(view)[1]
    header_end = _PREFIX.size + header_size
    payload_offset = header_end + _DIGEST_SIZE
    if view.nbytes < payload_offset:
        raise BlobFormatError("truncated inside the header")
    if checksum.digest(view[:header_end]) != view[header_end:payload_offset]:
        raise BlobFormatError("header checksum mismatch (the header is damaged)")
    document = safe_json.loads(view[_PREFIX.size:header_end], what="blob header",
                               max_size=MAX_HEADER_SIZE)
    return _header(document), payload_offset


def _check_prefix(view: memoryview) -> tuple[int, int]:
    """The flags and header size of a blob's 16-byte prefix, checked."""
    if view.nbytes < _PREFIX.size:
        raise BlobFormatError(f"too short to be an Ember blob ({view.nbytes} bytes)")
    magic, version, flags, header_size = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise BlobFormatError("not an Ember blob (wrong magic bytes)")
    if version != CONTAINER_VERSION:
        raise BlobFormatError(
            f"blob container version {version}; this Ember reads version {CONTAINER_VERSION}"
        )
    if flags & ~_KNOWN_FLAGS:
        raise BlobFormatError(f"unknown container flags {flags:#x}")
    if header_size > MAX_HEADER_SIZE:
        raise BlobFormatError(f"header of {header_size} bytes is implausibly large")
    return flags, header_size


_STRING_FIELDS = ("ember_version", "plugin", "plugin_version", "device", "device_architecture")


def _header(document: Any) -> BlobHeader:
    """A BlobHeader from a parsed header, every field type- and range-checked.

    The common case (every field as Ember writes it) is checked in one expression; anything
    else goes through the field-by-field checks, which say what is wrong.
    """
    d = document
    if (type(d) is dict and d.keys() <= _FIELD_NAMES
            and all(type(d.get(name)) is str for name in _STRING_FIELDS)
            and type(d.get("payload_length")) is int
            and 0 <= d["payload_length"] <= MAX_PAYLOAD_LENGTH
            and _HEX64(d.get("payload_checksum"))
            and type(d.get("key", "")) is str and len(d.get("key", "")) <= 256
            and type(d.get("key_parts", {})) is dict
            and type(d.get("flags", [])) is list
            and all(type(flag) is str for flag in d.get("flags", ()))
            and type(d.get("model_name", "")) is str
            and type(d.get("created", 0.0)) in (float, int)
            and type(d.get("compile_seconds", 0.0)) in (float, int)
            and 0 <= d.get("compile_seconds", 0.0) < math.inf
            and math.isfinite(d.get("created", 0.0))):
        return BlobHeader(**{**d, "flags": tuple(d.get("flags", ())),
                             "created": float(d.get("created", 0.0)),
                             "compile_seconds": float(d.get("compile_seconds", 0.0))})
    return _checked_header(d)


def _checked_header(document: Any) -> BlobHeader:
    fields = safe_json.obj(document, "blob header")
    unknown = set(fields) - _FIELD_NAMES
    if unknown:
        raise BlobFormatError(f"blob header has unknown fields {sorted(unknown)[:5]}")
    what = "blob header"
    get = safe_json.get
    flags = get(fields, "flags", list, what, default=[])
    if not all(type(flag) is str for flag in flags):
        raise BlobFormatError("blob header field 'flags' holds a value that is not a string")
    key = get(fields, "key", str, what, default="", check=lambda k: len(k) <= 256)
    return BlobHeader(
        **{name: get(fields, name, str, what) for name in _STRING_FIELDS},
        payload_length=get(fields, "payload_length", int, what,
                           check=safe_json.in_range(0, MAX_PAYLOAD_LENGTH)),
        payload_checksum=get(fields, "payload_checksum", str, what, check=_HEX64),
        key=key,
        key_parts=get(fields, "key_parts", dict, what, default={}),
        flags=tuple(flags),
        model_name=get(fields, "model_name", str, what, default=""),
        created=float(get(fields, "created", (float, int), what, default=0.0,
                          check=lambda v: -math.inf < v < math.inf)),
        compile_seconds=float(get(fields, "compile_seconds", (float, int), what, default=0.0,
                                  check=lambda v: 0 <= v < math.inf)),
    )


def read_file_header(blob_file: BinaryIO) -> BlobHeader:
    """Read and check only the header of a blob file (for listings), not its payload.

    :raises BlobFormatError: as :func:`read_header`.
    """
    prefix = blob_file.read(_PREFIX.size)
    header_size = _check_prefix(memoryview(prefix))[1]
    return read_header(prefix + blob_file.read(header_size + _DIGEST_SIZE))[0]


def unpack(data: bytes | memoryview, *,
           verify_payload: bool = True) -> tuple[BlobHeader, memoryview]:
    """Check a whole blob and return its header and a zero-copy view of its payload.

    ``verify_payload=False`` skips only the payload's checksum, for bytes whose integrity is
    already established at least as strongly (a keyed MAC over the whole blob, checked by the
    caller: see ember.store.signing). A signed blob's tag is not checked here; it is only required
    to be there.

    :raises BlobFormatError: for a foreign file, a damaged header, a truncated or extended
        payload, or a payload whose checksum differs from the header's (a flipped bit).
    """
    view = memoryview(data).cast("B")
    header, offset = read_header(view)
    trailer = TAG_SIZE if is_signed(view) else 0
    payload = view[offset:view.nbytes - trailer]
    if payload.nbytes != header.payload_length or view.nbytes - trailer < offset:
        raise BlobFormatError(
            f"payload is {max(view.nbytes - trailer - offset, 0)} bytes, header says "
            f"{header.payload_length} (truncated?)"
        )
    if verify_payload:
        check_payload(header, payload)
    return header, payload


def read_file(blob_file: BinaryIO, size: int | None = None) -> tuple[BlobHeader, bytes]:
    """Read and check an unsigned blob file; return its header and its payload as a ``bytes``
    object of its own.

    The payload is read into its own object, not sliced out of the whole file's: a plugin whose
    runtime takes ``bytes`` (onnxruntime builds a session from them in place) then needs no copy.

    The payload's checksum is not checked here (see :func:`check_payload`); as in
    :func:`unpack`, a signed blob's tag is only required to be there.

    ``size`` is the file's size when the caller knows it (``fstat``); the payload length the
    header claims is compared with what the file holds before anything is allocated for it.

    :raises BlobFormatError: as :func:`unpack`.
    """
    prefix = blob_file.read(_PREFIX.size)
    length = header_size(prefix)
    header, _ = read_header(prefix + blob_file.read(length + _DIGEST_SIZE))
    left = (_file_size(blob_file) if size is None else size) - blob_file.tell()
    if header.payload_length > left:
        raise BlobFormatError(f"payload is {max(left, 0)} bytes, header says "
                              f"{header.payload_length} (truncated?)")
    payload = blob_file.read(header.payload_length)
    trailer = blob_file.read(TAG_SIZE + 1)  # one more than a tag: an extended file shows
    if (len(payload) != header.payload_length
            or len(trailer) != (TAG_SIZE if is_signed(prefix) else 0)):
        raise BlobFormatError(f"payload is {len(payload) + len(trailer)} bytes, header says "
                              f"{header.payload_length} (truncated?)")
    return header, payload


def _file_size(blob_file: BinaryIO) -> int:
    """The size of an open file (or any seekable stream)."""
    try:
        return os.fstat(blob_file.fileno()).st_size
    except (AttributeError, OSError, ValueError):  # io.BytesIO and the like have no descriptor
        position = blob_file.tell()
        end = blob_file.seek(0, os.SEEK_END)
        blob_file.seek(position)
        return end


def check_payload(header: BlobHeader, payload: bytes | memoryview) -> None:
    """:raises BlobFormatError: when the payload's checksum differs from the header's."""
    if checksum.hexdigest(payload) != header.payload_checksum:
        raise BlobFormatError("payload checksum mismatch (the blob is damaged)")


def header_size(prefix: bytes | memoryview) -> int:
    """The header length a blob's 16-byte prefix declares, checked (magic, version, bound).

    :raises BlobFormatError: as :func:`read_header`.
    """
    return _check_prefix(memoryview(prefix).cast("B"))[1]


def is_signed(data: bytes | memoryview) -> bool:
    """Whether a blob's prefix says a signing tag follows its payload (the prefix unchecked)."""
    view = memoryview(data).cast("B")
    return view.nbytes >= _PREFIX.size and bool(_PREFIX.unpack_from(view)[2] & FLAG_SIGNED)


def split_tag(data: bytes | memoryview) -> tuple[memoryview, bytes | None]:
    """The bytes a signing tag covers and the tag (None for an unsigned blob)."""
    view = memoryview(data).cast("B")
    if not is_signed(view) or view.nbytes < _PREFIX.size + TAG_SIZE:
        return view, None
    return view[:-TAG_SIZE], bytes(view[-TAG_SIZE:])
