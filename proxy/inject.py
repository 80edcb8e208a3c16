"""Frames the proxy itself writes to a bot: error messages (guard refusals, injected Gateway errors).

Encoded as the negotiated server version says a Gateway encodes them (field layout from the TWS
protocol notes and IBKR's client): a bot must not be able to tell them from the Gateway's own.
From server version 213 on (``MIN_SERVER_VER_PROTOBUF_REST_MESSAGES_3``, where IBKR's client takes
every server message as protobuf) that is IBKR's ErrorMessage; between 201 and 212 the text error
after a 4-byte id, which IBKR's client reads at any version.
"""

from __future__ import annotations

import struct
import time

from ibapi.server_versions import MIN_SERVER_VER_PROTOBUF_REST_MESSAGES_3

from proxy.frames import frame
from proxy.observer import ERROR_WITHOUT_VERSION, PROTOBUF_MIN_SERVER_VERSION, PROTOBUF_MSG_ID
from simulator import messages
from simulator.protobuf import message_class
from simulator.wire import fmt

ERROR_MSG_ID = 4


def error_payload(server_version: int, req_id: int, code: int, text: str) -> bytes:
    """The payload of one error message (``[4, 2, reqId, code, text, json]`` at server version 178)."""
    now_ms = int(time.time() * 1000)
    if server_version >= MIN_SERVER_VER_PROTOBUF_REST_MESSAGES_3:
        msg = message_class("ErrorMessage")(id=req_id, errorTime=now_ms, errorCode=code, errorMsg=text)
        return struct.pack(">I", ERROR_MSG_ID + PROTOBUF_MSG_ID) + msg.SerializeToString()
    if server_version >= ERROR_WITHOUT_VERSION:
        fields: list[object] = [req_id, code, text, "", now_ms]
    else:
        fields = messages.error(server_version, req_id, code, text)[1:]
    body = "".join(fmt(f) + "\0" for f in fields).encode("utf-8")
    if server_version >= PROTOBUF_MIN_SERVER_VERSION:
        return struct.pack(">I", ERROR_MSG_ID) + body
    return f"{ERROR_MSG_ID}\0".encode() + body


def error_frame(server_version: int, req_id: int, code: int, text: str) -> bytes:
    return frame(error_payload(server_version, req_id, code, text))
