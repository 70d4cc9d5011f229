"""OPENVINO's export format: Ember's ports, then OpenVINO's own ``export_model`` bytes.

Layout (format 1)::

    header | ports (JSON, P bytes) | OpenVINO's blob (B bytes, encrypted when flag 1 is set)
    header = b"EMOPENV\\0" | version (uint32 LE) | flags (uint32 LE) | P (uint32 LE) | B (uint64 LE)

The core wraps this payload in its container (checksums, versions, signature) and owns the
cache; this module only writes and reads the payload. Read back, a payload is untrusted: every
length is checked against the bytes actually there before it is used, the ports' JSON is bounded
in size and parsed into ports or refused, and anything malformed raises ``BlobFormatError``.
OpenVINO's blob is checked by OpenVINO when imported (``plugin.import_model``).

With encryption callbacks (flag 1) OpenVINO's blob is stored encrypted: it holds the compiled
graph's topology and weights. The ports stay readable (names and shapes an application sees
anyway).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import NamedTuple

from ember.plugin import BlobFormatError, Port

MAGIC = b"EMOPENV\0"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIIIQ")  # magic, version, flags, ports' length, blob's length
_ENCRYPTED = 1
_KNOWN_FLAGS = _ENCRYPTED
#: The ports' JSON is refused beyond this size (a model with ten thousand ports fits).
MAX_PORTS_SIZE = 16 << 20
MAX_PORTS = 65536


class SavedModel(NamedTuple):
    """A payload read back: the ports and OpenVINO's blob (decrypted)."""

    inputs: list[Port]
    outputs: list[Port]
    blob: bytes | memoryview


def dumps(inputs: list[Port], outputs: list[Port], blob: bytes,
          encrypt: Callable[[bytes], bytes] | None = None) -> bytes:
    ports = json.dumps({"inputs": [p.to_json() for p in inputs],
                        "outputs": [p.to_json() for p in outputs]}).encode()
    flags = 0
    if encrypt is not None:
        blob, flags = bytes(encrypt(bytes(blob))), _ENCRYPTED
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, flags, len(ports), len(blob))
    return b"".join([header, ports, blob])


def loads(data: bytes | memoryview, decrypt: Callable[[bytes], bytes] | None = None
          ) -> SavedModel:
    """Read a payload back. Total over untrusted bytes: anything but a well-formed payload
    raises ``BlobFormatError``."""
    view = memoryview(data).cast("B")
    if view.nbytes < _HEADER.size:
        raise BlobFormatError("OPENVINO payload is too short")
    magic, version, flags, ports_size, blob_size = _HEADER.unpack_from(view)
    if magic != MAGIC:
        raise BlobFormatError("not an OPENVINO payload (wrong magic bytes)")
    if version != FORMAT_VERSION:
        raise BlobFormatError(f"OPENVINO payload format {version}; this plugin reads "
                              f"{FORMAT_VERSION}")
    if flags & ~_KNOWN_FLAGS:
        raise BlobFormatError(f"OPENVINO payload has unknown flags {flags:#x}")
    if ports_size > MAX_PORTS_SIZE or _HEADER.size + ports_size + blob_size != view.nbytes:
        raise BlobFormatError(f"damaged OPENVINO payload: {ports_size} bytes of ports and "
                              f"{blob_size} of OpenVINO's blob in {view.nbytes} bytes")
    ports_end = _HEADER.size + ports_size
    inputs, outputs = _ports(view[_HEADER.size:ports_end])
    blob: bytes | memoryview = view[ports_end:]
    if flags & _ENCRYPTED:
        if decrypt is None:
            raise BlobFormatError("the OPENVINO payload is encrypted and no callbacks were given")
        try:
            blob = bytes(decrypt(bytes(blob)))
        except BlobFormatError:
            raise
        except Exception as exc:  # the user's callback: any failure means "not our key"
            raise BlobFormatError(f"the OPENVINO payload does not decrypt: {exc}") from exc
    if len(blob) == 0:
        raise BlobFormatError("damaged OPENVINO payload: OpenVINO's blob is empty")
    return SavedModel(inputs, outputs, blob)


def _ports(text: memoryview) -> tuple[list[Port], list[Port]]:
    try:
        document = json.loads(bytes(text).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BlobFormatError(f"damaged OPENVINO payload: its ports are not JSON ({exc})"
                              ) from None
    if type(document) is not dict:
        raise BlobFormatError("damaged OPENVINO payload: its ports are not an object")
    try:
        return _port_list(document.get("inputs")), _port_list(document.get("outputs"))
    except ValueError as exc:
        raise BlobFormatError(f"damaged OPENVINO payload: {exc}") from None


def _port_list(entries: object) -> list[Port]:
    if type(entries) is not list or len(entries) > MAX_PORTS:
        raise ValueError("the ports are not a list")
    ports = [Port.from_json(entry, index) for index, entry in enumerate(entries)]
    if len({port.name for port in ports}) != len(ports):
        raise ValueError("two ports have the same name")
    return ports
