"""Orders, fills, positions and account values: a small model of IBKR's paper engine.

The broker owns state only; every client-visible consequence goes through the ``BrokerSink``
(implemented by the server), which knows which sessions must hear about what.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from simulator.contracts import Contract
from simulator.history import ET
from simulator.market import Market

OPEN_STATUSES = ("PendingSubmit", "PreSubmitted", "Submitted")
MIN_TICK = 0.01  # SPY, QQQ, IWM and their options (penny program): a cent at every price
TICK_TEXT = "The price does not conform to the minimum price variation for this contract."


def off_tick(price: float, tick: float = MIN_TICK) -> bool:
    return abs(round(price / tick) * tick - price) > 1e-7
STOCK_COMMISSION = 1.00
OPTION_COMMISSION = 0.65
STOCK_MARGIN = 0.25


@dataclass
class Order:
    orderId: int
    clientId: int
    permId: int
    contract: Contract
    action: str
    totalQuantity: float
    orderType: str
    lmtPrice: float
    tif: str
    account: str
    orderRef: str
    outsideRth: bool
    whatIf: bool
    parentId: int = 0
    auxPrice: float = float("nan")  # the stop price of STP orders
    ocaGroup: str = ""
    transmit: bool = True  # False: held by the Gateway (shown, not sent to the exchange)
    status: str = "PendingSubmit"
    filled: float = 0.0
    avgFillPrice: float = 0.0
    lastFillPrice: float = 0.0
    received_at: float = 0.0
    filled_at: float | None = None
    held: bool = False  # partial-fill fault: the remainder stays open and does not fill
    commission_charged: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> float:
        return self.totalQuantity - self.filled

    def to_state(self) -> dict[str, Any]:
        c = self.contract
        return {
            "orderId": self.orderId,
            "clientId": self.clientId,
            "permId": self.permId,
            "orderRef": self.orderRef,
            "account": self.account,
            "symbol": c.symbol,
            "secType": c.secType,
            "expiry": c.expiry,
            "strike": c.strike,
            "right": c.right,
            "action": self.action,
            "totalQuantity": self.totalQuantity,
            "orderType": self.orderType,
            "lmtPrice": self.lmtPrice if self.orderType == "LMT" else None,
            "status": self.status,
            "filled": self.filled,
            "avgFillPrice": self.avgFillPrice,
            "received_at": self.received_at,
            "filled_at": self.filled_at,
            "whatIf": self.whatIf,
        }


@dataclass
class Execution:
    execId: str
    orderId: int
    clientId: int
    permId: int
    contract: Contract
    account: str
    side: str  # BOT / SLD
    shares: float
    price: float
    cumQty: float
    avgPrice: float
    orderRef: str
    time: float
    commission: float
    realized_pnl: float | None = None
    exchange: str = "ISLAND"

    @property
    def time_str(self) -> str:
        return dt.datetime.fromtimestamp(self.time, ET).strftime("%Y%m%d %H:%M:%S") + " US/Eastern"

    @property
    def realized_pnl_str(self) -> str:
        return "1.7976931348623157E308" if self.realized_pnl is None else f"{self.realized_pnl:.2f}"

    def to_state(self) -> dict[str, Any]:
        c = self.contract
        return {
            "execId": self.execId,
            "orderId": self.orderId,
            "clientId": self.clientId,
            "permId": self.permId,
            "symbol": c.symbol,
            "secType": c.secType,
            "expiry": c.expiry,
            "strike": c.strike,
            "right": c.right,
            "side": self.side,
            "shares": self.shares,
            "price": self.price,
            "orderRef": self.orderRef,
            "account": self.account,
            "commission": self.commission,
            "time": self.time,
        }


@dataclass
class Position:
    contract: Contract
    qty: float = 0.0
    avg_cost: float = 0.0  # per unit including multiplier and commission, like IB
    realized: float = 0.0


class BrokerSink(Protocol):
    def order_update(self, order: Order, *, open_order: bool = True, status: bool = True) -> None: ...
    def fill(self, order: Order, execution: Execution) -> None: ...
    def order_error(self, order: Order, code: int, text: str) -> None: ...
    def portfolio_changed(self, contracts: list[Contract]) -> None: ...


@dataclass
class PendingFaults:
    """One-shot order faults armed through the control API."""

    reject_reason: str | None = None
    partial_fraction: float | None = None


class Broker:
    def __init__(
        self,
        account: str,
        cash: float,
        market: Market,
        clock: Callable[[], float],
        sink: BrokerSink,
        seed: int = 0,
    ) -> None:
        self.account = account
        self.cash = cash
        self.market = market
        self.clock = clock
        self.sink = sink
        self.orders: dict[tuple[int, int], Order] = {}
        self.all_orders: list[Order] = []
        self.executions: list[Execution] = []
        self.positions: dict[int, Position] = {}
        self.max_order_id: dict[int, int] = {}
        self.pending = PendingFaults()
        self.manual_undo: list[tuple[Execution, tuple[float, float, float]]] = []
        self._perm = itertools.count(1_200_000_000 + (seed % 1000) * 100_000)
        self._exec = itertools.count(1)
        self._exec_base = 0x0001A000 + seed % 4096
        self.market_open: Callable[[], bool] = lambda: True
        self.extended_open: Callable[[], bool] = lambda: True  # outside-RTH orders trade only then

    # ----------------------------------------------------------------- account
    def account_values(self) -> dict[str, tuple[str, str]]:
        """Tag -> (value, currency), computed from cash and marked positions."""
        now = self.clock()
        stock_val = opt_val = gross = unreal = realized = 0.0
        for p in self.positions.values():
            if p.qty == 0:
                realized += p.realized
                continue
            mark = self.market.mark(p.contract, now)
            val = p.qty * mark * p.contract.multiplier
            if p.contract.secType == "OPT":
                opt_val += val
            else:
                stock_val += val
            gross += abs(val)
            unreal += val - p.qty * p.avg_cost
            realized += p.realized
        netliq = self.cash + stock_val + opt_val
        init = abs(stock_val) * STOCK_MARGIN + abs(opt_val)
        maint = abs(stock_val) * STOCK_MARGIN + abs(opt_val)
        avail = netliq - init
        usd = "USD"
        vals = {
            "AccountCode": (self.account, ""),
            "AccountType": ("INDIVIDUAL", ""),
            "NetLiquidation": (f"{netliq:.2f}", usd),
            "TotalCashValue": (f"{self.cash:.2f}", usd),
            "SettledCash": (f"{self.cash:.2f}", usd),
            "CashBalance": (f"{self.cash:.2f}", usd),
            "BuyingPower": (f"{max(avail, 0.0) * 4:.2f}", usd),
            "AvailableFunds": (f"{avail:.2f}", usd),
            "ExcessLiquidity": (f"{netliq - maint:.2f}", usd),
            "Cushion": (f"{(netliq - maint) / netliq if netliq else 0:.6f}", ""),
            "DayTradesRemaining": ("-1", ""),
            "GrossPositionValue": (f"{gross:.2f}", usd),
            "StockMarketValue": (f"{stock_val:.2f}", usd),
            "OptionMarketValue": (f"{opt_val:.2f}", usd),
            "EquityWithLoanValue": (f"{netliq:.2f}", usd),
            "InitMarginReq": (f"{init:.2f}", usd),
            "MaintMarginReq": (f"{maint:.2f}", usd),
            "FullInitMarginReq": (f"{init:.2f}", usd),
            "FullMaintMarginReq": (f"{maint:.2f}", usd),
            "Leverage": (f"{gross / netliq if netliq else 0:.4f}", ""),
            "UnrealizedPnL": (f"{unreal:.2f}", usd),
            "RealizedPnL": (f"{realized:.2f}", usd),
            "Currency": ("USD", "USD"),
            "AccruedCash": ("0.00", usd),
            "PreviousDayEquityWithLoanValue": (f"{netliq:.2f}", usd),
            "RegTEquity": (f"{netliq:.2f}", usd),
            "RegTMargin": (f"{init * 2:.2f}", usd),
            "SMA": (f"{max(avail, 0.0):.2f}", usd),
            "FullAvailableFunds": (f"{avail:.2f}", usd),
            "FullExcessLiquidity": (f"{netliq - maint:.2f}", usd),
            "LookAheadNextChange": ("0", ""),
            "LookAheadInitMarginReq": (f"{init:.2f}", usd),
            "LookAheadMaintMarginReq": (f"{maint:.2f}", usd),
            "LookAheadAvailableFunds": (f"{avail:.2f}", usd),
            "LookAheadExcessLiquidity": (f"{netliq - maint:.2f}", usd),
            "HighestSeverity": ("0", ""),
            "DayTradesRemainingT+1": ("-1", ""),
            "DayTradesRemainingT+2": ("-1", ""),
            "DayTradesRemainingT+3": ("-1", ""),
            "DayTradesRemainingT+4": ("-1", ""),
        }
        return vals

    def ledger_value(self, tag: str, currency: str) -> str:
        """One $LEDGER tag in one currency (the account holds USD only; BASE is USD)."""
        vals = self.account_values()
        same = {"CashBalance": "CashBalance", "TotalCashBalance": "CashBalance", "StockMarketValue":
                "StockMarketValue", "OptionMarketValue": "OptionMarketValue", "NetLiquidationByCurrency":
                "NetLiquidation", "UnrealizedPnL": "UnrealizedPnL", "RealizedPnL": "RealizedPnL"}
        if tag in same:
            return vals[same[tag]][0]
        if tag == "ExchangeRate":
            return "1.00"
        if tag == "AccountOrGroup":
            return self.account
        if tag == "RealCurrency":
            return "USD"
        return "0.00"

    def buying_power(self) -> float:
        return float(self.account_values()["BuyingPower"][0])

    # ----------------------------------------------------------------- orders
    def next_valid_id(self, client_id: int) -> int:
        return self.max_order_id.get(client_id, 0) + 1

    def new_perm_id(self) -> int:
        return next(self._perm)

    def _reference_price(self, o: Order) -> float:
        q = self.market.quote_for(o.contract, self.clock())
        if o.orderType == "LMT":
            return o.lmtPrice
        px = q.ask if o.action == "BUY" else q.bid
        return px if px > 0 else q.last

    def _increases_exposure(self, o: Order) -> bool:
        pos = self.positions.get(o.contract.conId)
        qty = pos.qty if pos else 0.0
        return qty >= 0 if o.action == "BUY" else qty <= 0

    def margin_impact(self, o: Order) -> dict[str, float]:
        """What-if numbers: margin before/change/after as IB reports them."""
        vals = self.account_values()
        init = float(vals["InitMarginReq"][0])
        maint = float(vals["MaintMarginReq"][0])
        ewl = float(vals["EquityWithLoanValue"][0])
        # Margin is on the absolute exposure, before and after: a buy that covers a short lowers it,
        # one that turns it long raises it again; it is never below zero.
        px = self._reference_price(o) * o.contract.multiplier
        rate = STOCK_MARGIN if o.contract.secType == "STK" else 1.0
        pos = self.positions.get(o.contract.conId)
        held = pos.qty if pos else 0.0
        after_qty = held + (o.totalQuantity if o.action == "BUY" else -o.totalQuantity)
        change = (abs(after_qty) - abs(held)) * px * rate
        change = max(change, -init)
        comm = self._commission(o, o.totalQuantity)
        return {
            "initMarginBefore": init,
            "maintMarginBefore": maint,
            "equityWithLoanBefore": ewl,
            "initMarginChange": change,
            "maintMarginChange": change,
            "equityWithLoanChange": -comm,
            "initMarginAfter": init + change,
            "maintMarginAfter": maint + change,
            "equityWithLoanAfter": ewl - comm,
            "commission": comm,
        }

    def validate_new(self, o: Order) -> tuple[int, str] | None:
        """Checks a real Gateway performs before accepting an order."""
        if o.totalQuantity <= 0:
            return 434, "The order size cannot be zero."
        if o.orderType not in ("LMT", "MKT", "STP"):
            return 387, f"Unsupported order type for this exchange and security type: {o.orderType}"
        if o.orderType == "LMT" and (not math.isfinite(o.lmtPrice) or o.lmtPrice <= 0 or off_tick(o.lmtPrice)):
            return 110, TICK_TEXT
        if o.orderType == "STP" and (not math.isfinite(o.auxPrice) or o.auxPrice <= 0 or off_tick(o.auxPrice)):
            return 110, TICK_TEXT
        if o.action not in ("BUY", "SELL"):
            return 10, f"Invalid action: {o.action}"
        if self._increases_exposure(o):
            notional = o.totalQuantity * self._reference_price(o) * o.contract.multiplier
            bp = self.buying_power()
            if notional > bp:
                vals = self.account_values()
                return 201, (
                    "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED "
                    f"POSITION YOUR EQUITY WITH LOAN VALUE [{float(vals['EquityWithLoanValue'][0]):.2f} USD] "
                    f"MUST EXCEED THE INITIAL MARGIN [{notional * STOCK_MARGIN:.2f} USD]"
                )
        return None

    def place(self, o: Order) -> None:
        """Handle a new (non-whatIf) order: reject, rest or fill it and tell the sink."""
        self.all_orders.append(o)
        self.orders[(o.clientId, o.orderId)] = o
        self.max_order_id[o.clientId] = max(self.max_order_id.get(o.clientId, 0), o.orderId)
        problem = self.validate_new(o)
        if problem is None and self.pending.reject_reason is not None:
            problem = (201, f"Order rejected - reason:{self.pending.reject_reason}")
            self.pending.reject_reason = None
        if problem is not None:
            o.status = "Inactive"
            code, text = problem
            self.sink.order_error(o, code, text)
            self.sink.order_update(o, open_order=True, status=True)
            return
        o.status = "PreSubmitted"
        self.sink.order_update(o)
        if not o.transmit:
            return  # held: a bracket's parent and first child wait for the last leg's transmit
        for held in self._held_family(o):
            held.transmit = True
            self._activate(held)
        self._activate(o)

    def _held_family(self, o: Order) -> list[Order]:
        """Held orders that the transmit of ``o`` sends with it: its parent and the parent's
        other children (IBKR: a bracket is sent with transmit false on all but the last leg)."""
        if not o.parentId:
            return []
        return [
            x for x in self.orders.values()
            if x.clientId == o.clientId and x is not o and not x.transmit and x.is_open
            and (x.orderId == o.parentId or x.parentId == o.parentId)
        ]

    def _waiting(self, o: Order) -> bool:
        """Not working yet: held, or attached to a parent that has not filled."""
        if not o.transmit:
            return True
        parent = self.orders.get((o.clientId, o.parentId)) if o.parentId else None
        return parent is not None and parent.status != "Filled"

    def _activate(self, o: Order) -> None:
        if o.status != "PreSubmitted" or self._waiting(o) or not self._can_trade_now(o):
            return
        o.status = "Submitted"
        self.sink.order_update(o, open_order=False, status=True)
        self.try_fill(o, on_placement=True)

    def modify(self, o: Order, qty: float, lmt: float, order_type: str, transmit: bool = True) -> None:
        o.totalQuantity = qty
        o.lmtPrice = lmt
        o.orderType = order_type
        self.sink.order_update(o)
        if transmit and not o.transmit:
            o.transmit = True
            for held in self._held_family(o):
                held.transmit = True
                self._activate(held)
            self._activate(o)
        elif o.status == "Submitted":
            self.try_fill(o, on_placement=True)

    def _can_trade_now(self, o: Order) -> bool:
        return self.market_open() or (o.outsideRth and self.extended_open())

    def try_fill(self, o: Order, on_placement: bool = False) -> None:
        if not o.is_open or o.held or self._waiting(o):
            return
        q = self.market.quote_for(o.contract, self.clock())
        buy = o.action == "BUY"
        px: float | None = None
        if o.orderType == "STP":  # triggers when the market trades through the stop, fills at market
            side_px = q.ask if buy else q.bid
            triggered = side_px > 0 and (side_px >= o.auxPrice if buy else side_px <= o.auxPrice)
            px = side_px if triggered else None
        elif o.orderType == "MKT":
            side_px = q.ask if buy else q.bid
            px = side_px if side_px > 0 else None
        elif buy:
            if q.ask > 0 and o.lmtPrice >= q.ask:
                px = q.ask if on_placement else o.lmtPrice
        elif q.bid > 0 and o.lmtPrice <= q.bid:
            px = q.bid if on_placement else o.lmtPrice
        if px is None:
            return
        qty = o.remaining
        if self.pending.partial_fraction is not None:
            frac = self.pending.partial_fraction
            self.pending.partial_fraction = None
            o.held = True
            qty = max(1.0, math.floor(o.remaining * frac)) if o.remaining > 1 else 0.0
            if qty <= 0:
                return
        self._execute(o, qty, round(px, 2))

    def _commission(self, o: Order, qty: float) -> float:
        if o.contract.secType == "OPT":
            return round(OPTION_COMMISSION * qty, 2)
        return 0.0 if o.commission_charged else STOCK_COMMISSION

    def _execute(self, o: Order, qty: float, price: float) -> None:
        comm = self._commission(o, qty)
        o.commission_charged = True
        prev_val = o.filled * o.avgFillPrice
        o.filled += qty
        o.avgFillPrice = round((prev_val + qty * price) / o.filled, 6)
        o.lastFillPrice = price
        if o.remaining <= 1e-9:
            o.status = "Filled"
        signed = qty if o.action == "BUY" else -qty
        realized = self.apply_trade(o.contract, signed, price, comm)
        e = Execution(
            execId=f"{self._exec_base:08x}.{int(time.time()) & 0xFFFFFFFF:08x}.{next(self._exec):02d}.01",
            orderId=o.orderId,
            clientId=o.clientId,
            permId=o.permId,
            contract=o.contract,
            account=o.account,
            side="BOT" if o.action == "BUY" else "SLD",
            shares=qty,
            price=price,
            cumQty=o.filled,
            avgPrice=o.avgFillPrice,
            orderRef=o.orderRef,
            time=self.clock(),
            commission=comm,
            realized_pnl=realized,
        )
        self.executions.append(e)
        self.sink.fill(o, e)
        self.sink.portfolio_changed([o.contract])
        if o.status == "Filled":
            self._after_filled(o)

    def _after_filled(self, o: Order) -> None:
        """One-cancels-all: the group's other orders are cancelled (a bracket's children are one
        group without naming it); attached children start working."""
        for x in list(self.orders.values()):
            if x is o or x.clientId != o.clientId or not x.is_open:
                continue
            if (o.ocaGroup and x.ocaGroup == o.ocaGroup) or (o.parentId and x.parentId == o.parentId):
                x.status = "Cancelled"
                self.sink.order_update(x, open_order=False, status=True)
            elif x.parentId == o.orderId and o.orderId:
                self._activate(x)

    def manual_trade(self, c: Contract, signed_qty: float, price: float, *, report: bool = True) -> None:
        """A trade placed by hand in TWS (``report``): an unbound order (order id 0, client id 0, no
        orderRef) that fills at once and reaches client 0 and the Master API client through the sink
        like any other client's fill. Without ``report``, only the position and cash change, with no
        execution anywhere (a Gateway that lost its state, a change made outside the API)."""
        before = self.positions.get(c.conId)
        snapshot = (before.qty if before else 0.0, before.avg_cost if before else 0.0,
                    before.realized if before else 0.0)
        commission = STOCK_COMMISSION if c.secType == "STK" else OPTION_COMMISSION * abs(signed_qty)
        if not report:
            self.apply_trade(c, signed_qty, price, commission)
            e = Execution("", 0, 0, 0, c, self.account, "BOT" if signed_qty > 0 else "SLD", abs(signed_qty),
                          price, abs(signed_qty), price, "", self.clock(), commission)
            self.manual_undo.append((e, snapshot))
            self.sink.portfolio_changed([c])
            return
        o = Order(
            orderId=0,
            clientId=0,
            permId=self.new_perm_id(),
            contract=c,
            action="BUY" if signed_qty > 0 else "SELL",
            totalQuantity=abs(signed_qty),
            orderType="LMT",
            lmtPrice=price,
            tif="DAY",
            account=self.account,
            orderRef="",
            outsideRth=True,
            whatIf=False,
            status="Submitted",
            received_at=time.time(),
        )
        self.all_orders.append(o)
        self._execute(o, abs(signed_qty), price)
        self.manual_undo.append((self.executions[-1], snapshot))

    def undo_manual(self) -> list[Contract]:
        """Take back every manual trade (control API DELETE /faults): the position, cash and realized
        P&L move back by exactly what each trade did; its order and execution are forgotten."""
        touched: list[Contract] = []
        for e, (qty, avg, realized) in reversed(self.manual_undo):
            signed = e.shares if e.side == "BOT" else -e.shares
            mult = e.contract.multiplier
            self.cash += signed * e.price * mult + e.commission
            p = self.positions.setdefault(e.contract.conId, Position(e.contract))
            p.qty -= signed
            if abs(p.qty - qty) < 1e-9:
                p.qty, p.avg_cost, p.realized = qty, avg, realized
            if e in self.executions:
                self.executions.remove(e)
            if e.permId:
                self.all_orders = [o for o in self.all_orders if o.permId != e.permId]
            if e.contract not in touched:
                touched.append(e.contract)
        self.manual_undo.clear()
        return touched

    def apply_trade(self, c: Contract, signed_qty: float, price: float, commission: float) -> float | None:
        """Update cash and the position; return realized P&L when the trade reduced a position."""
        mult = c.multiplier
        self.cash -= signed_qty * price * mult + commission
        p = self.positions.setdefault(c.conId, Position(c))
        realized: float | None = None
        if p.qty == 0 or (p.qty > 0) == (signed_qty > 0):
            new_qty = p.qty + signed_qty
            p.avg_cost = (
                p.qty * p.avg_cost + signed_qty * price * mult + commission * math.copysign(1, signed_qty)
            ) / new_qty
            p.qty = new_qty
        else:
            closing = min(abs(signed_qty), abs(p.qty))
            sign = 1 if p.qty > 0 else -1
            realized = sign * closing * (price * mult - p.avg_cost) - commission
            p.realized += realized
            p.qty += signed_qty
            if abs(p.qty) < 1e-9:
                p.qty = 0.0
            elif (p.qty > 0) != (sign > 0):
                p.avg_cost = price * mult
        return realized

    def cancel(self, client_id: int, order_id: int) -> Order | None:
        """Cancel one order; returns it, or None when it is not in a cancellable state."""
        o = self.orders.get((client_id, order_id))
        if o is None or not o.is_open:
            return None
        o.status = "Cancelled"
        return o

    def open_orders(self, client_id: int | None = None) -> list[Order]:
        return [
            o for o in self.orders.values() if o.is_open and (client_id is None or o.clientId == client_id)
        ]

    def on_tick(self) -> None:
        """Promote orders waiting for the open and fill resting limits the walk has crossed."""
        market_open = self.market_open()
        extended = self.extended_open()
        for o in list(self.orders.values()):
            if not o.is_open or o.whatIf:
                continue
            if o.status == "PreSubmitted":
                if self._waiting(o) or not (market_open or (o.outsideRth and extended)):
                    continue
                o.status = "Submitted"
                self.sink.order_update(o, open_order=False, status=True)
                self.try_fill(o, on_placement=True)
            elif market_open or (o.outsideRth and extended):
                self.try_fill(o)

    def positions_state(self) -> list[dict[str, Any]]:
        out = []
        for p in self.positions.values():
            c = p.contract
            out.append(
                {
                    "account": self.account,
                    "conId": c.conId,
                    "symbol": c.symbol,
                    "secType": c.secType,
                    "expiry": c.expiry,
                    "strike": c.strike,
                    "right": c.right,
                    "position": p.qty,
                    "avgCost": round(p.avg_cost, 6),
                }
            )
        return out
