"""One payload framing for device plugins: numbered byte sections, their bounds checked once.

A plugin's payload (what ``export`` returns and ``import_model`` reads back, inside the core's
blob container) is usually a JSON description plus a few raw byte runs: a serialized graph,
weights, kernel source. This module frames them so that each plugin does not write (and get
wrong) its own lengths and offsets. Layout, all integers little-endian::

    section 0 | padding | section 1 | padding | ... | section n-1 | padding | table | trailer
    table   = n x (offset uint64, length uint64), offsets from the frame's first byte
    trailer = kind (8 bytes) | version (uint32) | flags (uint32) | n (uint32) | b"EMFRAME\\0"

Section 0 starts at the frame's first byte, so a backend that reads its own format from the start
of a buffer and ignores what follows (onnxruntime's ORT format does) can be handed the whole
payload without a copy. Every later section starts on a multiple of ``alignment`` bytes, so that
arrays viewed in place (``numpy.frombuffer``) are aligned. ``kind``, ``version`` and ``flags``
belong to the plugin: its format's name, its version, and bits such as "encrypted".

:func:`read_frame` is total over untrusted bytes: anything but a frame of the expected kind,
version, known flags, section count and section sizes raises :class:`ember.errors.BlobFormatError`;
sections are views into the input, never copies, and never overlap.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple, cast

from ember.errors import BlobFormatError

__all__ = ["MAX_SECTIONS", "Frame", "read_frame", "write_frame"]

_MAGIC = b"EMFRAME\0"
_TRAILER = struct.Struct("<8sIII8s")  # kind, version, flags, count, magic
_ENTRY = struct.Struct("<QQ")  # offset, length
#: A frame holds at most this many sections (payloads use a handful).
MAX_SECTIONS = 256


class Frame(NamedTuple):
    """A frame read back: the plugin's ``flags``, and its ``sections`` as views into the input
    (``offsets[i]`` is where section ``i`` starts in it)."""

    flags: int
    sections: tuple[memoryview, ...]
    offsets: tuple[int, ...]


Bytes = bytes | bytearray | memoryview


def write_frame(kind: bytes, version: int, sections: Sequence[Bytes | Sequence[Bytes]], *,
                flags: int = 0, alignment: int = 64) -> bytes:
    """Frame ``sections`` as a payload of ``kind`` (8 bytes). A section may be given as a list of
    byte strings, its parts: everything is joined once, with no other copy."""
    if len(kind) != 8 or not 0 < len(sections) <= MAX_SECTIONS or alignment < 1:
        raise ValueError("a frame needs an 8-byte kind, 1 to 256 sections and alignment >= 1")
    parts: list[Bytes] = []
    table = []
    offset = 0
    for index, section in enumerate(sections):
        if index:
            padding = -offset % alignment
            parts.append(bytes(padding))
            offset += padding
        pieces = (cast("list[Bytes]", list(section)) if isinstance(section, list | tuple)
                  else [cast("Bytes", section)])
        size = sum(memoryview(piece).nbytes for piece in pieces)
        parts += pieces
        table.append(_ENTRY.pack(offset, size))
        offset += size
    parts.append(bytes(-offset % 8))  # the table itself starts aligned
    return b"".join([*parts, *table, _TRAILER.pack(kind, version, flags, len(sections), _MAGIC)])


def read_frame(data: bytes | bytearray | memoryview, kind: bytes, version: int, *, sections: int,
               known_flags: int = 0, max_sizes: Sequence[int] | None = None,
               what: str = "payload") -> Frame:
    """The frame in ``data``: of this ``kind`` and ``version``, with exactly ``sections`` sections,
    section ``i`` at most ``max_sizes[i]`` bytes, and no flag outside ``known_flags``.

    :raises BlobFormatError: naming ``what`` and the first thing wrong.
    """
    view = memoryview(data).cast("B")
    size = view.nbytes
    if size < _TRAILER.size:
        raise BlobFormatError(f"{what} is too short to be one")
    trailer = _TRAILER.unpack_from(view, size - _TRAILER.size)
    found_kind, found_version, flags, count, magic = trailer
    if magic != _MAGIC or found_kind != kind:
        raise BlobFormatError(f"not a {what} (wrong magic bytes)")
    if found_version != version:
        raise BlobFormatError(f"{what} format {found_version}; this plugin reads {version}")
    if flags & ~known_flags:
        raise BlobFormatError(f"{what} has unknown flags {flags:#x}")
    if count != sections:
        raise BlobFormatError(f"{what} has {count} sections, not {sections}")
    table_start = size - _TRAILER.size - count * _ENTRY.size
    if table_start < 0:
        raise BlobFormatError(f"damaged {what}: its section table runs past its start")
    views, offsets = [], []
    end = 0
    for index in range(count):
        offset, length = _ENTRY.unpack_from(view, table_start + index * _ENTRY.size)
        if offset < end or length > table_start - offset or (index == 0 and offset != 0):
            raise BlobFormatError(f"damaged {what}: section {index} is out of bounds")
        if max_sizes is not None and length > max_sizes[index]:
            raise BlobFormatError(f"{what}: section {index} has {length} bytes, more than "
                                  f"{max_sizes[index]}")
        views.append(view[offset:offset + length])
        offsets.append(offset)
        end = offset + length
    return Frame(flags, tuple(views), tuple(offsets))
