"""CPU's export format: the model's optimised graph in onnxruntime's ORT format, then its ports,
in the plugin framing of ``ember.plugin`` (``write_frame``/``read_frame``), which checks the
sections' bounds.

Sections (format 3): 0, the ORT-format bytes; 1, the ports (JSON, ``Port.to_json`` form).

The ORT bytes are section 0, which the framing puts at the payload's first byte, so that a payload
read into a ``bytes`` object of its own (as the model cache reads it) is handed to onnxruntime
whole: it builds the session from those very bytes, in place, and reads its flatbuffer from the
start, paying no attention to what follows it. Nothing is copied between the disk and the session.

With encryption callbacks (flag 1) both sections are stored encrypted: an ORT flatbuffer keeps
node names, operator types and weights interleaved, so the topology cannot be hidden without the
weights. AES-GCM decrypts at well over 1 GB/s, a small cost next to building the session.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

from ember.plugin import BlobFormatError, Port, read_frame, safe_json, write_frame

KIND = b"EMCPU\0\0\0"
FORMAT_VERSION = 3
_ENCRYPTED = 1
_KNOWN_FLAGS = _ENCRYPTED
#: The ports' JSON is refused beyond this size (a model with ten thousand ports fits).
_MAX_PORTS_SIZE = 16 << 20
_MAX_PORTS = 65536
_WHAT = "CPU payload"


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
    if encrypt is None:
        return write_frame(KIND, FORMAT_VERSION, [ort_bytes, ports])
    return write_frame(KIND, FORMAT_VERSION, [bytes(encrypt(bytes(ort_bytes))),
                                              bytes(encrypt(ports))], flags=_ENCRYPTED)


def loads(data: bytes | memoryview, decrypt: Callable[[bytes], bytes] | None = None
          ) -> SavedModel:
    """Read a payload back; with ``data`` a ``bytes`` object and no encryption, nothing is
    copied (``session_bytes`` is ``data`` itself).

    Total over untrusted bytes: anything but a well-formed payload raises BlobFormatError. The
    ORT bytes are checked by onnxruntime when loaded, and the ports against the session then
    (``ember_cpu.compiler.check_ports``).
    """
    frame = read_frame(data, KIND, FORMAT_VERSION, sections=2, known_flags=_KNOWN_FLAGS,
                       what=_WHAT)
    graph, ports = frame.sections
    # onnxruntime's binding takes bytes: the payload itself when the graph starts it (always,
    # for a payload this plugin wrote), else one copy
    whole: bytes | None = data if isinstance(data, bytes) else None
    if frame.flags & _ENCRYPTED:
        if decrypt is None:
            raise BlobFormatError("the CPU payload is encrypted and no callbacks were given")
        whole = _decrypt(decrypt, graph)
        graph, ports = memoryview(whole), memoryview(_decrypt(decrypt, ports))
    document = safe_json.obj(safe_json.loads(ports, what="CPU payload's ports",
                                             max_size=_MAX_PORTS_SIZE, max_depth=4),
                             "CPU payload's ports")
    try:
        inputs, outputs = (_ports(document.get(kind)) for kind in ("inputs", "outputs"))
    except ValueError as exc:
        raise BlobFormatError(f"damaged CPU payload: {exc}") from exc
    return SavedModel(inputs, outputs, graph, whole if whole is not None else bytes(graph))


def _decrypt(decrypt: Callable[[bytes], bytes], section: memoryview) -> bytes:
    try:
        plain = decrypt(bytes(section))
    except BlobFormatError:
        raise
    except Exception as exc:  # the user's callback: any failure means "not our key"
        raise BlobFormatError(f"the CPU payload does not decrypt: {exc}") from exc
    if not isinstance(plain, bytes | bytearray | memoryview):
        raise BlobFormatError("the CPU payload's decrypt callback returned no bytes")
    return bytes(plain)


def _ports(entries: object) -> list[Port]:
    if type(entries) is not list or len(entries) > _MAX_PORTS:
        raise ValueError("the ports are not a list")
    ports = [Port.from_json(entry, index) for index, entry in enumerate(entries)]
    if len({port.name for port in ports}) != len(ports):
        raise ValueError("two ports have the same name")
    return ports
