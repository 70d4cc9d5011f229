"""The protobuf wire format, read without protobuf: varints and the fields of one message.

Ember reads two things from ONNX files without importing ``onnx`` (whose import costs more than
a whole warm start): whether a model names external data files (``ember.model.onnx_scan``) and
a model's header, its ports, opsets and metadata (``ember.model.onnx_header``). Both walk untrusted
bytes with these two functions, which raise ValueError or IndexError (only) on malformed input.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import overload

#: Wire types: a varint, 8 bytes, a length-delimited field, 4 bytes (groups, 3 and 4, are
#: deprecated and never written by ONNX's serialisers: they are refused as malformed).
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def varint(data: bytes | memoryview | FileBytes, position: int) -> tuple[int, int]:
    """The unsigned varint at ``position`` and the position after it."""
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def int64(value: int) -> int:
    """A varint read as protobuf's int64 (a negative number is written as its 64-bit
    complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(data: bytes | FileBytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Each field of the message ``data[start:end]``: ``(number, wire type, value, position)``.

    For a varint ``value`` is the number; for a length-delimited field the payload is
    ``data[position - value:position]`` (``value`` is its length); fixed-size fields give 0.
    ``position`` is where the next field starts.
    """
    position = start
    while position < end:
        byte = data[position]  # tags of fields 1-15 are one byte: the common case, inlined
        if byte < 0x80:
            tag, position = byte, position + 1
        else:
            tag, position = varint(data, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == VARINT:
            value, position = varint(data, position)
        elif wire_type == LENGTH:
            value, position = varint(data, position)
            position += value
            if position > end:
                raise ValueError(f"field {number} runs past its message")
        elif wire_type == FIXED64:
            value, position = 0, position + 8
        elif wire_type == FIXED32:
            value, position = 0, position + 4
        else:
            raise ValueError(f"wire type {wire_type}")
        if number == 0:
            raise ValueError("field number 0")
        yield number, wire_type, value, position
    if position != end:
        raise ValueError("a field runs past its message")


class FileBytes:
    """A file's bytes, indexed and sliced like ``bytes`` but read on demand, a page at a time.

    A walk that skips weights by their length then reads a few pages of a large model rather
    than all of it. A file that shrinks meanwhile ends early: indexing past the bytes actually
    read raises IndexError, as it does past the end of ``bytes``.
    """

    PAGE_BITS = 14  # 16 KiB: the real models' headers read in 30-50 pages, under a millisecond
    __slots__ = ("_fd", "_pages", "_size")

    def __init__(self, fd: int, size: int) -> None:
        self._fd, self._size = fd, size
        self._pages: dict[int, bytes] = {}

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, key: int) -> int: ...
    @overload
    def __getitem__(self, key: slice) -> bytes: ...
    def __getitem__(self, key: int | slice) -> int | bytes:
        if type(key) is int:
            if not 0 <= key < self._size:
                raise IndexError("past the end of the file")
            index = key >> self.PAGE_BITS
            page = self._pages.get(index)
            if page is None:
                page = self._pages[index] = os.pread(self._fd, 1 << self.PAGE_BITS,
                                                     index << self.PAGE_BITS)
            return page[key & ((1 << self.PAGE_BITS) - 1)]
        if not isinstance(key, slice) or key.step is not None or not (
                0 <= key.start <= key.stop <= self._size):
            raise IndexError("only in-file slices are read")
        data = os.pread(self._fd, key.stop - key.start, key.start)
        if len(data) != key.stop - key.start:
            raise IndexError("the file ended early")
        return data
