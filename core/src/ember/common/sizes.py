"""Byte sizes as users write them (``CACHE_MAX_SIZE``, a remote cache's ``max_entry``, the
command line's ``--max-size``): one parser for all of them."""

from __future__ import annotations

from typing import Any


def parse_size(value: Any) -> int | None:
    """Bytes from an int or a string such as ``"500M"`` or ``"2GiB"``; None when not a size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    try:
        size = float(number) * scale
    except ValueError:
        return None
    return int(size) if size >= 0 else None
