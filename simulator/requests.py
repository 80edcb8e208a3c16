"""Every request message id of the TWS API, and what the simulator answers when it does not model one.

The ids are IBKR's own (``ibapi.message.OUT`` in IBKR's Python client; ib_async's client.py sends
the same numbers). A real Gateway answers every request either with data and an end marker or
with an error; the simulator must never leave a client waiting where a Gateway would have answered.
So each id is in exactly one of three places:

* the handler table (``simulator/handlers.py``): modelled;
* ``REFUSED`` here: not modelled, answered with the error a Gateway gives when it will not serve
  the request (321 "Error validating request" with the cause, as TWS words it; FA requests on a
  non-FA account get the real FA text; market depth without a subscription the real 354);
* ``SILENT`` here: a message a real Gateway never answers (cancels, settings, subscriptions that
  speak only when something happens), with the reason.

tests/simulator/test_sim_conformance.py sends every id and holds the simulator to this.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    name: str
    req_id_field: int | None  # index of the request id in the client message (None: answer on -1)
    code: int
    cause: str

    @property
    def text(self) -> str:
        if self.code == 321:
            return f"Error validating request.-'{self.name}' : cause - {self.cause}"
        return self.cause


_NOT_MODELLED = "not available on this simulated Gateway"
_FA = "FA data operations ignored for non FA customers."
_DEPTH = "Requested market data is not subscribed.Deep market data is not modelled"

#: id -> refusal for requests the simulator does not model (version-field layout as ib_async sends).
REFUSED: dict[int, Refusal] = {
    10: Refusal("reqMktDepth", 2, 354, _DEPTH),
    14: Refusal("setServerLogLevel", None, 321, _NOT_MODELLED),
    18: Refusal("requestFA", None, 321, _FA),
    19: Refusal("replaceFA", 4, 321, _FA),
    21: Refusal("exerciseOptions", 2, 321, "option exercise is " + _NOT_MODELLED),
    22: Refusal("reqScannerSubscription", 1, 321, "market scanners are " + _NOT_MODELLED),
    52: Refusal("reqFundamentalData", 2, 321, "fundamental data is " + _NOT_MODELLED),
    54: Refusal("calculateImpliedVolatility", 2, 321, _NOT_MODELLED),
    55: Refusal("calculateOptionPrice", 2, 321, _NOT_MODELLED),
    65: Refusal("verifyRequest", None, 321, _NOT_MODELLED),
    66: Refusal("verifyMessage", None, 321, _NOT_MODELLED),
    67: Refusal("queryDisplayGroups", 2, 321, "display groups are " + _NOT_MODELLED),
    68: Refusal("subscribeToGroupEvents", 2, 321, "display groups are " + _NOT_MODELLED),
    69: Refusal("updateDisplayGroup", 2, 321, "display groups are " + _NOT_MODELLED),
    72: Refusal("verifyAndAuthRequest", None, 321, _NOT_MODELLED),
    73: Refusal("verifyAndAuthMessage", None, 321, _NOT_MODELLED),
    74: Refusal("reqPositionsMulti", 2, 321, "model portfolios are " + _NOT_MODELLED),
    79: Refusal("reqSoftDollarTiers", 1, 321, _NOT_MODELLED),
    80: Refusal("reqFamilyCodes", None, 321, _NOT_MODELLED),
    82: Refusal("reqMktDepthExchanges", None, 321, _NOT_MODELLED),
    83: Refusal("reqSmartComponents", 1, 321, _NOT_MODELLED),
    84: Refusal("reqNewsArticle", 1, 321, "news articles are " + _NOT_MODELLED),
    86: Refusal("reqHistoricalNews", 1, 321, "historical news is " + _NOT_MODELLED),
    88: Refusal("reqHistogramData", 1, 321, "histogram data is " + _NOT_MODELLED),
    100: Refusal("reqWshMetaData", 1, 321, "Wall Street Horizon data is " + _NOT_MODELLED),
    102: Refusal("reqWshEventData", 1, 321, "Wall Street Horizon data is " + _NOT_MODELLED),
    108: Refusal("reqConfig", 1, 321, _NOT_MODELLED),
    109: Refusal("updateConfig", 1, 321, _NOT_MODELLED),
}

#: id -> why a real Gateway sends nothing back for it.
SILENT: dict[int, str] = {
    2: "cancelMktData of a live line: the stream just stops (an unknown id gets error 300)",
    11: "cancelMktDepth: the stream just stops",
    12: "reqNewsBulletins: a subscription that speaks only when IB publishes a bulletin",
    13: "cancelNewsBulletins",
    15: "reqAutoOpenOrders: a setting for client 0",
    23: "cancelScannerSubscription",
    25: "cancelHistoricalData of a running keepUpToDate request (an unknown id gets error 366)",
    51: "cancelRealTimeBars",
    56: "cancelCalculateImpliedVolatility",
    57: "cancelCalculateOptionPrice",
    59: "reqMarketDataType: a setting, reported with the next reqMktData",
    63: "cancelAccountSummary",
    64: "cancelPositions",
    70: "unsubscribeFromGroupEvents",
    71: "startApi after the session started",
    75: "cancelPositionsMulti",
    77: "cancelAccountUpdatesMulti",
    89: "cancelHistogramData",
    90: "cancelHeadTimeStamp",
    93: "cancelPnL",
    95: "cancelPnLSingle",
    98: "cancelTickByTickData",
    101: "cancelWshMetaData",
    103: "cancelWshEventData",
    106: "cancelContractData",
    107: "cancelHistoricalTicks",
}
