"""TWS API wire format: length-prefixed frames of NUL-terminated text fields.

Kept free of any session state so the encoders can be unit-tested and reused by the
hostile-input tests, which build deliberately broken frames from the same primitives.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

#: Largest frame we accept from a client; anything bigger is treated as hostile.
MAX_FRAME = 16 * 1024 * 1024
#: IBKR's "unset double" marker, as real Gateways send it.
UNSET_DOUBLE_STR = "1.7976931348623157E308"
UNSET_INT_STR = "2147483647"


class ProtocolError(Exception):
    """The peer violated the framing rules; the connection must be closed."""


def fmt(value: Any) -> str:
    """Render one field the way TWS does: bools as 0/1, None as empty, floats without noise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(round(value, 8))
    return str(value)


def encode(fields: Iterable[Any]) -> bytes:
    """Frame one message: 4-byte big-endian length + NUL-terminated fields."""
    payload = "".join(fmt(f) + "\0" for f in fields).encode("utf-8")
    return struct.pack(">I", len(payload)) + payload


def frame_raw(payload: bytes) -> bytes:
    """Frame an already-encoded payload (used for the client hello's version string)."""
    return struct.pack(">I", len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """Decode a frame payload into its fields (the trailing empty element is dropped)."""
    text = payload.decode("utf-8", errors="backslashreplace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


class Fields:
    """Lenient accessor for a decoded client message.

    Clients format numbers with ``str()`` so a quantity may arrive as ``10`` or ``10.0`` and an unset
    value as an empty string; hostile clients send anything. Accessors never raise IndexError.
    """

    def __init__(self, fields: list[str]) -> None:
        self.f = fields

    def __len__(self) -> int:
        return len(self.f)

    def s(self, i: int, default: str = "") -> str:
        return self.f[i] if 0 <= i < len(self.f) else default

    def i(self, i: int, default: int = 0) -> int:
        v = self.s(i)
        if v == "":
            return default
        return int(float(v))

    def fl(self, i: int, default: float = 0.0) -> float:
        v = self.s(i)
        if v == "":
            return default
        x = float(v)
        if x >= 1.7e308:
            return default
        return x

    def b(self, i: int) -> bool:
        return self.s(i).strip().lower() in ("1", "true")
