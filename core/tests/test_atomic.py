"""ember.store.atomic: files published whole, in pieces the disk takes quickly."""

from __future__ import annotations

import os

import numpy as np

from ember.store import atomic
from ember.store.atomic import TEMP_PREFIX, background, write_atomically


def test_large_chunks_of_any_buffer_type_are_written_whole_and_in_order(tmp_path):
    piece = atomic._WRITE_PIECE
    head = b"header"
    big = os.urandom(2 * piece + 12345)  # three pieces, the last a partial one
    floats = np.arange(piece // 4 + 3, dtype=np.float32)  # a buffer of another item type
    tail = bytearray(b"tag" * 11)
    target = tmp_path / "entry.blob"
    write_atomically(target, head, memoryview(big), memoryview(floats), tail)
    background.wait()  # the fsync
    assert target.read_bytes() == head + big + floats.tobytes() + bytes(tail)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_an_empty_file_is_published_too(tmp_path):
    write_atomically(tmp_path / "empty", b"", memoryview(b""))
    assert (tmp_path / "empty").read_bytes() == b""
