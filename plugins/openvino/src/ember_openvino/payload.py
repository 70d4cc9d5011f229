"""OPENVINO's export format: Ember's ports, then OpenVINO's own ``export_model`` bytes.

Two sections in ``ember.plugin``'s framing (``write_frame``/``read_frame``, which check the
sections' bounds): 0, the ports (JSON, ``Port.to_json`` form); 1, OpenVINO's blob, encrypted when
flag 1 is set.

The core wraps this payload in its container (checksums, versions, signature) and owns the
cache; this module only writes and reads the payload. Read back, a payload is untrusted: the
framing checks every section's bounds, the ports' JSON is bounded in size and depth and parsed
into ports or refused, and anything malformed raises ``BlobFormatError``. OpenVINO's blob is
checked by OpenVINO when imported (``plugin.import_model``).

With encryption callbacks (flag 1) OpenVINO's blob is stored encrypted: it holds the compiled
graph's topology and weights. The ports stay readable (names and shapes an application sees
anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ember.plugin import (
    BlobFormatError,
    Port,
    decrypt_section,
    ports_from_json,
    ports_to_json,
    read_frame,
    write_frame,
)

KIND = b"EMOPENV\0"
FORMAT_VERSION = 2  # 1 had a header of its own; 2 is the plugin framing
_ENCRYPTED = 1
_KNOWN_FLAGS = _ENCRYPTED
_WHAT = "OPENVINO payload"


class SavedModel(NamedTuple):
    """A payload read back: the ports and OpenVINO's blob (decrypted)."""

    inputs: list[Port]
    outputs: list[Port]
    blob: bytes | memoryview


def dumps(inputs: list[Port], outputs: list[Port], blob: bytes | memoryview,
          encrypt: Callable[[bytes], bytes] | None = None) -> bytes:
    """The payload of a compiled model: its ports and OpenVINO's blob (through ``encrypt``
    when given)."""
    ports = ports_to_json(inputs, outputs)
    if encrypt is None:
        return write_frame(KIND, FORMAT_VERSION, [ports, blob])
    return write_frame(KIND, FORMAT_VERSION, [ports, bytes(encrypt(bytes(blob)))],
                       flags=_ENCRYPTED)


def loads(data: bytes | memoryview, decrypt: Callable[[bytes], bytes] | None = None
          ) -> SavedModel:
    """Read a payload back. Total over untrusted bytes: anything but a well-formed payload
    raises ``BlobFormatError``."""
    frame = read_frame(data, KIND, FORMAT_VERSION, sections=2, known_flags=_KNOWN_FLAGS,
                       what=_WHAT)
    ports, blob = frame.sections
    inputs, outputs = ports_from_json(ports, _WHAT)
    plain: bytes | memoryview = blob
    if frame.flags & _ENCRYPTED:
        if decrypt is None:
            raise BlobFormatError(f"the {_WHAT} is encrypted and no callbacks were given")
        plain = decrypt_section(decrypt, blob, _WHAT)
    if len(plain) == 0:
        raise BlobFormatError(f"damaged {_WHAT}: OpenVINO's blob is empty")
    return SavedModel(inputs, outputs, plain)

