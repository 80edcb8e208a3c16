"""Incremental TWS API frame scanner for one direction of a relayed connection.

Why its own scanner and not the simulator's ``_read_frame``: a relay must hand bytes on as soon as
a frame is complete and never lose or reorder one, whatever arrives. So the scanner works on
chunks, returns the exact bytes of every complete frame (to forward) together with the frame
payloads (to decode), and keeps only an incomplete tail. Input that cannot be framed (a wrong
prefix, a length beyond :data:`simulator.wire.MAX_FRAME`) switches the direction to *opaque*:
everything from there on is relayed as it comes and counted, never dropped.
"""

from __future__ import annotations

import struct

from simulator.wire import MAX_FRAME

API_PREFIX = b"API\0"
_LEN = struct.Struct(">I")


class FrameScanner:
    """Splits one direction's byte stream into frames; ``expect_prefix`` for the bot's side."""

    __slots__ = ("_buf", "_prefix_pending", "opaque", "opaque_bytes", "opaque_reason")

    def __init__(self, *, expect_prefix: bool) -> None:
        self._buf = b""
        self._prefix_pending = expect_prefix
        self.opaque = False
        self.opaque_reason = ""
        self.opaque_bytes = 0

    def feed(self, chunk: bytes) -> tuple[bytes, bytes, list[bytes], bytes]:
        """Add ``chunk``; return ``(lead, frames, payloads, tail)`` to forward in that order.

        ``lead`` is the non-frame bytes before the frames (the ``API\\0`` prefix, or opaque bytes),
        ``frames`` the exact bytes of the complete frames, ``payloads`` their payloads in order,
        ``tail`` opaque bytes after them. ``lead + frames + tail`` is always a prefix of what has
        been fed and not yet returned; the rest is an incomplete frame kept for the next chunk.
        """
        if self.opaque:
            self.opaque_bytes += len(chunk)
            return chunk, b"", [], b""
        buf = self._buf + chunk if self._buf else chunk
        lead = b""
        if self._prefix_pending:
            if len(buf) < 4:
                if not API_PREFIX.startswith(buf):
                    return self._go_opaque(buf, "bad_prefix"), b"", [], b""
                self._buf = buf
                return b"", b"", [], b""
            if buf[:4] != API_PREFIX:
                return self._go_opaque(buf, "bad_prefix"), b"", [], b""
            lead, buf = buf[:4], buf[4:]
            self._prefix_pending = False
        payloads: list[bytes] = []
        pos, end = 0, len(buf)
        unpack = _LEN.unpack_from
        while end - pos >= 4:
            (size,) = unpack(buf, pos)
            if size > MAX_FRAME:
                return lead, buf[:pos], payloads, self._go_opaque(buf[pos:], "oversized_frame")
            stop = pos + 4 + size
            if stop > end:
                break
            payloads.append(buf[pos + 4 : stop])
            pos = stop
        self._buf = buf[pos:] if pos < end else b""
        return lead, (buf[:pos] if pos < end else buf), payloads, b""

    def pending(self) -> bytes:
        """The incomplete tail not yet forwarded (flushed as-is when the sender goes away)."""
        tail, self._buf = self._buf, b""
        return tail

    def _go_opaque(self, data: bytes, reason: str) -> bytes:
        self.opaque = True
        self.opaque_reason = reason
        self.opaque_bytes += len(data)
        self._buf = b""
        return data


def frame(payload: bytes) -> bytes:
    """Frame a payload exactly as the sender did (4-byte big-endian length)."""
    return _LEN.pack(len(payload)) + payload
