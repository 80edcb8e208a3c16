"""What the bot experiences, from decoded events: one implementation of each measurement.

Why apart from the decoders: a bot speaks the text protocol (server versions up to 178, and the
text messages that still follow a 4-byte id above 200) or IBKR's protobuf messages (above 200).
Both decoders (:mod:`proxy.observer` for text, :mod:`proxy.protodecode` for protobuf) turn a
message into the same event here (a tick for a request id, an order status, an error code), so
quote freshness, request latencies, the order lifecycle and errors by code are measured the same
way whatever the bot's version. Request and order ids are kept as the ASCII digits of the id
(``b"42"``), the form the text protocol carries them in; the protobuf decoder writes them so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loguru import logger

from proxy.errors import ORDER_REJECTS, error_class
from proxy.relay import Connection
from proxy.stats import ClientStats, ProxyTotals, SymbolStats

UNKNOWN_CLIENT = "unknown"
#: Order statuses after which an order no longer works.
TERMINAL = frozenset({b"Filled", b"Cancelled", b"ApiCancelled", b"Inactive"})
#: Keys of requests answered by messages that carry no request id (one such request at a time).
POSITIONS = b"positions"
ACCOUNT_UPDATES = b"account_updates"

# What each decoder reads, by text message id (a protobuf message's id is this + 200); each decoder
# says where it finds the request id in its own encoding, for exactly these ids.
#: Timed requests -> kind (reqPositions, 61, has no request id: keyed POSITIONS).
REQUEST_KINDS: dict[int, str] = {
    9: "contract_details",
    20: "historical_data",
    61: "positions",
    62: "account",
    76: "account",
    7: "executions",
}
#: Cancels of a request -> whether it ends a market data subscription (cancelPositions, 64: no id).
CANCELS: dict[int, bool] = {2: True, 25: False, 63: False, 77: False, 64: False}
#: Ticks of a market data request: tickPrice, tickSize, tickGeneric, tickString.
TICKS: frozenset[int] = frozenset({1, 2, 45, 46})
#: Answers that carry their request's id: contract details (+end), historical data (+end, update),
#: account summary (+end), account updates multi (+end), executions (+end).
ANSWERS_WITH_ID: frozenset[int] = frozenset({10, 52, 17, 108, 90, 63, 64, 73, 74, 11, 55})
#: Answers without one: position, positionEnd; accountValue, portfolioValue, accountDownloadEnd.
ANSWERS_WITHOUT_ID: dict[int, bytes] = {
    61: POSITIONS,
    62: POSITIONS,
    6: ACCOUNT_UPDATES,
    7: ACCOUNT_UPDATES,
    54: ACCOUNT_UPDATES,
}


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
    """What the decoders keep per connection."""

    stats: ClientStats
    registered: bool = False
    pending: dict[bytes, tuple[str, float]] = field(default_factory=dict)  # req key -> (kind, since)
    subs: dict[bytes, SymbolStats] = field(default_factory=dict)  # market data req id -> symbol
    orders: dict[bytes, OrderTrack] = field(default_factory=dict)


def _some(quantity: bytes) -> bool:
    """A filled quantity above zero. Read as a number, as IBKR's client reads it (``Decimal``): a
    decimal string may write zero as ``0.0`` or ``0E-10``, and only a positive one is a fill."""
    try:
        return float(quantity) > 0
    except ValueError:
        return False


def symbol_name(sec_type: bytes, symbol: bytes, local_symbol: bytes, con_id: bytes) -> str:
    """The name a subscription is exported under: the local symbol for options (the contract
    itself, not its underlying), else the symbol, else the contract id."""
    name = (local_symbol if sec_type in (b"OPT", b"FOP") and local_symbol else symbol) or b"conid:" + con_id
    return name.decode("utf-8", "backslashreplace")


class Measure:
    """The measurements, per client id; the decoders call the event methods below."""

    def __init__(self, names: dict[int, str] | None = None) -> None:
        self.names = names or {}
        self.clients: dict[str, ClientStats] = {}
        self.totals = ProxyTotals()

    def client(self, client_id: str) -> ClientStats:
        stats = self.clients.get(client_id)
        if stats is None:
            stats = self.clients[client_id] = ClientStats(client_id)
        return stats

    # bot -> Gateway ---------------------------------------------------------
    def started(self, conn: Connection, st: ConnState, client_id: int, now: float) -> None:
        """startApi: the connection's client id (learnt once, maybe early for the guard)."""
        if st.registered:
            return
        conn.client_id = client_id
        stats = self.client(str(client_id))
        stats.connects += 1
        stats.live += 1
        stats.session_started = now
        stats.server_version = conn.server_version
        st.stats = stats
        st.registered = True

    def requested(self, st: ConnState, kind: str, key: bytes, now: float) -> None:
        """A request whose first answer is timed (``key``: its request id or a fixed key)."""
        st.pending[key] = (kind, now)
        st.stats.requests[kind] += 1

    def withdrawn(self, st: ConnState, key: bytes, *, market_data: bool = False) -> None:
        """The bot cancelled a request: it no longer waits for an answer (nor for ticks)."""
        st.pending.pop(key, None)
        if market_data:
            sub = st.subs.pop(key, None)
            if sub is not None:
                sub.subscriptions -= 1

    def subscribed(self, st: ConnState, req_id: bytes, name: str, now: float) -> None:
        """reqMktData: ticks for ``req_id`` count for symbol ``name`` (see :func:`symbol_name`)."""
        sub = st.stats.symbols.get(name)
        if sub is None:
            sub = st.stats.symbols[name] = SymbolStats(name)
        sub.subscriptions += 1
        old = st.subs.get(req_id)
        if old is not None:
            old.subscriptions -= 1
        st.subs[req_id] = sub
        self.requested(st, "market_data", req_id, now)

    def order_placed(self, st: ConnState, order_id: bytes, now: float) -> None:
        """placeOrder: a new order, or a modification of a working one."""
        track = st.orders.get(order_id)
        if track is not None and track.working:
            st.stats.modified += 1
            return
        st.orders[order_id] = OrderTrack(placed=now)
        st.stats.placed += 1

    # Gateway -> bot ---------------------------------------------------------
    def accounts(self, conn: Connection, accounts_list: str) -> None:
        """managedAccounts: the accounts the paper guard judges this connection's orders by."""
        conn.accounts = [a.strip() for a in accounts_list.split(",") if a.strip()]

    def tick(self, st: ConnState, req_id: bytes, now: float) -> None:
        """A tick of any kind for a market data request: the feed's freshness as the bot sees it."""
        sub = st.subs.get(req_id)
        if sub is not None:
            sub.ticks += 1
            sub.last_tick = now
        if st.pending:
            self.answered(st, req_id, now)

    def answered(self, st: ConnState, key: bytes, now: float) -> None:
        """An answer to request ``key``: the first one times the request."""
        entry = st.pending.pop(key, None)
        if entry is not None:
            kind, since = entry
            st.stats.answered(kind, since, now)

    def error(self, conn: Connection, st: ConnState, req_id: bytes, code: int, text: str, now: float) -> None:
        """An error message: counted by code and class; answers its request, rejects its order."""
        code_s = str(code)
        st.stats.errors[(code_s, error_class(code, text))] += 1
        if code == 326:
            st.stats.collisions += 1
            if st.registered:
                st.registered = False
                st.stats.live -= 1
                logger.warning("bot connection {}: client id {} already in use (326)", conn.peer, conn.client_id)
            return
        if 2100 <= code <= 2199:
            return
        self.answered(st, req_id, now)
        track = st.orders.get(req_id)
        if track is not None and code in ORDER_REJECTS and track.working:
            track.status = b"Inactive"
            st.stats.rejected[code_s] += 1

    def order_open(self, st: ConnState, order_id: bytes, now: float) -> None:
        """openOrder: the Gateway acknowledged the order."""
        track = st.orders.get(order_id)
        if track is not None and not track.acked:
            self._ack(st, track, now)

    def order_status(self, st: ConnState, order_id: bytes, status: bytes, filled: bytes, now: float) -> None:
        """orderStatus: acknowledgement, first fill (``filled`` is the filled quantity as sent), end states."""
        track = st.orders.get(order_id)
        if track is None:
            return
        if not track.acked:
            self._ack(st, track, now)
        if not track.fill_seen and _some(filled):
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

    def _ack(self, st: ConnState, track: OrderTrack, now: float) -> None:
        track.acked = True
        st.stats.acknowledged += 1
        st.stats.ack_latency.observe(now - track.placed)
