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

import json
from collections.abc import Callable
from typing import NamedTuple

from ember.plugin import BlobFormatError, Port, read_frame, safe_json, write_frame

KIND = b"EMOPENV\0"
FORMAT_VERSION = 2  # 1 had a header of its own; 2 is the plugin framing
_ENCRYPTED = 1
_KNOWN_FLAGS = _ENCRYPTED
#: The ports' JSON is refused beyond this size (a model with ten thousand ports fits).
MAX_PORTS_SIZE = 16 << 20
MAX_PORTS = 65536
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
    ports = json.dumps({"inputs": [p.to_json() for p in inputs],
                        "outputs": [p.to_json() for p in outputs]}).encode()
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
    document = safe_json.obj(safe_json.loads(ports, what=f"{_WHAT}'s ports",
                                             max_size=MAX_PORTS_SIZE, max_depth=4),
                             f"{_WHAT}'s ports")
    try:
        inputs, outputs = (_port_list(document.get(kind)) for kind in ("inputs", "outputs"))
    except ValueError as exc:
        raise BlobFormatError(f"damaged {_WHAT}: {exc}") from None
    plain: bytes | memoryview = blob
    if frame.flags & _ENCRYPTED:
        if decrypt is None:
            raise BlobFormatError(f"the {_WHAT} is encrypted and no callbacks were given")
        plain = _decrypt(decrypt, blob)
    if len(plain) == 0:
        raise BlobFormatError(f"damaged {_WHAT}: OpenVINO's blob is empty")
    return SavedModel(inputs, outputs, plain)


def _decrypt(decrypt: Callable[[bytes], bytes], section: memoryview) -> bytes:
    try:
        plain = decrypt(bytes(section))
    except BlobFormatError:
        raise
    except Exception as exc:  # the user's callback: any failure means "not our key"
        raise BlobFormatError(f"the {_WHAT} does not decrypt: {exc}") from exc
    if not isinstance(plain, bytes | bytearray | memoryview):
        raise BlobFormatError(f"the {_WHAT}'s decrypt callback returned no bytes")
    return bytes(plain)


def _port_list(entries: object) -> list[Port]:
    if type(entries) is not list or len(entries) > MAX_PORTS:
        raise ValueError("the ports are not a list")
    ports = [Port.from_json(entry, index) for index, entry in enumerate(entries)]
    if len({port.name for port in ports}) != len(ports):
        raise ValueError("two ports have the same name")
    return ports
