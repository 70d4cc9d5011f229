"""Forging cache entries as an attacker would, for tests and fuzzers: change bytes or fields, then
recompute every checksum (and the signature, when the forger holds the key).

``reframe`` rebuilds a blob around a new header or payload with valid checksums, ``mutate_bytes``
and ``mutate_json`` change bytes and parsed JSON documents in the ways that broke parsers before
(deep nesting, huge or infinite numbers, wrong types, non-UTF-8, non-ASCII), seeded so that every
run can be repeated.
"""

from __future__ import annotations

import json
import random
import struct
from typing import Any

from ember.common import checksum
from ember.store import blob

_PREFIX = struct.Struct("<8sHHI")
_PLACEHOLDER = "\x00RAW\x00"

#: JSON texts that are valid JSON (or nearly) and broke parsers: nesting, numbers, encodings.
RAW_VALUES: tuple[bytes, ...] = (
    b"[" * 50_000 + b"]" * 50_000,
    b"{\"a\":" * 3_000 + b"1" + b"}" * 3_000,
    b"1e999", b"-1e999", b"1" + b"0" * 400 + b".0", b"9" * 5_000, b"NaN", b"Infinity",
    b"18446744073709551617", b"-1", b"0", b"4294967296", b"1.5", b"true", b"null",
    b"\"\\ud800\"", b"\"\xff\xfe\"", b"\"\xc3\xa9t\xc3\xa9\"", b"\"<f3\"", b"\"O\"",
    b"\"(\"", b"\"[('a', '<f4')]\"", b"\"\\u0000\"", b"[]", b"{}", b"[null]", b"[-1]",
    b"[1e999]", b"\"" + b"a" * 70_000 + b"\"",
)
#: Python values to put where a field was (wrong types and out-of-range values).
NASTY_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1 << 62, (1 << 63) - 1, 1.5, -0.0, "", "x", "é", "\u0000",
    "<f3", "|O", "O", "V8", "S5", "(", "[('a', '<f4')]", "f4,f4", "M8[s]", [], {}, [None],
    [-1], [1 << 40, 1 << 40], ["a"], {"a": 1}, [[[[[]]]]], "0" * 64, "g" * 64, "é" * 32,
    10_000_000, 2 ** 31, 2 ** 32 + 1,
)


def header_fields(data: bytes) -> dict[str, Any]:
    """A blob's header as a dict, unchecked (for forging)."""
    size = _PREFIX.unpack_from(data)[3]
    return json.loads(data[_PREFIX.size:_PREFIX.size + size])


def split(data: bytes) -> tuple[dict[str, Any], bytes]:
    """A valid blob's header fields and payload."""
    _header, payload = blob.unpack(data)
    fields = header_fields(data)
    return fields, bytes(payload)


def reframe(fields: dict[str, Any] | bytes, payload: bytes, *, signer: Any = None,
            key: str | None = None, flags: int | None = None) -> bytes:
    """A blob with this header (a dict, or raw JSON bytes) and payload, every checksum
    recomputed, signed with ``signer`` for ``key`` when given (the forger holds a key)."""
    if isinstance(fields, dict):
        fields = {**fields, "payload_length": len(payload),
                  "payload_checksum": checksum.hexdigest(payload)}
        text = json.dumps(fields).encode()
    else:
        text = fields
    signed = signer is not None
    flag_value = flags if flags is not None else (blob.FLAG_SIGNED if signed else 0)
    unpadded = _PREFIX.size + len(text) + checksum.DIGEST_SIZE
    text += b" " * (-unpadded % 64)
    head = _PREFIX.pack(blob.MAGIC, blob.CONTAINER_VERSION, flag_value, len(text)) + text
    data = head + checksum.digest(head) + payload
    if signed:
        data += signer.tag(key or str(fields.get("key", "")) if isinstance(fields, dict)
                           else key or "", data)
    return data


def with_raw(document: Any, path: list[Any], raw: bytes) -> bytes:
    """``document`` serialized with the value at ``path`` replaced by the raw JSON text ``raw``."""
    if not path:
        return raw
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = _PLACEHOLDER
    text = json.dumps(copy).encode()
    return text.replace(json.dumps(_PLACEHOLDER).encode(), raw, 1)


def paths(document: Any, limit: int = 2000) -> list[list[Any]]:
    """Every path to a value inside a JSON document (at most ``limit``), the root included."""
    found: list[list[Any]] = [[]]
    stack: list[tuple[Any, list[Any]]] = [(document, [])]
    while stack and len(found) < limit:
        value, path = stack.pop()
        children = (value.items() if isinstance(value, dict)
                    else enumerate(value) if isinstance(value, list) else ())
        for name, child in children:
            found.append([*path, name])
            stack.append((child, [*path, name]))
    return found


def mutate_json(rng: random.Random, document: Any) -> bytes:
    """``document`` with one value replaced, removed, or rewritten as raw text; serialized."""
    where = rng.choice(paths(document))
    choice = rng.random()
    if choice < 0.35:
        return with_raw(document, where, rng.choice(RAW_VALUES))
    copy = json.loads(json.dumps(document))
    if not where:
        return json.dumps(rng.choice(NASTY_VALUES)).encode()
    target = copy
    for step in where[:-1]:
        target = target[step]
    if choice < 0.5 and isinstance(target, dict):
        del target[where[-1]]
    elif choice < 0.6 and isinstance(target, list):
        target.extend(target[:1] * rng.randint(1, 3))
    else:
        target[where[-1]] = rng.choice(NASTY_VALUES)
    return json.dumps(copy).encode()


def mutate_bytes(rng: random.Random, data: bytes, *, protect: int = 0) -> bytes:
    """``data`` with one to a few random changes (bit flips, bytes set, cuts, insertions,
    duplicated ranges) after its first ``protect`` bytes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if len(out) <= protect:
            out += bytes([rng.randrange(256)])
            continue
        position = rng.randrange(protect, len(out))
        choice = rng.random()
        if choice < 0.3:
            out[position] ^= 1 << rng.randrange(8)
        elif choice < 0.5:
            out[position] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif choice < 0.6 and len(out) >= 4 + protect:  # a length or count field
            struct.pack_into("<I", out, max(min(position, len(out) - 4), protect),
                             rng.choice((0, 1, 0xFFFFFFFF, 0x7FFFFFFF, len(out))))
        elif choice < 0.75:
            del out[position:position + rng.randint(1, 64)]
        elif choice < 0.85:
            out[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif choice < 0.95:
            del out[position:]
        else:
            end = min(len(out), position + rng.randint(1, 256))
            out[position:position] = out[position:end]
    return bytes(out)
