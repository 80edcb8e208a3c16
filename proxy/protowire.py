"""Just enough of the protobuf wire format to read what the proxy needs at server versions above
200: the bot's client id (startApi), the Gateway's managedAccounts (the paper guard's accounts) and
its error messages.

Why not the protobuf package and IBKR's generated classes: they are a test dependency only, and
the proxy reads a few fields of three messages. Field numbers are those of IBKR's .proto files
(StartApiRequest: clientId = 1; ManagedAccounts: accountsList = 1; ErrorMessage: id = 1,
errorTime = 2, errorCode = 3, errorMsg = 4, advancedOrderRejectJson = 5).
"""

from __future__ import annotations

#: Message ids (text id + 200) the proxy decodes: from the Gateway, then from the bot.
MANAGED_ACCOUNTS = 215
ERROR_MESSAGE = 204
START_API = 271


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes) -> dict[int, int | bytes]:
    """Field number -> value (the last occurrence) of one message; nested messages stay bytes."""
    out: dict[int, int | bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out[number] = value - (1 << 64) if value >= 1 << 63 else value  # int32/int64 negatives
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            out[number] = data[pos : pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos > len(data):
        raise ValueError("truncated message")
    return out


def start_api_client_id(data: bytes) -> int:
    """StartApiRequest: clientId = 1."""
    value = fields(data).get(1, 0)
    if not isinstance(value, int):
        raise ValueError("StartApiRequest without a client id")
    return value


def managed_accounts(data: bytes) -> list[str]:
    value = fields(data).get(1, b"")
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else ""
    return [a.strip() for a in text.split(",") if a.strip()]


def error_message(data: bytes) -> tuple[int, int, str]:
    """(request id, code, text) of an ErrorMessage."""
    f = fields(data)
    req_id, code, text = f.get(1, -1), f.get(3, 0), f.get(4, b"")
    return (
        req_id if isinstance(req_id, int) else -1,
        code if isinstance(code, int) else 0,
        text.decode("utf-8", "replace") if isinstance(text, bytes) else "",
    )
