"""Decodes a copy of the relayed frames into what the bot experiences (:mod:`proxy.stats`).

Runs after each batch has been written on (see :class:`proxy.relay.RelayHooks.observe`), so
decoding never delays a frame. It reads only the first fields it needs (``bytes.split`` with a
limit) and looks messages up by their raw id, keeping request ids as bytes: the common case, a
tick, costs one split and two dict look-ups. Field positions are those of the TWS protocol notes
(text protocol up to server version 178; message ids without a version field noted there).
From server version 201 on the message id is a 4-byte integer and ids above 200 carry protobuf:
those are counted as undecoded and left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from proxy import protowire
from proxy.errors import ORDER_REJECTS, error_class
from proxy.relay import TO_BOT, Connection
from proxy.stats import ClientStats, ProxyTotals, SymbolStats

PROTOBUF_MIN_SERVER_VERSION = 201
PROTOBUF_MSG_ID = 200
#: From this server version on, error messages carry no version field (and end with the error time).
ERROR_WITHOUT_VERSION = 194
UNKNOWN_CLIENT = "unknown"
#: Order statuses after which an order no longer works.
TERMINAL = frozenset({b"Filled", b"Cancelled", b"ApiCancelled", b"Inactive"})


@dataclass
class OrderTrack:
    """One order of the bot, from placeOrder on."""

    placed: float
    acked: bool = False
    filled: bool = False
    fill_seen: bool = False
    status: bytes = b""

    @property
    def working(self) -> bool:
        return self.status not in TERMINAL


@dataclass
class ConnState:
    """What the decoder keeps per connection."""

    stats: ClientStats
    registered: bool = False
    pending: dict[bytes, tuple[str, float]] = field(default_factory=dict)  # req key -> (kind, since)
    subs: dict[bytes, SymbolStats] = field(default_factory=dict)  # market data req id -> symbol
    orders: dict[bytes, OrderTrack] = field(default_factory=dict)


# request message id -> (kind, index of the request id or -1 for requests without one)
REQUESTS: dict[bytes, tuple[str, int]] = {
    b"9": ("contract_details", 2),
    b"20": ("historical_data", 1),
    b"61": ("positions", -1),
    b"62": ("account", 2),
    b"76": ("account", 2),
    b"7": ("executions", 2),
}
# answer message id -> index of the request id (or a fixed key for answers without one)
ANSWERS: dict[bytes, int | bytes] = {
    b"10": 1,
    b"52": 2,
    b"17": 1,
    b"90": 1,
    b"63": 2,
    b"64": 2,
    b"73": 2,
    b"74": 2,
    b"11": 1,
    b"55": 2,
    b"61": b"positions",
    b"62": b"positions",
    b"6": b"account_updates",
    b"7": b"account_updates",
    b"54": b"account_updates",
}
TICKS = frozenset({b"1", b"2", b"45", b"46"})
CANCELS: dict[bytes, int] = {b"2": 2, b"25": 2, b"63": 2, b"77": 2, b"64": -1}


class Observer:
    """Turns relayed frames into :class:`ClientStats` per client id."""

    def __init__(self, names: dict[int, str] | None = None) -> None:
        self.names = names or {}
        self.clients: dict[str, ClientStats] = {}
        self.totals = ProxyTotals()
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
    def client(self, client_id: str) -> ClientStats:
        stats = self.clients.get(client_id)
        if stats is None:
            stats = self.clients[client_id] = ClientStats(client_id)
        return stats

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
        if direction == TO_BOT:
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
                        if not self._protobuf(conn, st, direction, mid, payload[4:], now):
                            self.totals.undecoded[(direction, "protobuf")] += 1
                        continue
                    payload = str(mid).encode() + b"\0" + payload[4:]
                cut = payload.find(b"\0")
                mid_b = payload[:cut] if cut >= 0 else payload
                if direction == TO_BOT:
                    self._answer(st, mid_b, payload, now)
                else:
                    self._request(st, mid_b, payload, now)
                handler = handlers.get(mid_b)
                if handler is not None:
                    handler(conn, st, payload, now)
            except (ValueError, IndexError):
                self.totals.undecoded[(direction, "malformed")] += 1

    def _protobuf(self, conn: Connection, st: ConnState, direction: str, mid: int, body: bytes, now: float) -> bool:
        """Decode the protobuf messages the proxy needs (client id, accounts, errors); False for the others."""
        if direction != TO_BOT:
            if mid == protowire.START_API:
                self._start_api(conn, st, b"71\x002\0" + str(protowire.start_api_client_id(body)).encode() + b"\0", now)
                return True
            return False
        if mid == protowire.MANAGED_ACCOUNTS:
            conn.accounts = protowire.managed_accounts(body)
            return True
        if mid == protowire.ERROR_MESSAGE:
            req_id, code, text = protowire.error_message(body)
            fields = [b"4", b"", str(req_id).encode(), str(code).encode(), text.encode(), b""]
            self._error(conn, st, b"\0".join(fields), now, version_field=True)
            return True
        return False

    def _server_hello(self, conn: Connection, st: ConnState, payload: bytes) -> None:
        fields = payload.split(b"\0")
        try:
            conn.server_version = int(fields[0])
        except ValueError:
            self.totals.undecoded[(TO_BOT, "malformed")] += 1
            conn.server_version = -1  # not the TWS API: stop trying
            return
        st.stats.server_version = conn.server_version

    # bot -> Gateway ---------------------------------------------------------
    def _request(self, st: ConnState, mid: bytes, payload: bytes, now: float) -> None:
        req = REQUESTS.get(mid)
        if req is not None:
            kind, idx = req
            key = payload.split(b"\0", idx + 1)[idx] if idx >= 0 else kind.encode()
            st.pending[key] = (kind, now)
            st.stats.requests[kind] += 1
            return
        cancel = CANCELS.get(mid)
        if cancel is not None:
            key = payload.split(b"\0", cancel + 1)[cancel] if cancel >= 0 else b"positions"
            st.pending.pop(key, None)
            if mid == b"2":
                sub = st.subs.pop(key, None)
                if sub is not None:
                    sub.subscriptions -= 1

    def early_start_api(self, conn: Connection, payloads: list[bytes]) -> None:
        """Learn the client id before the guard judges a batch that carries startApi and an order."""
        st: ConnState | None = conn.state.get("obs")
        if st is None or st.registered:
            return
        raw_ids = conn.server_version >= PROTOBUF_MIN_SERVER_VERSION
        for payload in payloads:
            if raw_ids and payload[:4] == b"\0\0\0\x47":  # 71 as a 4-byte id
                payload = b"71\0" + payload[4:]
            elif raw_ids and payload[:4] == protowire.START_API.to_bytes(4, "big"):
                payload = b"71\x002\0" + str(protowire.start_api_client_id(payload[4:])).encode() + b"\0"
            if payload.startswith(b"71\0"):
                try:
                    self._start_api(conn, st, payload, time.monotonic())
                except (ValueError, IndexError):
                    self.totals.undecoded[("to_gateway", "malformed")] += 1
                return

    def _start_api(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        if st.registered:
            return  # already learnt by early_start_api
        fields = payload.split(b"\0", 4)
        client_id = int(fields[2])
        conn.client_id = client_id
        stats = self.client(str(client_id))
        stats.connects += 1
        stats.live += 1
        stats.session_started = now
        stats.server_version = conn.server_version
        st.stats = stats
        st.registered = True

    def _req_mkt_data(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        f = payload.split(b"\0", 16)
        req_id, sec_type = f[2], f[5]
        symbol = (f[14] if sec_type in (b"OPT", b"FOP") and f[14] else f[4]) or b"conid:" + f[3]
        name = symbol.decode("utf-8", "backslashreplace")
        sub = st.stats.symbols.get(name)
        if sub is None:
            sub = st.stats.symbols[name] = SymbolStats(name)
        sub.subscriptions += 1
        old = st.subs.get(req_id)
        if old is not None:
            old.subscriptions -= 1
        st.subs[req_id] = sub
        st.pending[req_id] = ("market_data", now)
        st.stats.requests["market_data"] += 1

    def _req_account_updates(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        f = payload.split(b"\0", 4)
        if f[2] == b"1":
            st.pending[b"account_updates"] = ("account", now)
            st.stats.requests["account"] += 1

    def _place_order(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        order_id = payload.split(b"\0", 2)[1]
        track = st.orders.get(order_id)
        if track is not None and track.working:
            st.stats.modified += 1
            return
        st.orders[order_id] = OrderTrack(placed=now)
        st.stats.placed += 1

    # Gateway -> bot ---------------------------------------------------------
    def _answer(self, st: ConnState, mid: bytes, payload: bytes, now: float) -> None:
        if mid in TICKS:
            req_id = payload.split(b"\0", 3)[2]
            sub = st.subs.get(req_id)
            if sub is not None:
                sub.ticks += 1
                sub.last_tick = now
            if st.pending:
                self._resolve(st, req_id, now)
            return
        if not st.pending:
            return
        where = ANSWERS.get(mid)
        if where is None:
            return
        if isinstance(where, bytes):
            self._resolve(st, where, now)
        elif mid == b"10" and st.stats.server_version and st.stats.server_version < 164:
            self._resolve(st, payload.split(b"\0", 3)[2], now)  # a version field before the id
        else:
            self._resolve(st, payload.split(b"\0", where + 1)[where], now)

    def _resolve(self, st: ConnState, key: bytes, now: float) -> None:
        entry = st.pending.pop(key, None)
        if entry is not None:
            kind, since = entry
            st.stats.answered(kind, since, now)

    def _managed_accounts(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        text = payload.split(b"\0")[2].decode("utf-8", "backslashreplace")
        conn.accounts = [a.strip() for a in text.split(",") if a.strip()]

    def _error(
        self, conn: Connection, st: ConnState, payload: bytes, now: float, *, version_field: bool = False
    ) -> None:
        f = payload.split(b"\0", 6)
        if conn.server_version >= ERROR_WITHOUT_VERSION and not version_field:
            f.insert(1, b"")  # no version field from server version 194 on
        req_id, code_b = f[2], f[3]
        code = int(code_b)
        text = f[4].decode("utf-8", "backslashreplace") if len(f) > 4 else ""
        st.stats.errors[(code_b.decode(), error_class(code, text))] += 1
        if code == 326:
            st.stats.collisions += 1
            if st.registered:
                st.registered = False
                st.stats.live -= 1
                logger.warning("bot connection {}: client id {} already in use (326)", conn.peer, conn.client_id)
            return
        if 2100 <= code <= 2199:
            return
        self._resolve(st, req_id, now)
        track = st.orders.get(req_id)
        if track is not None and code in ORDER_REJECTS and track.working:
            track.status = b"Inactive"
            st.stats.rejected[code_b.decode()] += 1

    def _ack(self, st: ConnState, track: OrderTrack, now: float) -> None:
        track.acked = True
        st.stats.acknowledged += 1
        st.stats.ack_latency.observe(now - track.placed)

    def _open_order(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        track = st.orders.get(payload.split(b"\0", 2)[1])
        if track is not None and not track.acked:
            self._ack(st, track, now)

    def _order_status(self, conn: Connection, st: ConnState, payload: bytes, now: float) -> None:
        f = payload.split(b"\0", 4)
        track = st.orders.get(f[1])
        if track is None:
            return
        if not track.acked:
            self._ack(st, track, now)
        status, filled = f[2], f[3]
        if not track.fill_seen and filled not in (b"", b"0", b"0.0"):
            track.fill_seen = True
            st.stats.fill_latency.observe(now - track.placed)
        if status == track.status:
            return
        if status == b"Filled" and not track.filled:
            track.filled = True
            st.stats.filled += 1
        elif status in (b"Cancelled", b"ApiCancelled") and track.working:
            st.stats.cancelled += 1
        track.status = status
