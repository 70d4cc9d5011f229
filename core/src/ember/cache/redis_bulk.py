"""GET replies read from the socket straight into one buffer: the remote tier's large reads.

redis-py hands each reply back as a new ``bytes`` object: a 12.6 MB entry in 4 MB chunks is copied
once into those objects and once more into the buffer the plugin reads, and every page of each is
a fresh page fault. Here the GET commands of all chunks are pipelined on one of redis-py's
connections (which did the connecting, authentication, database selection and TLS), and each bulk
reply is received with ``recv_into`` at its place in the caller's buffer: the kernel copies it
there, once. ``on_piece`` is called as each piece of at most PIECE bytes lands, so the caller
verifies the entry while the rest is still arriving (with whole chunks, a whole chunk would be
left to verify after the last byte: the start would wait for it).

Only RESP bulk strings and nil are expected; anything else (an error reply, a foreign type)
raises :class:`BulkReadError` and the connection is dropped, never returned out of step to the
pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

_LINE_MAX = 64
PIECE = 1 << 20


class BulkReadError(Exception):
    """A reply that is not a bulk string or nil, or one longer than its place in the buffer."""


def get_into(client: Any, names: Sequence[str], buffer: memoryview,
             on_piece: Callable[[int, int], None]) -> int | None:
    """GET every key of ``names`` into consecutive places of ``buffer``.

    Calls ``on_piece(start, end)`` for consecutive pieces of each chunk (at most PIECE bytes) as
    they land in the buffer. Returns the number of bytes written, or None when one key is missing
    (nil) or ``buffer`` is too small.

    :raises BulkReadError: for an unexpected reply; redis-py's errors for a failing connection.
    """
    pool = client.connection_pool
    try:
        connection = pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants the command's name
        connection = pool.get_connection("GET")
    in_step = False
    try:
        connection.send_packed_command(connection.pack_commands([("GET", n) for n in names]))
        # redis-py exposes no public handle on the socket; its replies are parsed into one
        # Python bytes per value, and a chunked blob must land in one preallocated buffer.
        reader = _Reader(connection._sock)
        offset, missing = 0, False
        for _name in names:
            length = reader.bulk_length()
            if length is None or missing or offset + length > buffer.nbytes:
                missing = True
                reader.skip(length)  # read the rest, to stay in step
                continue
            end = offset + length
            for start in range(offset, end, PIECE):
                reader.read_into_raw(buffer[start:min(start + PIECE, end)])
                on_piece(start, min(start + PIECE, end))
            reader.end_of_bulk()
            offset = end
        in_step = not reader.pending
        return None if missing else offset
    finally:
        if not in_step:
            connection.disconnect()
        pool.release(connection)


class _Reader:
    """Reads RESP from a socket: lines into a small buffer, payloads into the caller's."""

    def __init__(self, sock: Any) -> None:
        if sock is None:
            raise BulkReadError("the connection has no socket")
        self._sock = sock
        self._buffered = b""

    @property
    def pending(self) -> bool:
        return bool(self._buffered)

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffered:
            if len(self._buffered) > _LINE_MAX:
                raise BulkReadError("a reply line is too long")
            data = self._sock.recv(_LINE_MAX)
            if not data:
                raise ConnectionError("the server closed the connection")
            self._buffered += data
        line, _, self._buffered = self._buffered.partition(b"\r\n")
        return line

    def bulk_length(self) -> int | None:
        line = self._line()
        if line == b"$-1" or line == b"_":  # nil, in RESP2 and RESP3
            return None
        if not line.startswith(b"$") or not line[1:].isdigit():
            raise BulkReadError(f"unexpected reply {line[:32]!r}")
        return int(line[1:])

    def read_into(self, target: memoryview) -> None:
        """The payload of a bulk reply whose length was ``target``'s, and its CRLF."""
        self.read_into_raw(target)
        self.end_of_bulk()

    def end_of_bulk(self) -> None:
        """The CRLF after a bulk reply's payload."""
        if self._line() != b"":
            raise BulkReadError("a bulk reply is longer than it said")

    def skip(self, length: int | None) -> None:
        """Read and drop a bulk reply's payload (nothing for nil)."""
        if length is None:
            return
        scratch = memoryview(bytearray(min(length, 1 << 20)))
        while length > scratch.nbytes:
            self.read_into_raw(scratch)
            length -= scratch.nbytes
        self.read_into(scratch[:length])

    def read_into_raw(self, target: memoryview) -> None:
        filled = min(len(self._buffered), target.nbytes)
        target[:filled] = self._buffered[:filled]
        self._buffered = self._buffered[filled:]
        while filled < target.nbytes:
            received = self._sock.recv_into(target[filled:])
            if not received:
                raise ConnectionError("the server closed the connection")
            filled += received
