"""Frames the proxy itself writes to a bot: error messages (guard refusals, injected Gateway errors).

Encoded as the negotiated server version says a Gateway encodes them (field layout from the TWS
protocol notes and IBKR's client): a bot must not be able to tell them from the Gateway's own.
"""

from __future__ import annotations

import struct
import time

from proxy.frames import frame
from proxy.observer import ERROR_WITHOUT_VERSION, PROTOBUF_MIN_SERVER_VERSION
from simulator import messages
from simulator.wire import fmt

ERROR_MSG_ID = 4


def error_payload(server_version: int, req_id: int, code: int, text: str) -> bytes:
    """The payload of one error message (``[4, 2, reqId, code, text, json]`` at server version 178)."""
    if server_version >= ERROR_WITHOUT_VERSION:
        fields: list[object] = [req_id, code, text, "", int(time.time() * 1000)]
    else:
        fields = messages.error(server_version, req_id, code, text)[1:]
    body = "".join(fmt(f) + "\0" for f in fields).encode("utf-8")
    if server_version >= PROTOBUF_MIN_SERVER_VERSION:
        return struct.pack(">I", ERROR_MSG_ID) + body
    return f"{ERROR_MSG_ID}\0".encode() + body


def error_frame(server_version: int, req_id: int, code: int, text: str) -> bytes:
    return frame(error_payload(server_version, req_id, code, text))
