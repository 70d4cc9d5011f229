"""CPU's export format: the model's ports and its optimised graph in onnxruntime's ORT format.

Layout::

    b"EMCPU\\0\\0\\0" | version (uint32 LE) | flags (uint32 LE) | body
    body = ports length P (uint32 LE) | ports (JSON, P bytes) | ORT-format bytes

With encryption callbacks (flag 1) the whole body is stored encrypted: an ORT flatbuffer keeps
node names, operator types and weights interleaved, so the topology cannot be hidden without the
weights. AES-GCM decrypts at well over 1 GB/s, a small cost next to building the session.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

from ember.errors import BlobFormatError
from ember.model import Port

MAGIC = b"EMCPU\0\0\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII")
_LENGTH = struct.Struct("<I")
_ENCRYPTED = 1


def dumps(inputs: list[Port], outputs: list[Port], ort_bytes: bytes,
          encrypt: Callable[[bytes], bytes] | None = None) -> bytes:
    ports = json.dumps({"inputs": [p.to_json() for p in inputs],
                        "outputs": [p.to_json() for p in outputs]}).encode()
    body = b"".join([_LENGTH.pack(len(ports)), ports, ort_bytes])
    flags = 0
    if encrypt is not None:
        body, flags = bytes(encrypt(body)), _ENCRYPTED
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, flags) + body


def loads(data: bytes | memoryview, decrypt: Callable[[bytes], bytes] | None = None
          ) -> tuple[list[Port], list[Port], bytes | memoryview]:
    """Ports and ORT bytes (a view into ``data`` when not encrypted: no copy)."""
    view = memoryview(data).cast("B")
    if view.nbytes < _PREFIX.size:
        raise BlobFormatError("CPU payload is too short")
    magic, version, flags = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise BlobFormatError("not a CPU payload (wrong magic bytes)")
    if version != FORMAT_VERSION:
        raise BlobFormatError(f"CPU payload format {version}; this plugin reads {FORMAT_VERSION}")
    body: bytes | memoryview = view[_PREFIX.size:]
    if flags & _ENCRYPTED:
        if decrypt is None:
            raise BlobFormatError("the CPU payload is encrypted and no callbacks were given")
        try:
            body = memoryview(decrypt(bytes(body)))
        except BlobFormatError:
            raise
        except Exception as exc:  # the user's callback: any failure means "not our key"
            raise BlobFormatError(f"the CPU payload does not decrypt: {exc}") from exc
    try:
        (size,) = _LENGTH.unpack_from(body)
        document = json.loads(bytes(body[_LENGTH.size:_LENGTH.size + size]))
        inputs = [Port.from_json(p, i) for i, p in enumerate(document["inputs"])]
        outputs = [Port.from_json(p, i) for i, p in enumerate(document["outputs"])]
    except (ValueError, TypeError, KeyError, struct.error) as exc:
        raise BlobFormatError(f"damaged CPU payload: {exc}") from exc
    return inputs, outputs, body[_LENGTH.size + size:]
