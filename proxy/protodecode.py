"""Reads IBKR's protobuf messages (server versions above 200) into the events of :mod:`proxy.measure`.

From server version 201 every frame after the hello starts with a 4-byte big-endian message id;
an id above 200 (``PROTOBUF_MSG_ID``) carries a protobuf message of the text message ``id - 200``
(the framing :mod:`simulator.protobuf` serves and documents; its constants and its table of
request classes are used here, not copied). The schemas are IBKR's own generated classes from
``ibapi.protobuf`` (the ``ibapi-latest`` distribution), parsed by the protobuf runtime (upb: a
tick parses in well under a microsecond), never a hand-written reading of the wire format.

Decoded, in both directions, exactly what the text decoder measures: startApi (client id),
reqMktData (request id and symbol) and its cancel, placeOrder (order id, with a bracket's attached
orders, and the order's account for the paper guard), the timed requests and their cancels, and
from the Gateway ticks, the answers that time a request, errors, openOrder, orderStatus and
managedAccounts. Any other protobuf message is relayed unchanged and counted as undecoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from proxy.measure import (
    ACCOUNT_UPDATES,
    ANSWERS_WITH_ID,
    ANSWERS_WITHOUT_ID,
    CANCELS,
    POSITIONS,
    REQUEST_KINDS,
    TICKS,
    ConnState,
    Measure,
    symbol_name,
)
from proxy.relay import Connection
from simulator.protobuf import MIN_SERVER_VER_PROTOBUF, PROTOBUF_MSG_ID, REQUESTS, message_class

__all__ = ["MIN_SERVER_VER_PROTOBUF", "PROTOBUF_MSG_ID", "DecodeError", "decode", "place_order", "tick_request"]

Handler = Callable[[Measure, Connection, ConnState, bytes, float], None]

#: IBKR's class of each tick and of each answer that carries a request id, by text message id.
TICK_CLASSES: dict[int, str] = {1: "TickPrice", 2: "TickSize", 45: "TickGeneric", 46: "TickString"}
ANSWER_CLASSES: dict[int, str] = {
    10: "ContractData",
    52: "ContractDataEnd",
    17: "HistoricalData",
    108: "HistoricalDataEnd",
    90: "HistoricalDataUpdate",
    63: "AccountSummary",
    64: "AccountSummaryEnd",
    73: "AccountUpdateMulti",
    74: "AccountUpdateMultiEnd",
    11: "ExecutionDetails",
    55: "ExecutionDetailsEnd",
}
ERROR, ORDER_STATUS, OPEN_ORDER, MANAGED_ACCOUNTS = 4, 3, 5, 15
START_API, REQ_MKT_DATA, PLACE_ORDER, REQ_ACCOUNT_UPDATES = 71, 1, 3, 6


def _id(value: int) -> bytes:
    return str(value).encode()


def _parse(name: str) -> Callable[[bytes], Any]:
    parse: Callable[[bytes], Any] = message_class(name).FromString
    return parse


# bot -> Gateway -------------------------------------------------------------
def _start_api(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        m.started(conn, st, parse(body).clientId, now)

    return handle


def _req_mkt_data(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        p = parse(body)
        c = p.contract
        name = symbol_name(c.secType.encode(), c.symbol.encode(), c.localSymbol.encode(), _id(c.conId))
        m.subscribed(st, _id(p.reqId), name, now)

    return handle


def _place_order(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        for order_id in place_order(body)[0]:
            m.order_placed(st, _id(order_id), now)

    return handle


def _req_account_updates(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        if parse(body).subscribe:
            m.requested(st, "account", ACCOUNT_UPDATES, now)

    return handle


def _timed(kind: str, parse: Callable[[bytes], Any] | None, fixed: bytes) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        m.requested(st, kind, fixed if parse is None else _id(parse(body).reqId), now)

    return handle


def _cancel(parse: Callable[[bytes], Any] | None, fixed: bytes, market_data: bool) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        m.withdrawn(st, fixed if parse is None else _id(parse(body).reqId), market_data=market_data)

    return handle


# Gateway -> bot -------------------------------------------------------------
def _tick(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        m.tick(st, _id(parse(body).reqId), now)

    return handle


def _answer(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        if st.pending:
            m.answered(st, _id(parse(body).reqId), now)

    return handle


def _answer_without_id(key: bytes) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        if st.pending:
            m.answered(st, key, now)

    return handle


def _error(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        p = parse(body)
        m.error(conn, st, _id(p.id), p.errorCode, p.errorMsg, now)

    return handle


def _order_status(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        p = parse(body)
        m.order_status(st, _id(p.orderId), p.status.encode(), p.filled.encode(), now)

    return handle


def _open_order(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        m.order_open(st, _id(parse(body).orderId), now)

    return handle


def _managed_accounts(parse: Callable[[bytes], Any]) -> Handler:
    def handle(m: Measure, conn: Connection, st: ConnState, body: bytes, now: float) -> None:
        m.accounts(conn, parse(body).accountsList)

    return handle


def _tables() -> tuple[dict[int, Handler], dict[int, Handler]]:
    """(bot -> Gateway, Gateway -> bot) handlers by 4-byte message id."""
    req = {mid: _parse(REQUESTS[mid]) for mid in (START_API, REQ_MKT_DATA, PLACE_ORDER, REQ_ACCOUNT_UPDATES)}
    up: dict[int, Handler] = {
        START_API: _start_api(req[START_API]),
        REQ_MKT_DATA: _req_mkt_data(req[REQ_MKT_DATA]),
        PLACE_ORDER: _place_order(req[PLACE_ORDER]),
        REQ_ACCOUNT_UPDATES: _req_account_updates(req[REQ_ACCOUNT_UPDATES]),
    }
    for mid, kind in REQUEST_KINDS.items():
        up[mid] = _timed(kind, None if mid == 61 else _parse(REQUESTS[mid]), POSITIONS)
    for mid, market_data in CANCELS.items():
        up[mid] = _cancel(None if mid == 64 else _parse(REQUESTS[mid]), POSITIONS, market_data=market_data)
    down: dict[int, Handler] = {mid: _tick(_parse(TICK_CLASSES[mid])) for mid in TICKS}
    down.update({mid: _answer(_parse(ANSWER_CLASSES[mid])) for mid in ANSWERS_WITH_ID})
    down.update({mid: _answer_without_id(key) for mid, key in ANSWERS_WITHOUT_ID.items()})
    down[ERROR] = _error(_parse("ErrorMessage"))
    down[ORDER_STATUS] = _order_status(_parse("OrderStatus"))
    down[OPEN_ORDER] = _open_order(_parse("OpenOrder"))
    down[MANAGED_ACCOUNTS] = _managed_accounts(_parse("ManagedAccounts"))
    return (
        {mid + PROTOBUF_MSG_ID: h for mid, h in up.items()},
        {mid + PROTOBUF_MSG_ID: h for mid, h in down.items()},
    )


TO_GATEWAY, TO_BOT = _tables()
_PLACE_ORDER = _parse(REQUESTS[PLACE_ORDER])
_TICK_PARSERS = {mid + PROTOBUF_MSG_ID: _parse(TICK_CLASSES[mid]) for mid in TICKS}


def decode(m: Measure, conn: Connection, st: ConnState, to_bot: bool, mid: int, body: bytes, now: float) -> bool:
    """Feed one protobuf message (4-byte id ``mid``) to the measurements; False if not read here.

    Raises :class:`DecodeError` for bytes that are not the message its id names.
    """
    handler = (TO_BOT if to_bot else TO_GATEWAY).get(mid)
    if handler is None:
        return False
    handler(m, conn, st, body, now)
    return True


def place_order(body: bytes) -> tuple[list[int], str]:
    """A PlaceOrderRequest's order ids (the order, then a bracket's stop-loss and profit-taker
    attached to it, which the Gateway creates with it) and the order's account field."""
    p = _PLACE_ORDER(body)
    ids = [p.orderId]
    if p.HasField("attachedOrders"):
        a = p.attachedOrders
        ids += [i for i in (a.slOrderId, a.ptOrderId) if i]
    return ids, p.order.account


def tick_request(mid: int, body: bytes) -> bytes | None:
    """The request id of a protobuf tick (4-byte id ``mid``), None for any other message."""
    parse = _TICK_PARSERS.get(mid)
    return None if parse is None else _id(parse(body).reqId)
