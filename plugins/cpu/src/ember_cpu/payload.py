"""CPU's export format: the model's optimised graph in onnxruntime's ORT format, then its ports.

Layout (format 2)::

    body | flags (uint32 LE) | version (uint32 LE) | b"EMCPU\\0\\0\\0"
    body = ORT-format bytes | ports (JSON, P bytes) | P (uint32 LE)

The ORT bytes come first and everything else follows them, so that a payload read into a
``bytes`` object of its own (as the model cache reads it) is handed to onnxruntime whole: it builds
the session from those very bytes, in place, and reads its flatbuffer from the start, paying no
attention to what follows it. Nothing is copied between the disk and the session.

With encryption callbacks (flag 1) the body is stored encrypted: an ORT flatbuffer keeps node
names, operator types and weights interleaved, so the topology cannot be hidden without the
weights. AES-GCM decrypts at well over 1 GB/s, a small cost next to building the session; the
decrypted body, ORT bytes first too, is handed to onnxruntime whole.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import NamedTuple

from ember import safe_json
from ember.errors import BlobFormatError
from ember.model import Port

MAGIC = b"EMCPU\0\0\0"
FORMAT_VERSION = 2
_TRAILER = struct.Struct("<II8s")  # flags, version, magic
_LENGTH = struct.Struct("<I")
_ENCRYPTED = 1
_KNOWN_FLAGS = _ENCRYPTED
#: The ports' JSON is refused beyond this size (a model with ten thousand ports fits).
_MAX_PORTS_SIZE = 16 << 20
_MAX_PORTS = 65536


class SavedModel(NamedTuple):
    """A payload read back: the ports, the ORT-format bytes, and what to build the session from.

    ``session_bytes`` starts with the ORT bytes and may go on past them (it is the whole payload
    when it could be used without a copy); onnxruntime uses it in place, so it must stay alive
    as long as the session. ``graph`` is exactly the ORT bytes (a view, for export).
    """

    inputs: list[Port]
    outputs: list[Port]
    graph: memoryview
    session_bytes: bytes


def dumps(inputs: list[Port], outputs: list[Port], ort_bytes: bytes | memoryview,
          encrypt: Callable[[bytes], bytes] | None = None) -> bytes:
    ports = json.dumps({"inputs": [p.to_json() for p in inputs],
                        "outputs": [p.to_json() for p in outputs]}).encode()
    body = b"".join([ort_bytes, ports, _LENGTH.pack(len(ports))])
    flags = 0
    if encrypt is not None:
        body, flags = bytes(encrypt(body)), _ENCRYPTED
    return body + _TRAILER.pack(flags, FORMAT_VERSION, MAGIC)


def loads(data: bytes | memoryview, decrypt: Callable[[bytes], bytes] | None = None
          ) -> SavedModel:
    """Read a payload back; with ``data`` a ``bytes`` object and no encryption, nothing is
    copied (``session_bytes`` is ``data`` itself).

    Total over untrusted bytes: anything but a well-formed payload raises BlobFormatError. The
    ORT bytes are checked by onnxruntime when loaded, and the ports against the session then
    (``ember_cpu.compiler.check_ports``).
    """
    view = memoryview(data).cast("B")
    if view.nbytes < _TRAILER.size:
        raise BlobFormatError("CPU payload is too short")
    flags, version, magic = _TRAILER.unpack_from(view, view.nbytes - _TRAILER.size)
    if magic != MAGIC:
        raise BlobFormatError("not a CPU payload (wrong magic bytes)")
    if version != FORMAT_VERSION:
        raise BlobFormatError(f"CPU payload format {version}; this plugin reads {FORMAT_VERSION}")
    if flags & ~_KNOWN_FLAGS:
        raise BlobFormatError(f"CPU payload has unknown flags {flags:#x}")
    body = view[:view.nbytes - _TRAILER.size]
    whole: bytes | None = data if isinstance(data, bytes) else None
    if flags & _ENCRYPTED:
        if decrypt is None:
            raise BlobFormatError("the CPU payload is encrypted and no callbacks were given")
        try:
            whole = bytes(decrypt(bytes(body)))
        except BlobFormatError:
            raise
        except Exception as exc:  # the user's callback: any failure means "not our key"
            raise BlobFormatError(f"the CPU payload does not decrypt: {exc}") from exc
        body = memoryview(whole)
    if body.nbytes < _LENGTH.size:
        raise BlobFormatError("damaged CPU payload: no ports")
    (size,) = _LENGTH.unpack_from(body, body.nbytes - _LENGTH.size)
    if _LENGTH.size + size > body.nbytes:
        raise BlobFormatError(f"damaged CPU payload: ports of {size} bytes in a body of "
                              f"{body.nbytes}")
    ports_start = body.nbytes - _LENGTH.size - size
    document = safe_json.obj(
        safe_json.loads(body[ports_start:body.nbytes - _LENGTH.size], what="CPU payload's ports",
                        max_size=_MAX_PORTS_SIZE, max_depth=4), "CPU payload's ports")
    try:
        inputs, outputs = (_ports(document.get(kind)) for kind in ("inputs", "outputs"))
    except ValueError as exc:
        raise BlobFormatError(f"damaged CPU payload: {exc}") from exc
    graph = body[:ports_start]
    # onnxruntime's binding takes bytes: a view into something else costs one copy
    return SavedModel(inputs, outputs, graph, whole if whole is not None else bytes(graph))


def _ports(entries: object) -> list[Port]:
    if type(entries) is not list or len(entries) > _MAX_PORTS:
        raise ValueError("the ports are not a list")
    ports = [Port.from_json(entry, index) for index, entry in enumerate(entries)]
    if len({port.name for port in ports}) != len(ports):
        raise ValueError("two ports have the same name")
    return ports
