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

from collections.abc import Callable

from ember.plugin import (
    BlobFormatError,
    Port,
    decrypt_section,
    ports_from_json,
    ports_to_json,
    read_frame,
    write_frame,
)

KIND = b"EMCPU\0\0\0"
FORMAT_VERSION = 3
_ENCRYPTED = 1
_KNOWN_FLAGS = _ENCRYPTED
_WHAT = "CPU payload"


class SavedModel:
    """A payload read back: the ports, the ORT-format bytes, and what to build the session from.

    ``session_bytes`` starts with the ORT bytes and may go on past them (it is the whole payload
    when it could be used without a copy); onnxruntime uses it in place, so it must stay alive
    as long as the session. ``graph`` is exactly the ORT bytes (a view, for export).

    A plain class, not a NamedTuple: every warm start reads a payload, and creating a NamedTuple
    class at import costs more than the rest of this module.
    """

    __slots__ = ("graph", "inputs", "outputs", "session_bytes")

    def __init__(self, inputs: list[Port], outputs: list[Port], graph: memoryview,
                 session_bytes: bytes) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.graph = graph
        self.session_bytes = session_bytes


def dumps(inputs: list[Port], outputs: list[Port], ort_bytes: bytes | memoryview,
          encrypt: Callable[[bytes], bytes] | None = None) -> bytes:
    ports = ports_to_json(inputs, outputs)
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
        whole = decrypt_section(decrypt, graph, _WHAT)
        graph, ports = memoryview(whole), memoryview(decrypt_section(decrypt, ports, _WHAT))
    inputs, outputs = ports_from_json(ports, _WHAT)
    return SavedModel(inputs, outputs, graph, whole if whole is not None else bytes(graph))

