"""Server versions above 200: IBKR's protobuf messages, for the core of what the simulator models.

From server version 201 (``MIN_SERVER_VER_PROTOBUF``) every frame starts with a 4-byte big-endian
message id instead of the text id; an id above 200 means the rest is a protobuf message of type
``id - 200`` (ibapi 10.5x client.py ``run``/``sendMsgProtoBuf``, common.py ``PROTOBUF_MSG_ID``).
From 213 (``MIN_SERVER_VER_PROTOBUF_REST_MESSAGES_3``) IBKR's client sends every request it has a
message for as protobuf (common.py ``getServerVersionForMessage``), and its decoder takes protobuf
for every message the server sends. The simulator serves that end of the range: requests are
translated to the text layout its handlers read (ib_async's, at 178), and their answers to the
protobuf messages IBKR's decoder reads (decoder.py ``process*ProtoBuf``). The message schemas are
IBKR's own, from the ``ibapi.protobuf`` package of IBKR's client (``ibapi-latest`` on PyPI), which
is only needed when a version above 200 is configured.

Modelled at these versions: the connect burst, ids, current time, contract details, option
parameters, market data (ticks, snapshot end, greeks), positions, account summary and updates
(also per account/model), executions and commissions, orders (place, cancel, global cancel, open
and completed orders, status), historical bars and ticks, head timestamp, symbol search, market
rules, PnL, real-time bars, tick-by-tick, news providers, scanner parameters, user info. Every
other request is refused with error 321 naming it.
"""

from __future__ import annotations

import importlib
from typing import Any

from simulator.wire import UNSET_DOUBLE_STR

PROTOBUF_MSG_ID = 200
MIN_SERVER_VER_PROTOBUF = 201
MIN_SERVED = 213  # every request category is protobuf from here on (REST_MESSAGES_3)
MAX_SERVED = 226  # IBKR's 10.51 client's highest; 223-226 add only optional order and tick fields


def available() -> bool:
    try:
        importlib.import_module("ibapi.protobuf.StartApiRequest_pb2")
    except ImportError:
        return False
    return True


def message_class(name: str) -> Any:
    """IBKR's generated class for message ``name`` (ibapi's ``ibapi.protobuf.<name>_pb2``)."""
    return getattr(importlib.import_module(f"ibapi.protobuf.{name}_pb2"), name)


_cls = message_class


#: request message id -> protobuf class name (ibapi client.py, the ``*ProtoBuf`` senders)
REQUESTS: dict[int, str] = {
    71: "StartApiRequest",
    8: "IdsRequest",
    49: "CurrentTimeRequest",
    105: "CurrentTimeInMillisRequest",
    17: "ManagedAccountsRequest",
    9: "ContractDataRequest",
    78: "SecDefOptParamsRequest",
    1: "MarketDataRequest",
    2: "CancelMarketData",
    59: "MarketDataTypeRequest",
    61: "PositionsRequest",
    64: "CancelPositions",
    62: "AccountSummaryRequest",
    63: "CancelAccountSummary",
    6: "AccountDataRequest",
    7: "ExecutionRequest",
    5: "OpenOrdersRequest",
    16: "AllOpenOrdersRequest",
    15: "AutoOpenOrdersRequest",
    99: "CompletedOrdersRequest",
    3: "PlaceOrderRequest",
    4: "CancelOrderRequest",
    58: "GlobalCancelRequest",
    20: "HistoricalDataRequest",
    25: "CancelHistoricalData",
    76: "AccountUpdatesMultiRequest",
    77: "CancelAccountUpdatesMulti",
    81: "MatchingSymbolsRequest",
    91: "MarketRuleRequest",
    87: "HeadTimestampRequest",
    90: "CancelHeadTimestamp",
    96: "HistoricalTicksRequest",
    92: "PnLRequest",
    93: "CancelPnL",
    94: "PnLSingleRequest",
    95: "CancelPnLSingle",
    50: "RealTimeBarsRequest",
    51: "CancelRealTimeBars",
    97: "TickByTickRequest",
    98: "CancelTickByTick",
    85: "NewsProvidersRequest",
    24: "ScannerParametersRequest",
    104: "UserInfoRequest",
}


def _s(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return "" if v is None else str(v)


def _c12(c: Any) -> list[str]:
    """A Contract message as the 12 text contract fields."""
    strike = c.strike if c.HasField("strike") else ""
    mult = c.multiplier if c.HasField("multiplier") else ""
    return [_s(c.conId), c.symbol, c.secType, c.lastTradeDateOrContractMonth, _s(strike), c.right,
            _s(mult), c.exchange, c.primaryExch, c.currency, c.localSymbol, c.tradingClass]


def decode_request(msg_id: int, payload: bytes) -> list[str] | None:
    """A protobuf request as the text fields the handlers read, or None when it is not modelled."""
    name = REQUESTS.get(msg_id)
    if name is None:
        return None
    p = _cls(name)()
    p.ParseFromString(payload)
    i = str(msg_id)
    if msg_id == 71:
        return [i, "2", _s(p.clientId), p.optionalCapabilities]
    if msg_id in (8, 49, 17, 61, 64, 5, 16, 58):
        return [i, "1", "1"]
    if msg_id == 105:
        return [i]
    if msg_id == 15:
        return [i, "1", _s(p.autoBind)]
    if msg_id == 9:
        return [i, "8", _s(p.reqId), *_c12(p.contract), _s(p.contract.includeExpired), "", "", ""]
    if msg_id == 78:
        return [i, _s(p.reqId), p.underlyingSymbol, p.futFopExchange, p.underlyingSecType, _s(p.underlyingConId)]
    if msg_id == 1:
        return [i, "11", _s(p.reqId), *_c12(p.contract), "0", p.genericTickList, _s(p.snapshot),
                _s(p.regulatorySnapshot), ""]
    if msg_id in (2, 63):
        return [i, "1", _s(p.reqId)]
    if msg_id == 25:
        return [i, "1", _s(p.reqId)]
    if msg_id == 59:
        return [i, "1", _s(p.marketDataType)]
    if msg_id == 62:
        return [i, "1", _s(p.reqId), p.group, p.tags]
    if msg_id == 6:
        return [i, "2", _s(p.subscribe), p.acctCode]
    if msg_id == 7:
        f = p.executionFilter
        return [i, "3", _s(p.reqId), _s(f.clientId), f.acctCode, f.time, f.symbol, f.secType, f.exchange, f.side]
    if msg_id == 99:
        return [i, _s(p.apiOnly)]
    if msg_id == 4:
        return [i, "1", _s(p.orderId), ""]
    if msg_id == 20:
        return [i, _s(p.reqId), *_c12(p.contract), _s(p.contract.includeExpired), p.endDateTime, p.barSizeSetting,
                p.duration, _s(p.useRTH), p.whatToShow, _s(p.formatDate), _s(p.keepUpToDate), ""]
    if msg_id == 76:
        return [i, "1", _s(p.reqId), p.account, p.modelCode, _s(p.ledgerAndNLV)]
    if msg_id in (77, 51):
        return [i, "1", _s(p.reqId)]
    if msg_id in (90, 93, 95, 98, 104):
        return [i, _s(p.reqId)]
    if msg_id == 81:
        return [i, _s(p.reqId), p.pattern]
    if msg_id == 91:
        return [i, _s(p.marketRuleId)]
    if msg_id == 87:
        return [i, _s(p.reqId), *_c12(p.contract), _s(p.contract.includeExpired), _s(p.useRTH), p.whatToShow,
                _s(p.formatDate)]
    if msg_id == 96:
        return [i, _s(p.reqId), *_c12(p.contract), _s(p.contract.includeExpired), p.startDateTime, p.endDateTime,
                _s(p.numberOfTicks), p.whatToShow, _s(p.useRTH), _s(p.ignoreSize), ""]
    if msg_id == 92:
        return [i, _s(p.reqId), p.account, p.modelCode]
    if msg_id == 94:
        return [i, _s(p.reqId), p.account, p.modelCode, _s(p.conId)]
    if msg_id == 50:
        return [i, "3", _s(p.reqId), *_c12(p.contract), _s(p.barSize), p.whatToShow, _s(p.useRTH), ""]
    if msg_id == 97:
        return [i, _s(p.reqId), *_c12(p.contract), p.tickType, _s(p.numberOfTicks), _s(p.ignoreSize)]
    if msg_id in (85, 24):
        return [i, "1"]
    if msg_id == 3:
        o = p.order
        f = [""] * 90  # placeOrder's text layout with every optional branch off: whatIf at 84
        f[0], f[1] = i, _s(p.orderId)
        f[2:14] = _c12(p.contract)
        f[16], f[17], f[18] = o.action, _s(o.totalQuantity), o.orderType
        f[19] = _s(o.lmtPrice) if o.HasField("lmtPrice") else ""
        f[20] = _s(o.auxPrice) if o.HasField("auxPrice") else ""
        f[21], f[22], f[23], f[26] = o.tif, o.ocaGroup, o.account, o.orderRef
        # IBKR's client sets transmit only when true (client_utils.createOrderProto: "if order.transmit:
        # orderProto.transmit = ..."), so an absent field is an order sent with transmit false: held.
        f[27] = "1" if o.transmit else "0"
        f[28], f[33], f[84] = _s(o.parentId), _s(o.outsideRth), _s(o.whatIf)
        return f
    return None


def request_id(payload: bytes) -> int:
    """The request id of a refused request, so the error reaches the caller: in IBKR's request
    messages that carry one it is field 1, a varint (``reqId`` or ``orderId``); -1 otherwise."""
    if not payload or payload[0] != 0x08:  # field 1, wire type 0
        return -1
    value, shift = 0, 0
    for byte in payload[1:11]:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value if value < 2**31 else -1
    return -1


# ----------------------------------------------------------------------------- answers
def _f(v: Any) -> float:
    s = _s(v)
    return float(s) if s not in ("", UNSET_DOUBLE_STR) else 0.0


def _contract(fields: list[Any], start: int, *, exchange_at: int = 7, primary: bool = True) -> Any:
    """Contract message from the text layout ``conId, symbol, secType, expiry, strike, right, mult,
    exchange, [primaryExchange,] currency, localSymbol, tradingClass`` starting at ``start``."""
    c = _cls("Contract")()
    v = fields[start:]
    c.conId = int(v[0] or 0)
    c.symbol, c.secType, c.lastTradeDateOrContractMonth = _s(v[1]), _s(v[2]), _s(v[3])
    c.strike = _f(v[4])
    c.right = _s(v[5])
    if _s(v[6]):
        c.multiplier = _f(v[6])
    c.exchange = _s(v[exchange_at])
    rest = v[exchange_at + 1:]
    if primary:
        c.primaryExch, rest = _s(rest[0]), rest[1:]
    c.currency, c.localSymbol, c.tradingClass = _s(rest[0]), _s(rest[1]), _s(rest[2])
    return c


def _order_state(status: str, margin: list[Any] | None = None) -> Any:
    st = _cls("OrderState")()
    st.status = status
    if margin:
        names = ("initMarginBefore", "maintMarginBefore", "equityWithLoanBefore", "initMarginChange",
                 "maintMarginChange", "equityWithLoanChange", "initMarginAfter", "maintMarginAfter",
                 "equityWithLoanAfter")
        for n, v in zip(names, margin[:9], strict=True):
            if _s(v) not in ("", UNSET_DOUBLE_STR):
                setattr(st, n, float(v))
        if _s(margin[9]) not in ("", UNSET_DOUBLE_STR):
            st.commissionAndFees = float(margin[9])
            st.commissionAndFeesCurrency = "USD"
    return st


def _open_order(f: list[Any], sv: int) -> Any:
    """openOrder (5) from messages.open_order's layout."""
    o = _cls("Order")()
    o.orderId, o.action, o.totalQuantity, o.orderType = int(f[1]), _s(f[13]), _s(f[14]), _s(f[15])
    if _s(f[16]):
        o.lmtPrice = _f(f[16])
    if _s(f[17]):
        o.auxPrice = _f(f[17])
    o.tif, o.ocaGroup, o.account, o.orderRef = _s(f[18]), _s(f[19]), _s(f[20]), _s(f[23])
    o.clientId, o.permId, o.outsideRth = int(f[24]), int(f[25]), bool(int(_s(f[26]) or 0))
    parent_at = 34 + (1 if sv < 177 else 0) + 23  # messages.open_order: 34 head fields, faProfile < 177
    o.parentId = int(f[parent_at] or 0)
    # whatIf, status, 9 margin fields, 3 commissions, currency follow the algoStrategy field
    w = len(f) - 1
    while w > 0 and _s(f[w]) not in ("PreSubmitted", "Submitted", "Filled", "Cancelled", "Inactive",
                                     "PendingSubmit", "ApiCancelled"):
        w -= 1
    o.whatIf = bool(int(_s(f[w - 1]) or 0))
    msg = _cls("OpenOrder")()
    msg.orderId = o.orderId
    msg.contract.CopyFrom(_contract(f, 2, primary=False))
    msg.order.CopyFrom(o)
    msg.orderState.CopyFrom(_order_state(_s(f[w]), f[w + 1:w + 11] if o.whatIf else None))
    return msg


def encode(fields: list[Any], sv: int) -> tuple[int, bytes] | None:
    """A text-layout answer as (message id + 200, protobuf bytes), or None if not modelled."""
    mid = int(fields[0])
    f = fields
    p: Any
    if mid == 4:
        p = _cls("ErrorMessage")()
        p.id, p.errorCode, p.errorMsg = int(f[2]), int(f[3]), _s(f[4])
        p.advancedOrderRejectJson = _s(f[5]) if len(f) > 5 else ""
    elif mid == 15:
        p = _cls("ManagedAccounts")()
        p.accountsList = _s(f[2])
    elif mid == 9:
        p = _cls("NextValidId")()
        p.orderId = int(f[2])
    elif mid == 49:
        p = _cls("CurrentTime")()
        p.currentTime = int(f[2])
    elif mid == 109:
        p = _cls("CurrentTimeInMillis")()
        p.currentTimeInMillis = int(f[1])
    elif mid == 10:
        p = _contract_data(f)
    elif mid in (52, 57, 64, 55):
        names = {52: "ContractDataEnd", 57: "TickSnapshotEnd", 64: "AccountSummaryEnd", 55: "ExecutionDetailsEnd"}
        p = _cls(names[mid])()
        p.reqId = int(f[2])
    elif mid == 1:
        p = _cls("TickPrice")()
        p.reqId, p.tickType, p.price, p.size, p.attrMask = int(f[2]), int(f[3]), _f(f[4]), _s(f[5]), int(f[6] or 0)
    elif mid == 2:
        p = _cls("TickSize")()
        p.reqId, p.tickType, p.size = int(f[2]), int(f[3]), _s(f[4])
    elif mid == 46:
        p = _cls("TickString")()
        p.reqId, p.tickType, p.value = int(f[2]), int(f[3]), _s(f[4])
    elif mid == 81:
        p = _cls("TickReqParams")()
        p.reqId, p.minTick, p.bboExchange, p.snapshotPermissions = int(f[1]), _s(f[2]), _s(f[3]), int(f[4])
    elif mid == 58:
        p = _cls("MarketDataType")()
        p.reqId, p.marketDataType = int(f[2]), int(f[3])
    elif mid == 21:
        p = _cls("TickOptionComputation")()
        p.reqId, p.tickType, p.tickAttrib = int(f[1]), int(f[2]), int(f[3])
        for n, v in zip(("impliedVol", "delta", "optPrice", "pvDividend", "gamma", "vega", "theta", "undPrice"),
                        f[4:12], strict=True):
            setattr(p, n, float(v))
    elif mid == 61:
        p = _cls("Position")()
        p.account = _s(f[2])
        p.contract.CopyFrom(_contract(f, 3, primary=False))
        p.position, p.avgCost = _s(f[14]), _f(f[15])
    elif mid == 62:
        p = _cls("PositionEnd")()
    elif mid == 63:
        p = _cls("AccountSummary")()
        p.reqId, p.account, p.tag, p.value, p.currency = int(f[2]), _s(f[3]), _s(f[4]), _s(f[5]), _s(f[6])
    elif mid == 6:
        p = _cls("AccountValue")()
        p.key, p.value, p.currency, p.accountName = _s(f[2]), _s(f[3]), _s(f[4]), _s(f[5])
    elif mid == 7:
        p = _cls("PortfolioValue")()
        p.contract.CopyFrom(_contract(f, 2, primary=False))  # no exchange: primaryExchange in its place
        p.position, p.marketPrice, p.marketValue = _s(f[13]), _f(f[14]), _f(f[15])
        p.averageCost, p.unrealizedPNL, p.realizedPNL, p.accountName = _f(f[16]), _f(f[17]), _f(f[18]), _s(f[19])
    elif mid == 8:
        p = _cls("AccountUpdateTime")()
        p.timeStamp = _s(f[2])
    elif mid == 54:
        p = _cls("AccountDataEnd")()
        p.accountName = _s(f[2])
    elif mid == 11:
        p = _cls("ExecutionDetails")()
        p.reqId = int(f[1])
        p.contract.CopyFrom(_contract(f, 3, primary=False))
        e = p.execution
        e.orderId, e.execId, e.time, e.acctNumber, e.exchange = int(f[2]), _s(f[14]), _s(f[15]), _s(f[16]), _s(f[17])
        e.side, e.shares, e.price, e.permId, e.clientId = _s(f[18]), _s(f[19]), _f(f[20]), int(f[21]), int(f[22])
        e.cumQty, e.avgPrice, e.orderRef, e.lastLiquidity = _s(f[24]), _f(f[25]), _s(f[26]), int(f[30] or 0)
    elif mid == 59:
        p = _cls("CommissionAndFeesReport")()
        p.execId, p.commissionAndFees, p.currency = _s(f[2]), _f(f[3]), _s(f[4])
        if _s(f[5]) not in ("", UNSET_DOUBLE_STR):
            p.realizedPNL = float(f[5])
    elif mid == 5:
        p = _open_order(f, sv)
    elif mid == 3:
        p = _cls("OrderStatus")()
        p.orderId, p.status, p.filled, p.remaining = int(f[1]), _s(f[2]), _s(f[3]), _s(f[4])
        p.avgFillPrice, p.permId, p.parentId, p.lastFillPrice = _f(f[5]), int(f[6]), int(f[7]), _f(f[8])
        p.clientId, p.whyHeld, p.mktCapPrice = int(f[9]), _s(f[10]), _f(f[11])
    elif mid == 53:
        p = _cls("OpenOrdersEnd")()
    elif mid == 101:
        p = _cls("CompletedOrder")()
        p.contract.CopyFrom(_contract(f, 1, primary=False))
        o = p.order
        o.action, o.totalQuantity, o.orderType = _s(f[12]), _s(f[13]), _s(f[14])
        if _s(f[15]):
            o.lmtPrice = _f(f[15])
        o.tif, o.account, o.orderRef, o.permId = _s(f[17]), _s(f[19]), _s(f[22]), int(f[23])
        # messages.completed_order ends: status, 2, numConditions, 15 (time, status at 13, 14), 5 (>= 170)
        p.orderState.status = _s(f[-24])
        p.orderState.completedTime, p.orderState.completedStatus = _s(f[-7]), _s(f[-6])
    elif mid == 102:
        p = _cls("CompletedOrdersEnd")()
    elif mid == 17:
        return None  # handled by encode_history (bars and the separate end message)
    elif mid == 75:
        p = _cls("SecDefOptParameter")()
        p.reqId, p.exchange, p.underlyingConId, p.tradingClass, p.multiplier = (
            int(f[1]), _s(f[2]), int(f[3]), _s(f[4]), _s(f[5]))
        count = int(f[6])
        p.expirations.extend(_s(x) for x in f[7:7 + count])
        p.strikes.extend(float(x) for x in f[8 + count:])
    elif mid == 76:
        p = _cls("SecDefOptParameterEnd")()
        p.reqId = int(f[1])
    elif mid in (73, 74):
        p = _cls("AccountUpdateMulti" if mid == 73 else "AccountUpdateMultiEnd")()
        p.reqId = int(f[2])
        if mid == 73:
            p.account, p.modelCode, p.key, p.value, p.currency = _s(f[3]), _s(f[4]), _s(f[5]), _s(f[6]), _s(f[7])
    elif mid == 79:
        p = _cls("SymbolSamples")()
        p.reqId = int(f[1])
        k = 3
        for _ in range(int(f[2])):
            d = p.contractDescriptions.add()
            d.contract.conId, d.contract.symbol, d.contract.secType = int(f[k]), _s(f[k + 1]), _s(f[k + 2])
            d.contract.primaryExch, d.contract.currency = _s(f[k + 3]), _s(f[k + 4])
            n_types = int(f[k + 5])
            d.derivativeSecTypes.extend(_s(x) for x in f[k + 6:k + 6 + n_types])
            k += 6 + n_types
            d.contract.description, d.contract.issuerId = _s(f[k]), _s(f[k + 1])
            k += 2
    elif mid == 93:
        p = _cls("MarketRule")()
        p.marketRuleId = int(f[1])
        for j in range(int(f[2])):
            inc = p.priceIncrements.add()
            inc.lowEdge, inc.increment = _f(f[3 + 2 * j]), _f(f[4 + 2 * j])
    elif mid == 88:
        p = _cls("HeadTimestamp")()
        p.reqId, p.headTimestamp = int(f[1]), _s(f[2])
    elif mid in (96, 97, 98):
        p = _historical_ticks(f)
    elif mid == 94:
        p = _cls("PnL")()
        p.reqId, p.dailyPnL, p.unrealizedPnL, p.realizedPnL = int(f[1]), _f(f[2]), _f(f[3]), _f(f[4])
    elif mid == 95:
        p = _cls("PnLSingle")()
        p.reqId, p.position, p.dailyPnL = int(f[1]), _s(f[2]), _f(f[3])
        p.unrealizedPnL, p.realizedPnL, p.value = _f(f[4]), _f(f[5]), _f(f[6])
    elif mid == 50:
        p = _cls("RealTimeBarTick")()
        p.reqId, p.time, p.open, p.high, p.low, p.close = int(f[2]), int(f[3]), _f(f[4]), _f(f[5]), _f(f[6]), _f(f[7])
        p.volume, p.WAP, p.count = _s(f[8]), _s(f[9]), int(f[10])
    elif mid == 99:
        p = _cls("TickByTickData")()
        p.reqId, p.tickType = int(f[1]), int(f[2])
        if p.tickType in (1, 2):
            t = p.historicalTickLast
            t.time, t.price, t.size, t.exchange, t.specialConditions = int(f[3]), _f(f[4]), _s(f[5]), _s(f[7]), _s(f[8])
        elif p.tickType == 3:
            b = p.historicalTickBidAsk
            b.time, b.priceBid, b.priceAsk, b.sizeBid, b.sizeAsk = int(f[3]), _f(f[4]), _f(f[5]), _s(f[6]), _s(f[7])
        else:
            m = p.historicalTickMidPoint
            m.time, m.price = int(f[3]), _f(f[4])
    elif mid == 85:
        p = _cls("NewsProviders")()
        for j in range(int(f[1])):
            n = p.newsProviders.add()
            n.providerCode, n.providerName = _s(f[2 + 2 * j]), _s(f[3 + 2 * j])
    elif mid == 19:
        p = _cls("ScannerParameters")()
        p.xml = _s(f[2])
    elif mid == 107:
        p = _cls("UserInfo")()
        p.reqId, p.whiteBrandingId = int(f[1]), _s(f[2])
    elif mid == 90:
        p = _cls("HistoricalDataUpdate")()
        p.reqId = int(f[1])
        b = p.historicalDataBar
        b.barCount, b.date, b.open, b.close, b.high, b.low = int(f[2]), _s(f[3]), _f(f[4]), _f(f[5]), _f(f[6]), _f(f[7])
        b.WAP, b.volume = _s(f[8]), _s(f[9])
    else:
        return None
    return mid + PROTOBUF_MSG_ID, p.SerializeToString()


def encode_history(fields: list[Any]) -> list[tuple[int, bytes]]:
    """historicalData (17) at these versions: the bars, then historicalDataEnd (108) on its own."""
    req_id, start, end, n = int(fields[1]), _s(fields[2]), _s(fields[3]), int(fields[4])
    p = _cls("HistoricalData")()
    p.reqId = req_id
    for k in range(n):
        date, o, h, low, c, vol, wap, count = fields[5 + 8 * k: 13 + 8 * k]
        b = p.historicalDataBars.add()
        b.date, b.open, b.high, b.low, b.close = _s(date), _f(o), _f(h), _f(low), _f(c)
        b.volume, b.WAP, b.barCount = _s(vol), _s(wap), int(count)
    end_msg = _cls("HistoricalDataEnd")()
    end_msg.reqId, end_msg.startDateStr, end_msg.endDateStr = req_id, start, end
    return [(17 + PROTOBUF_MSG_ID, p.SerializeToString()), (108 + PROTOBUF_MSG_ID, end_msg.SerializeToString())]


def _historical_ticks(f: list[Any]) -> Any:
    """historicalTicks (96 midpoint, 97 bid/ask, 98 last) from refdata.historical_ticks' layout."""
    mid, req_id, n = int(f[0]), int(f[1]), int(f[2])
    name, width = {96: ("HistoricalTicks", 4), 97: ("HistoricalTicksBidAsk", 6), 98: ("HistoricalTicksLast", 6)}[mid]
    p = _cls(name)()
    p.reqId, p.isDone = req_id, bool(int(f[3 + n * width]))
    for j in range(n):
        v = f[3 + j * width: 3 + (j + 1) * width]
        if mid == 96:
            t = p.historicalTicks.add()
            t.time, t.price, t.size = int(v[0]), _f(v[2]), _s(v[3])
        elif mid == 97:
            b = p.historicalTicksBidAsk.add()
            b.time, b.priceBid, b.priceAsk, b.sizeBid, b.sizeAsk = int(v[0]), _f(v[2]), _f(v[3]), _s(v[4]), _s(v[5])
        else:
            last = p.historicalTicksLast.add()
            last.time, last.price, last.size, last.exchange = int(v[0]), _f(v[2]), _s(v[3]), _s(v[4])
            last.specialConditions = _s(v[5])
    return p


def _contract_data(f: list[Any]) -> Any:
    """contractDetails (10) from contracts.contract_details_fields (the >= 164 layout)."""
    p = _cls("ContractData")()
    p.reqId = int(f[1])
    c = p.contract
    c.symbol, c.secType, c.lastTradeDateOrContractMonth = _s(f[2]), _s(f[3]), _s(f[4]).split(" ")[0]
    c.strike, c.right, c.exchange, c.currency = _f(f[5]), _s(f[6]), _s(f[7]), _s(f[8])
    c.localSymbol, c.tradingClass, c.conId = _s(f[9]), _s(f[11]), int(f[12])
    if _s(f[14]):
        c.multiplier = _f(f[14])
    c.primaryExch = _s(f[20])
    d = p.contractDetails
    d.marketName, d.minTick, d.orderTypes, d.validExchanges = _s(f[10]), _s(f[13]), _s(f[15]), _s(f[16])
    d.priceMagnifier, d.underConId, d.longName = int(f[17]), int(f[18]), _s(f[19])
    d.contractMonth, d.industry, d.category, d.subcategory = _s(f[21]), _s(f[22]), _s(f[23]), _s(f[24])
    d.timeZoneId, d.tradingHours, d.liquidHours = _s(f[25]), _s(f[26]), _s(f[27])
    d.aggGroup, d.underSymbol, d.underSecType = int(f[31]), _s(f[32]), _s(f[33])
    d.marketRuleIds, d.realExpirationDate, d.stockType = _s(f[34]), _s(f[35]), _s(f[36])
    d.minSize, d.sizeIncrement, d.suggestedSizeIncrement = _s(f[37]), _s(f[38]), _s(f[39])
    return p
