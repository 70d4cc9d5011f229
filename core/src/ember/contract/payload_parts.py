"""Pieces that device plugins' payloads share beside the framing (``ember.contract.framing``): the
user's decrypt callback, called once the same way, and the ports section (a model's inputs and
outputs as JSON), written and read back the same way.

Reading is total over untrusted bytes: anything malformed raises
:class:`ember.errors.BlobFormatError` naming the payload (``what``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ember.common import safe_json
from ember.errors import BlobFormatError
from ember.model.port import Port

__all__ = ["MAX_PORTS", "MAX_PORTS_SIZE", "decrypt_section", "ports_from_json", "ports_to_json"]

#: The ports' JSON is refused beyond this size (a model with ten thousand ports fits).
MAX_PORTS_SIZE = 16 << 20
#: A payload lists at most this many inputs (and as many outputs).
MAX_PORTS = 65536


def decrypt_section(decrypt: Callable[[bytes], bytes], section: bytes | memoryview,
                    what: str) -> bytes:
    """``section`` through the user's ``decrypt`` callback, for the payload ``what``.

    :raises BlobFormatError: when the callback fails in any way (a wrong key raises whatever the
        user's cipher raises: all of it means "does not decrypt"), or returns no bytes.
    """
    try:
        plain = decrypt(bytes(section))
    except BlobFormatError:
        raise
    except Exception as exc:  # the user's callback: any failure means "not our key"
        raise BlobFormatError(f"the {what} does not decrypt: {exc}") from exc
    if not isinstance(plain, bytes | bytearray | memoryview):
        raise BlobFormatError(f"the {what}'s decrypt callback returned no bytes")
    return bytes(plain)


def ports_to_json(inputs: list[Port], outputs: list[Port]) -> bytes:
    """A model's ports as the JSON bytes ``{"inputs": [...], "outputs": [...]}`` (each port in
    ``Port.to_json`` form), which :func:`ports_from_json` reads back."""
    return json.dumps({"inputs": [p.to_json() for p in inputs],
                       "outputs": [p.to_json() for p in outputs]}).encode()


def ports_from_json(section: bytes | memoryview, what: str, *,
                    max_size: int = MAX_PORTS_SIZE) -> tuple[list[Port], list[Port]]:
    """The (inputs, outputs) that :func:`ports_to_json` wrote, read from untrusted bytes: at most
    ``max_size`` bytes of JSON nested at most 4 deep, each list at most :data:`MAX_PORTS` ports,
    no two of a list with the same name.

    :raises BlobFormatError: naming the payload ``what`` and what is wrong.
    """
    document = safe_json.obj(safe_json.loads(section, what=f"{what}'s ports", max_size=max_size,
                                             max_depth=4), f"{what}'s ports")
    try:
        inputs, outputs = (_port_list(document.get(kind)) for kind in ("inputs", "outputs"))
    except ValueError as exc:
        raise BlobFormatError(f"damaged {what}: {exc}") from exc
    return inputs, outputs


def _port_list(entries: object) -> list[Port]:
    if type(entries) is not list or len(entries) > MAX_PORTS:
        raise ValueError("the ports are not a list")
    ports = [Port.from_json(entry, index) for index, entry in enumerate(entries)]
    if len({port.name for port in ports}) != len(ports):
        raise ValueError("two ports have the same name")
    return ports
