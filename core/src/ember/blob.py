"""The Ember blob: the one container in which compiled models leave a process.

``CompiledModel.export_model`` writes it, ``Core.import_model`` reads it, and the model cache stores
it. The plugin's payload is carried as opaque bytes; everything the core needs to trust it is in a
self-describing header::

    offset  size  field
    0       8     magic  b"EMBERBLB"
    8       2     container version (little-endian uint16)
    10      2     reserved, zero
    12      4     header length H (little-endian uint32)
    16      H     header: UTF-8 JSON object (see BlobHeader), space-padded
    16+H    32    BLAKE3 of bytes [0, 16+H): a flipped bit in the header is caught too
    48+H    N     payload; 48+H is a multiple of 64 so that numpy can view weights in place

The header holds the payload's length and BLAKE3 checksum (see ember.checksum), checked before a
single payload byte reaches a plugin. JSON is parsed, never evaluated; nothing is unpickled.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from ember import checksum
from ember.errors import BlobFormatError

MAGIC = b"EMBERBLB"
CONTAINER_VERSION = 1
_PREFIX = struct.Struct("<8sHHI")
_DIGEST_SIZE = checksum.DIGEST_SIZE
_PAYLOAD_ALIGNMENT = 64
#: Headers larger than this are refused before being read: a foreign file cannot make us allocate.
MAX_HEADER_SIZE = 1 << 20


@dataclass(frozen=True)
class BlobHeader:
    """What a blob says about itself.

    ``key`` and ``key_parts`` are the model cache's key and what it was made of ('' and {} for a
    plain export); ``compile_seconds`` is what compiling took, which a cache hit saves.
    """

    ember_version: str
    plugin: str  # distribution name, or plugin name when not installed from a distribution
    plugin_version: str
    device: str
    device_architecture: str
    payload_length: int
    payload_checksum: str
    key: str = ""
    key_parts: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    model_name: str = ""
    created: float = 0.0
    compile_seconds: float = 0.0

    def to_json(self) -> bytes:
        fields = asdict(self)
        fields["flags"] = list(self.flags)
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def encode(
    header_fields: dict[str, object], payload: bytes | memoryview
) -> tuple[bytes, BlobHeader]:
    """Build the bytes that precede ``payload`` in a blob, and the header they encode.

    The caller writes ``prefix`` and then ``payload`` (a file write needs no concatenated copy).
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
    head = _PREFIX.pack(MAGIC, CONTAINER_VERSION, 0, len(text)) + text
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
    if view.nbytes < _PREFIX.size:
        raise BlobFormatError(f"too short to be an Ember blob ({view.nbytes} bytes)")
    magic, version, _reserved, header_size = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise BlobFormatError("not an Ember blob (wrong magic bytes)")
    if version != CONTAINER_VERSION:
        raise BlobFormatError(
            f"blob container version {version}; this Ember reads version {CONTAINER_VERSION}"
        )
    if header_size > MAX_HEADER_SIZE:
        raise BlobFormatError(f"header of {header_size} bytes is implausibly large")
    header_end = _PREFIX.size + header_size
    payload_offset = header_end + _DIGEST_SIZE
    if view.nbytes < payload_offset:
        raise BlobFormatError("truncated inside the header")
    if checksum.digest(view[:header_end]) != view[header_end:payload_offset]:
        raise BlobFormatError("header checksum mismatch (the header is damaged)")
    try:
        fields = json.loads(bytes(view[_PREFIX.size:header_end]))
        fields["flags"] = tuple(fields.get("flags", ()))
        header = BlobHeader(**fields)
        if not isinstance(header.key_parts, dict) or header.payload_length < 0:
            raise TypeError("malformed fields")
    except (ValueError, TypeError) as exc:
        raise BlobFormatError(f"unreadable header: {exc}") from exc
    return header, payload_offset


def read_file_header(blob_file: BinaryIO) -> BlobHeader:
    """Read and check only the header of a blob file (for listings), not its payload.

    :raises BlobFormatError: as :func:`read_header`.
    """
    prefix = blob_file.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size:
        raise BlobFormatError(f"too short to be an Ember blob ({len(prefix)} bytes)")
    header_size = _PREFIX.unpack(prefix)[3]
    if header_size > MAX_HEADER_SIZE:
        raise BlobFormatError(f"header of {header_size} bytes is implausibly large")
    return read_header(prefix + blob_file.read(header_size + _DIGEST_SIZE))[0]


def unpack(data: bytes | memoryview, *,
           verify_payload: bool = True) -> tuple[BlobHeader, memoryview]:
    """Check a whole blob and return its header and a zero-copy view of its payload.

    ``verify_payload=False`` skips only the payload's checksum, for bytes whose integrity is
    already established more strongly (an HMAC over the whole blob, checked by the caller).

    :raises BlobFormatError: for a foreign file, a damaged header, a truncated or extended
        payload, or a payload whose checksum differs from the header's (a flipped bit).
    """
    view = memoryview(data).cast("B")
    header, offset = read_header(view)
    payload = view[offset:]
    if payload.nbytes != header.payload_length:
        raise BlobFormatError(
            f"payload is {payload.nbytes} bytes, header says {header.payload_length} (truncated?)"
        )
    if verify_payload and checksum.hexdigest(payload) != header.payload_checksum:
        raise BlobFormatError("payload checksum mismatch (the blob is damaged)")
    return header, payload
