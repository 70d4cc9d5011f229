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

from ember import safe_json
from ember.errors import BlobFormatError
from ember.model import Port

MAGIC = b"EMCPU\0\0\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII")
_LENGTH = struct.Struct("<I")
_ENCRYPTED = 1
_KNOWN_FLAGS = _ENCRYPTED
#: The ports' JSON is refused beyond this size (a model with ten thousand ports fits).
_MAX_PORTS_SIZE = 16 << 20
_MAX_PORTS = 65536


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
    """Ports and ORT bytes (a view into ``data`` when not encrypted: no copy).

    Total over untrusted bytes: anything but a well-formed payload raises BlobFormatError. The
    ORT bytes are checked by onnxruntime when loaded, and the ports against the session then
    (``ember_cpu.compiler.check_ports``).
    """
    view = memoryview(data).cast("B")
    if view.nbytes < _PREFIX.size:
        raise BlobFormatError("CPU payload is too short")
    magic, version, flags = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise BlobFormatError("not a CPU payload (wrong magic bytes)")
    if version != FORMAT_VERSION:
        raise BlobFormatError(f"CPU payload format {version}; this plugin reads {FORMAT_VERSION}")
    if flags & ~_KNOWN_FLAGS:
        raise BlobFormatError(f"CPU payload has unknown flags {flags:#x}")
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
    body = memoryview(body).cast("B")
    if body.nbytes < _LENGTH.size:
        raise BlobFormatError("damaged CPU payload: no ports")
    (size,) = _LENGTH.unpack_from(body)
    if _LENGTH.size + size > body.nbytes:
        raise BlobFormatError(f"damaged CPU payload: ports of {size} bytes in a body of "
                              f"{body.nbytes}")
    document = safe_json.obj(
        safe_json.loads(body[_LENGTH.size:_LENGTH.size + size], what="CPU payload's ports",
                        max_size=_MAX_PORTS_SIZE, max_depth=4), "CPU payload's ports")
    try:
        inputs, outputs = (_ports(document.get(kind)) for kind in ("inputs", "outputs"))
    except ValueError as exc:
        raise BlobFormatError(f"damaged CPU payload: {exc}") from exc
    return inputs, outputs, body[_LENGTH.size + size:]


def _ports(entries: object) -> list[Port]:
    if type(entries) is not list or len(entries) > _MAX_PORTS:
        raise ValueError("the ports are not a list")
    ports = [Port.from_json(entry, index) for index, entry in enumerate(entries)]
    if len({port.name for port in ports}) != len(ports):
        raise ValueError("two ports have the same name")
    return ports
