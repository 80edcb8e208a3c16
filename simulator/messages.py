"""Encoders for server -> client messages, honouring the negotiated server version.

Field lists mirror ib_async's decoder (the authority); where a field only exists from a given server
version on, the version check sits next to the field so the difference stays visible.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from simulator.contracts import Contract
from simulator.wire import UNSET_DOUBLE_STR

if TYPE_CHECKING:
    from simulator.broker import Execution, Order

Msg = list[Any]


def error(sv: int, req_id: int, code: int, text: str) -> Msg:
    msg: Msg = [4, 2, req_id, code, text]
    if sv >= 166:
        msg.append("")  # advancedOrderRejectJson
    return msg


def contract_details(sv: int, fields: Msg) -> Msg:
    """Adapt the >=164 layout (built in contracts.py) for older negotiated versions."""
    if sv >= 164:
        return fields
    head = [fields[0], 8, *fields[1:14]]  # version field after the id
    return [*head, 1, *fields[14:-3]]  # mdSizeMultiplier after minTick; no size increments


def open_order(sv: int, o: Order, *, margin: dict[str, float] | None = None) -> Msg:
    c = o.contract
    lmt = o.lmtPrice if o.orderType in ("LMT", "STP LMT") else ""
    msg: Msg = [
        5,
        o.orderId,
        *c.c12()[:7],
        "SMART",
        "USD",
        c.localSymbol,
        c.symbol,
        o.action,
        o.totalQuantity,
        o.orderType,
        lmt,
        o.auxPrice if o.orderType == "STP" else "",
        o.tif,
        o.ocaGroup,
        o.account,
        "O" if c.secType == "OPT" else "",
        0,
        o.orderRef,
        o.clientId,
        o.permId,
        o.outsideRth,
        0,
        0,
        "",
        "",
        "",
        "",
        "",
    ]
    if sv < 177:
        msg.append("")  # faProfile
    msg += [
        "",
        "",
        "",
        "",
        "",
        0,
        "",
        -1,
        "",
        "",
        "",
        "",
        "",
        "",
        0,
        0,
        0,
        0,
        "",
        3,
        0,
        0,
        "",
        o.parentId,
        0,
        "",
        0,
        "",
        "",
    ]
    msg += [0, 0, "", "", "", "", ""]  # continuousUpdate .. comboLegsDescrip
    msg += [0, 0, 0]  # numLegs, numOrderLegs, numSmartComboParams
    msg += ["", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
    msg += [""]  # hedgeType
    msg += [0, "", "", 0, 0]  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dncPresent
    msg += [""]  # algoStrategy
    if margin is not None:
        st = [
            f"{margin[k]:.2f}"
            for k in (
                "initMarginBefore",
                "maintMarginBefore",
                "equityWithLoanBefore",
                "initMarginChange",
                "maintMarginChange",
                "equityWithLoanChange",
                "initMarginAfter",
                "maintMarginAfter",
                "equityWithLoanAfter",
            )
        ]
        comm: list[Any] = [margin["commission"], margin["commission"], margin["commission"], "USD"]
    else:
        st = [UNSET_DOUBLE_STR] * 9
        comm = [UNSET_DOUBLE_STR, UNSET_DOUBLE_STR, UNSET_DOUBLE_STR, ""]
    msg += [0, o.whatIf, o.status, *st, *comm, "", 0, 0]
    msg += [0]  # numConditions
    msg += ["None", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0]
    if sv >= 159:
        msg.append("")  # duration
    if sv >= 160:
        msg.append("")  # postToAts
    if sv >= 162:
        msg.append(0)  # autoCancelParent
    if sv >= 170:
        msg += ["", "", "", "", ""]
    return msg


def order_status(o: Order) -> Msg:
    return [
        3,
        o.orderId,
        o.status,
        o.filled,
        o.totalQuantity - o.filled,
        o.avgFillPrice,
        o.permId,
        o.parentId,
        o.lastFillPrice,
        o.clientId,
        "",
        0,
    ]


def exec_details(sv: int, req_id: int, e: Execution) -> Msg:
    c = e.contract
    msg: Msg = [
        11,
        req_id,
        e.orderId,
        *c.c12()[:7],
        "SMART",
        "USD",
        c.localSymbol,
        c.symbol,
        e.execId,
        e.time_str,
        e.account,
        e.exchange,
        e.side,
        e.shares,
        e.price,
        e.permId,
        e.clientId,
        0,
        e.cumQty,
        e.avgPrice,
        e.orderRef,
        "",
        "",
        "",
        1,
    ]
    if sv >= 178:
        msg.append(0)  # pendingPriceRevision
    return msg


def commission_report(e: Execution) -> Msg:
    return [59, 1, e.execId, e.commission, "USD", e.realized_pnl_str, "", ""]


def position(account: str, c: Contract, pos: float, avg_cost: float) -> Msg:
    return [61, 3, account, *c.c12()[:7], "", "USD", c.localSymbol, c.symbol, pos, avg_cost]


def portfolio(
    account: str, c: Contract, pos: float, mark: float, avg_cost: float, unrealized: float, realized: float
) -> Msg:
    mult = c.multiplier
    return [
        7,
        8,
        *c.c12()[:7],
        c.primaryExchange,
        "USD",
        c.localSymbol,
        c.symbol,
        pos,
        round(mark, 4),
        round(pos * mark * mult, 2),
        round(avg_cost, 4),
        round(unrealized, 2),
        round(realized, 2),
        account,
    ]


def tick_price(req_id: int, tick_type: int, price: float, size: float, attrib: int = 0) -> Msg:
    return [1, 6, req_id, tick_type, price, size, attrib]


def tick_size(req_id: int, tick_type: int, size: float) -> Msg:
    return [2, 6, req_id, tick_type, size]


def tick_string(req_id: int, tick_type: int, value: str) -> Msg:
    return [46, 6, req_id, tick_type, value]


def completed_order(sv: int, o: Order) -> Msg:
    """completedOrder (101) at >= 164, no version field; the layout of ib_async's decoder.completedOrder
    (decoder.py l.1149) with every optional branch off (no delta-neutral, legs, scale, hedge, algo,
    conditions)."""
    c = o.contract
    lmt = o.lmtPrice if o.orderType == "LMT" else ""
    done_at = o.filled_at or o.received_at
    completed_time = dt.datetime.fromtimestamp(done_at, dt.UTC).strftime("%Y%m%d-%H:%M:%S")
    completed_status = {"Filled": "Filled", "Cancelled": "Cancelled by Trader"}.get(o.status, o.status)
    msg: Msg = [101, *c.c12()[:7], "SMART", "USD", c.localSymbol, c.symbol]
    msg += [o.action, o.totalQuantity, o.orderType, lmt, o.auxPrice if o.orderType == "STP" else "", o.tif,
            o.ocaGroup, o.account, "O" if c.secType == "OPT" else "", 0, o.orderRef, o.permId, o.outsideRth,
            0, 0, "", "", "", ""]
    if sv < 177:
        msg.append("")  # faProfile
    msg += ["", "", "", "", "", 0, "", "", "", "", "", "", "", "", 0, 0, "", 0, 0, "", 0, "", ""]
    msg += [0, 0, "", "", ""]  # continuousUpdate, referencePriceType, trailStopPrice, trailingPercent, legs descr
    msg += [0, 0, 0]  # numLegs, numOrderLegs, numSmartComboParams
    msg += ["", "", ""]  # scale init/subs level size, scale price increment
    msg += [""]  # hedgeType
    msg += ["", "", 0, 0]  # clearingAccount, clearingIntent, notHeld, dncPresent
    msg += [""]  # algoStrategy
    msg += [0, o.status, 0, 0]  # solicited, status, randomizeSize, randomizePrice
    msg += [0]  # numConditions
    msg += ["", "", "", 0, 0, "", o.filled, 0, 0, "", 0, 0, 0, completed_time, completed_status]
    if sv >= 170:
        msg += ["", "", "", "", ""]
    return msg
