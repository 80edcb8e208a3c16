"""Decodes a copy of the relayed frames into what the bot experiences (:mod:`proxy.measure`).

Runs after each batch has been written on (see :class:`proxy.relay.RelayHooks.observe`), so
decoding never delays a frame. This module decodes the text protocol and hands protobuf messages
to :mod:`proxy.protodecode`; both feed the same events of :class:`proxy.measure.Measure`. Text
decoding reads only the first fields it needs (``bytes.split`` with a limit) and looks messages up
by their raw id, keeping request ids as bytes: the common case, a tick, costs one split and two
dict look-ups. Field positions are those of the TWS protocol notes (text protocol up to server
version 178; message ids without a version field noted there). From server version 201 on the
message id is a 4-byte integer; ids above 200 carry protobuf.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from proxy import protodecode
from proxy.measure import (
    ACCOUNT_UPDATES,
    ANSWERS_WITH_ID,
    ANSWERS_WITHOUT_ID,
    CANCELS,
    POSITIONS,
    REQUEST_KINDS,
    TICKS,
    UNKNOWN_CLIENT,
    ConnState,
    Measure,
    symbol_name,
)
from proxy.relay import TO_BOT, Connection

__all__ = ["UNKNOWN_CLIENT", "ConnState", "Observer"]

PROTOBUF_MIN_SERVER_VERSION = protodecode.MIN_SERVER_VER_PROTOBUF
PROTOBUF_MSG_ID = protodecode.PROTOBUF_MSG_ID
#: From this server version on, error messages carry no version field (and end with the error time).
ERROR_WITHOUT_VERSION = 194

# Where the text layout carries the request id (field index; -1: none), for measure's ids.
_REQUEST_ID_AT = {9: 2, 20: 1, 61: -1, 62: 2, 76: 2, 7: 2}
_ANSWER_ID_AT = {10: 1, 52: 2, 17: 1, 108: 1, 90: 1, 63: 2, 64: 2, 73: 2, 74: 2, 11: 1, 55: 2}
_CANCEL_ID_AT = {2: 2, 25: 2, 63: 2, 77: 2, 64: -1}


def _b(mid: int) -> bytes:
    return str(mid).encode()


#: request message id -> (kind, index of the request id or -1 for requests without one)
REQUESTS: dict[bytes, tuple[str, int]] = {_b(m): (kind, _REQUEST_ID_AT[m]) for m, kind in REQUEST_KINDS.items()}
#: answer message id -> index of the request id (or a fixed key for answers without one)
ANSWERS: dict[bytes, int | bytes] = {
    **{_b(m): _ANSWER_ID_AT[m] for m in ANSWERS_WITH_ID},
    **{_b(m): key for m, key in ANSWERS_WITHOUT_ID.items()},
}
TEXT_TICKS = frozenset(_b(m) for m in TICKS)
#: cancel message id -> (index of the request id or -1, whether it ends a market data subscription)
TEXT_CANCELS: dict[bytes, tuple[int, bool]] = {_b(m): (_CANCEL_ID_AT[m], md) for m, md in CANCELS.items()}


class Observer(Measure):
    """Turns relayed frames into the measurements of :class:`Measure`, per client id."""

    def __init__(self, names: dict[int, str] | None = None) -> None:
        super().__init__(names)
        self.connections: dict[int, Connection] = {}
        self._bot: dict[bytes, Callable[[Connection, ConnState, bytes, float], None]] = {
            b"71": self._start_api,
            b"1": self._req_mkt_data,
            b"3": self._place_order,
            b"6": self._req_account_updates,
        }
        self._gw: dict[bytes, Callable[[Connection, ConnState, bytes, float], None]] = {
            b"4": self._error,
            b"3": self._order_status,
            b"5": self._open_order,
            b"15": self._managed_accounts,
        }

    # ------------------------------------------------------------- lifecycle
    def opened(self, conn: Connection) -> None:
        conn.state["obs"] = ConnState(self.client(UNKNOWN_CLIENT))
        self.connections[conn.id] = conn

    def closed(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        st: ConnState | None = conn.state.get("obs")
        if st is None:
            return
        st.stats.disconnects[conn.closed_by or "proxy"] += 1
        if st.registered:
            st.stats.live -= 1
        for sub in st.subs.values():
            sub.subscriptions -= 1
        st.subs.clear()
        st.pending.clear()

    # ------------------------------------------------------------- decoding
    def observe(self, conn: Connection, direction: str, payloads: list[bytes]) -> None:
        st: ConnState = conn.state["obs"]
        now = time.monotonic()
        self.totals.frames[direction] += len(payloads)
        to_bot = direction == TO_BOT
        if to_bot:
            st.stats.received += len(payloads)
            handlers = self._gw
            if not conn.server_version:
                self._server_hello(conn, st, payloads[0])
                payloads = payloads[1:]
        else:
            st.stats.sent += len(payloads)
            st.stats.rate.add(len(payloads), now)
            handlers = self._bot
        raw_ids = conn.server_version >= PROTOBUF_MIN_SERVER_VERSION
        for payload in payloads:
            try:
                if raw_ids:
                    if len(payload) < 4:
                        continue
                    mid = int.from_bytes(payload[:4], "big")
                    if mid > PROTOBUF_MSG_ID:
                        if not protodecode.decode(self, conn, st, to_bot, mid, payload[4:], now):
                            self.totals.undecoded[(direction, "protobuf")] += 1
                        continue
                    payload = str(mid).encode() + b"\0" + payload[4:]
                cut = payload.find(b"\0")
                mid_b = payload[:cut] if cut >= 0 else payload
                if to_bot:
                    self._answer(st, mid_b, payload, now)
                else:
                    self._request(st, mid_b, payload, now)
                handler = handlers.get(mid_b)
                if handler is not None:
                    handler(conn, st, payload, now)
            except (ValueError, IndexError, protodecode.DecodeError):
                self.totals.undecoded[(direction, "malformed")] += 1

    def tick_request(self, conn: Connection, payload: bytes) -> bytes | None:
        """The request id of a tick to the bot (text or protobuf), None for any other message."""
        if conn.server_version >= PROTOBUF_MIN_SERVER_VERSION:
            if len(payload) < 4:
                return None
            mid = int.from_bytes(payload[:4], "big")
            if mid > PROTOBUF_MSG_ID:
                try:
                    return protodecode.tick_request(mid, payload[4:])
                except protodecode.DecodeError:
                    return None
            payload = str(mid).encode() + b"\0" + payload[4:]
        cut = payload.find(b"\0")
        if payload[:cut] not in TEXT_TICKS:
            return None
        f = payload.split(b"\0", 3)
        return f[2] if len(f) > 2 else None

    def _server_hello(self, conn: Connection, st: ConnState, payload: bytes) -> None:
        fields = payload.split(b"\0")
        try:
            conn.server_version = int(fields[0])
        except ValueError:
            self.totals.undecoded[(TO_BOT, "malformed")] += 1
            conn.server_version = -1  # not the TWS API: stop trying
            return
        st.stats.server_version = conn.server_version

    def early_start_api(self, conn: Connection, payloads: list[bytes]) -> None:
        """Learn the client id before the guard judges a batch that carries startApi and an order."""
        st: ConnState | None = conn.state.get("obs")
        if st is None or st.registered:
            return
        raw_ids = conn.server_version >= PROTOBUF_MIN_SERVER_VERSION
        now = time.monotonic()
        for payload in payloads:
            try:
                if raw_ids and payload[:4] == _START_API_PB:
                    protodecode.decode(self, conn, st, False, protodecode.START_API + PROTOBUF_MSG_ID, payload[4:], now)
                    return
                if raw_ids and payload[:4] == _START_API_RAW:
                    payload = b"71\0" + payload[4:]
                if payload.startswith(b"71\0"):
                    self._start_api(conn, st, payload, now)
                    return
            except (ValueError, IndexError, protodecode.DecodeError):
                self.totals.undecoded[("to_gateway", "malformed")] += 1
                return

    # bot -> Gateway (text) -------------------------------------------------
    def _request(self, st: ConnState, mid: bytes, payload: bytes, now: float) -> None:
        req = REQUESTS.get(mid)
        if req is not None:
            kind, idx = req
            self.requested(st, kind, payload.split(b"\0", idx + 1)[idx] if idx >= 0 else POSITIONS, now)
            return
        cancel = TEXT_CANCELS.get(mid)
        if cancel is not None:
            idx, market_data = cancel
            self.withdrawn(st, payload.split(b"\0", idx + 1)[idx] if idx >= 0 else POSITIONS, market_data=market_data)

    def _start_api(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        self.started(conn, st, int(payload.split(b"\0", 4)[2]), now)

    def _req_mkt_data(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        f = payload.split(b"\0", 16)
        self.subscribed(st, f[2], symbol_name(f[5], f[4], f[14], f[3]), now)

    def _req_account_updates(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        if payload.split(b"\0", 4)[2] == b"1":
            self.requested(st, "account", ACCOUNT_UPDATES, now)

    def _place_order(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        self.order_placed(st, payload.split(b"\0", 2)[1], now)

    # Gateway -> bot (text) -------------------------------------------------
    def _answer(self, st: ConnState, mid: bytes, payload: bytes, now: float) -> None:
        if mid in TEXT_TICKS:
            self.tick(st, payload.split(b"\0", 3)[2], now)
            return
        if not st.pending:
            return
        where = ANSWERS.get(mid)
        if where is None:
            return
        if isinstance(where, bytes):
            self.answered(st, where, now)
        elif mid == b"10" and st.stats.server_version and st.stats.server_version < 164:
            self.answered(st, payload.split(b"\0", 3)[2], now)  # a version field before the id
        else:
            self.answered(st, payload.split(b"\0", where + 1)[where], now)

    def _managed_accounts(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        self.accounts(conn, payload.split(b"\0")[2].decode("utf-8", "backslashreplace"))

    def _error(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        f = payload.split(b"\0", 6)
        if conn.server_version >= ERROR_WITHOUT_VERSION:
            f.insert(1, b"")  # no version field from server version 194 on
        text = f[4].decode("utf-8", "backslashreplace") if len(f) > 4 else ""
        self.error(conn, st, f[2], int(f[3]), text, now)

    def _open_order(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        self.order_open(st, payload.split(b"\0", 2)[1], now)

    def _order_status(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        f = payload.split(b"\0", 4)
        self.order_status(st, f[1], f[2], f[3], now)


_START_API_RAW = protodecode.START_API.to_bytes(4, "big")
_START_API_PB = (protodecode.START_API + PROTOBUF_MSG_ID).to_bytes(4, "big")
