"""``ember.Layout``: OpenVINO's names for the dimensions of a tensor (``"NCHW"``, ``"[N,C,H,W]"``).

A layout is text only; nothing here imports numpy or onnx. It follows ``ov::Layout``: letters name
one dimension each (``"NHWC"``), brackets hold longer names (``"[N,C,H,W]"``), ``?`` is an unnamed
dimension and ``...`` stands for any number of them (``"NC..."``, ``"...C"``).
"""

from __future__ import annotations

from typing import Any

_MAX_TEXT = 1024


class Layout:
    """A tensor layout, compared by value. ``Layout()`` is the empty (unknown) layout."""

    __slots__ = ("_names", "_scalar")
    _names: tuple[str, ...]
    _scalar: bool

    def __init__(self, layout: str | Layout = "") -> None:
        if isinstance(layout, Layout):
            self._names, self._scalar = layout._names, layout._scalar
            return
        if not isinstance(layout, str) or len(layout) > _MAX_TEXT:
            raise RuntimeError(f"Layout: cannot parse {str(layout)[:64]!r}")
        self._names, self._scalar = _parse(layout.strip())

    @property
    def empty(self) -> bool:
        """True for the layout nothing is known of (OpenVINO: ``Layout().empty``)."""
        return not self._names and not self._scalar

    def scalar(self) -> bool:
        """Whether this is the layout of a scalar (``Layout("[]")``), which has no dimensions."""
        return self._scalar

    def has_name(self, name: str) -> bool:
        """Whether the layout names dimension ``name`` (``"C"``; case does not matter)."""
        return name.upper() in self._names

    def get_index_by_name(self, name: str) -> int:
        """The index of a dimension: counted from the end (negative) after a ``...``."""
        name = name.upper()
        if name not in self._names:
            raise RuntimeError(f"Layout {self.to_string()} has no dimension {name!r}")
        position = self._names.index(name)
        if "..." in self._names[:position]:
            return position - len(self._names)
        return position

    def to_string(self) -> str:
        """OpenVINO's canonical text: ``"[N,C,H,W]"``, ``"[N,C,...]"``, ``"[]"`` for a scalar."""
        if self.empty:
            return ""
        return "[" + ",".join(self._names) + "]"

    @property
    def names(self) -> tuple[str, ...]:
        """The dimension names in order (``"?"`` unnamed, ``"..."`` any number)."""
        return self._names

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Layout(other)
            except RuntimeError:
                return False
        if not isinstance(other, Layout):
            return NotImplemented
        return (self._names, self._scalar) == (other._names, other._scalar)

    def __hash__(self) -> int:
        return hash((self._names, self._scalar))

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"<Layout: {self.to_string()}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return Layout, (self.to_string() or "",)


def _parse(text: str) -> tuple[tuple[str, ...], bool]:
    if not text:
        return (), False
    if text.startswith("["):
        if not text.endswith("]"):
            raise RuntimeError(f"Layout: {text!r} opens '[' without closing it")
        inner = text[1:-1].strip()
        if not inner:
            return (), True
        names = tuple(part.strip().upper() for part in inner.split(","))
        if any(not n for n in names):
            raise RuntimeError(f"Layout: {text!r} has an empty dimension name")
    else:
        names = tuple(_letters(text.upper()))
    seen = [n for n in names if n not in ("?", "...")]
    if len(seen) != len(set(seen)):
        raise RuntimeError(f"Layout: {text!r} names a dimension twice")
    if names.count("...") > 1:
        raise RuntimeError(f"Layout: {text!r} has more than one '...'")
    return names, False


def _letters(text: str) -> list[str]:
    names: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("...", i):
            names.append("...")
            i += 3
        elif text[i].isalpha() or text[i] == "?":
            names.append(text[i])
            i += 1
        else:
            raise RuntimeError(f"Layout: {text!r} has an unexpected {text[i]!r}")
    return names
