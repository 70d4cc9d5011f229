"""The one reader of JSON that came back from a disk, a bundle or a server: bounded and total.

Every JSON document Ember reads back (blob headers, plugin payloads' topologies, Redis manifests,
the store's ``.locations.json``, remembered file digests, ``events.log`` lines) is untrusted: it
may have been written by anyone who could write the file or the key. :func:`loads` accepts any
bytes and returns a document whose size, nesting depth, numbers and strings are bounded, or raises
:class:`ember.errors.BlobFormatError` (or the subclass the caller names); no RecursionError,
OverflowError, UnicodeDecodeError or MemoryError escapes it. The typed getters then turn "a field
of the wrong type" into the same error instead of an AttributeError three calls later.

Bounds are checked in this order: byte size before decoding, UTF-8 strictly, then the parse
(the C decoder; deep nesting raises RecursionError inside it, caught here), then one iterative walk
over the result that bounds depth, node count and numbers. NaN, Infinity and ``1e999`` are refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

from ember.errors import BlobFormatError

#: Defaults; callers pass tighter ones where they know better.
MAX_DEPTH = 32
MAX_NODES = 1 << 20
#: Integers beyond this are refused: every count, size and offset Ember reads fits in 63 bits.
MAX_INT = (1 << 63) - 1

T = TypeVar("T")
_Error = type[BlobFormatError]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number Ember reads")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 20:  # an int() of thousands of digits is slow, and more than MAX_INT anyway
        raise ValueError(f"integer {text[:20]}... is out of range")
    value = int(text)
    if not -MAX_INT <= value <= MAX_INT:
        raise ValueError(f"integer {text} is out of range")
    return value


# Made once: json.loads with hooks would build a decoder and its scanner on every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float,
                            parse_int=_bounded_int)


def loads(data: bytes | bytearray | memoryview | str, *, what: str, max_size: int,
          max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES,
          error: _Error = BlobFormatError) -> Any:
    """Parse ``data`` as bounded JSON.

    :param what: names the document in error messages ("blob header", "Redis manifest", ...).
    :param max_size: bytes (UTF-8) beyond which the document is refused unread.
    :raises BlobFormatError: (or ``error``) for anything but bounded, valid JSON.
    """
    size = len(data) if isinstance(data, str) else memoryview(data).nbytes
    if size > max_size:
        raise error(f"{what} of {size} bytes is larger than the {max_size} allowed")
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    try:
        document = _DECODER.decode(str(raw, "utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int() of more than 4300 digits
        raise error(f"{what} is not valid JSON ({exc})") from None
    # Numbers were bounded as they were parsed. The walk is skipped when the text itself proves
    # the other bounds: fewer brackets than the depth allowed, fewer separators than the values
    # allowed (a header then costs a few microseconds, not tens).
    brackets = raw.count(b"[") + raw.count(b"{")
    if brackets >= max_depth or brackets + raw.count(b",") + raw.count(b":") >= max_nodes:
        check_bounds(document, what=what, max_depth=max_depth, max_nodes=max_nodes, error=error)
    return document


def check_bounds(document: Any, *, what: str, max_depth: int = MAX_DEPTH,
                 max_nodes: int = MAX_NODES, error: _Error = BlobFormatError) -> None:
    """Bound the depth, node count and numbers of a parsed document (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise error(f"{what} holds more than {max_nodes} values")
        kind = type(value)
        if kind is dict or kind is list:
            if depth >= max_depth:
                raise error(f"{what} is nested deeper than {max_depth} levels")
            children = value.values() if kind is dict else value
            stack.extend((child, depth + 1) for child in children)
        elif kind is float:
            if not math.isfinite(value):
                raise error(f"{what} holds a number out of range")
        elif kind is int and not -MAX_INT <= value <= MAX_INT:
            raise error(f"{what} holds an integer out of range")


# -- typed access to fields of a parsed document --------------------------------------------------


def obj(value: Any, what: str, error: _Error = BlobFormatError) -> dict[str, Any]:
    """``value`` if it is a JSON object, else the error."""
    if type(value) is not dict:
        raise error(f"{what} is {_kind(value)}, not an object")
    return value


def get(document: dict[str, Any], name: str, kind: type[T] | tuple[type, ...], what: str, *,
        default: Any = ..., check: Callable[[Any], bool] | None = None,
        error: _Error = BlobFormatError) -> T:
    """``document[name]`` when it is of ``kind`` (bool is not an int here) and passes ``check``.

    A missing field is the error unless a ``default`` is given.
    """
    if name not in document:
        if default is ...:
            raise error(f"{what} has no field {name!r}")
        return default
    value = document[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if type(value) not in kinds:
        names = " or ".join(k.__name__ for k in kinds)
        raise error(f"{what} field {name!r} is {_kind(value)}, not {names}")
    if check is not None and not check(value):
        raise error(f"{what} field {name!r} has an invalid value {short(value)}")
    return value  # type: ignore[return-value]


def is_hex(length: int) -> Callable[[Any], bool]:
    """A check for lower-case ASCII hex strings of exactly ``length`` characters."""
    digits = frozenset("0123456789abcdef")

    def check(value: Any) -> bool:
        return (isinstance(value, str) and len(value) == length
                and value.isascii() and digits.issuperset(value))

    return check


def in_range(low: float, high: float) -> Callable[[Any], bool]:
    """A check for :func:`get`: whether a number lies between ``low`` and ``high``, both
    included."""
    return lambda value: low <= value <= high


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value), "a value")


def short(value: Any) -> str:
    """A value shortened for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
