"""The order helpers every active probe shares: quotes, send, wait for fills, cancel, close, clean up.

Why event-driven: fill latency is measured from just before placeOrder to the arrival of the
execution report; a polling loop would add up to its period in error. "Arrival" is the moment the
socket read holding the execDetails message came in (ib_async stamps it as ``Fill.time`` for live
fills), not the moment our handler runs: the same read usually carries the openOrder/orderStatus
messages sent ahead of the execution, and their handling (ib_async's own, and our journal writes)
is work in this process, not time the order path took. Why paced: ib_async queues messages beyond
45 per second in the client (``Client.MaxRequests``); an order held there measures our queue, not
the Gateway, so orders and cancels wait for a slot of the pacing governor before the clock starts.
Why here: each probe then reads as its scenario, and the journal is kept current in one place
(every status and execution of an order carrying our orderRef prefix is written as it arrives).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

from ib_async import IB, Contract, Fill, LimitOrder, Ticker, Trade
from loguru import logger

from gatewatch.config import ActiveConfig
from gatewatch.ib.connect import connect
from probes.active.guard import OrderRefused, PaperGuard, SentOrder
from probes.active.holdings import Holding, reconcile
from probes.active.journal import Journal
from probes.active.pacing import PacingGovernor
from probes.outcome import ProbeFailure as ProbeFailure  # the one probe failure, re-exported
from probes.state import ProbeState

DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")
NOT_DONE = "NOT "
"""A clean-up or flatten line starting so names something left undone (flatten then exits 1)."""
CANCEL_OF_FILLED = (161, 10148)
DELIBERATE_ESCALATION = "close_retry"
"""The probe whose close escalates by design; its escalation is logged as information."""
DATA_LOST = 1101
"""Connectivity restored, data lost: the Gateway has dropped every market data subscription."""
MARKETABLE_COLLAR = 0.001
"""A buy limit sits this fraction (at least two ticks) above the ask it was priced from (a sell
as far below the bid).

Why: the quote we price from is already old when the order arrives; if the ask ticked up in
between, a limit exactly at the old ask rests instead of filling and the fill probe fails for a
reason that says nothing about the order path. The order still fills at the best ask; the collar
only bounds how far the price may have moved (and the guard's notional cap applies to it)."""


@dataclass
class FillResult:
    """What waiting for an order's fill saw."""

    filled: float
    status: str
    latency: float | None
    avg_price: float


@dataclass
class OrderErrors:
    """API errors per order id (201 reasons, 161 on cancel-after-fill, ...)."""

    by_order: dict[int, list[tuple[int, str]]] = field(default_factory=dict)

    def codes(self, order_id: int) -> list[int]:
        return [code for code, _ in self.by_order.get(order_id, [])]

    def text(self, order_id: int, code: int) -> str:
        return next((msg for c, msg in self.by_order.get(order_id, []) if c == code), "")


def round_tick(price: float, tick: float = 0.01) -> float:
    return round(round(price / tick) * tick, 2)


def marketable_buy_limit(ask: float, tick: float = 0.01) -> float:
    """The limit for a marketable buy priced from ``ask``: ask + collar, rounded up to a tick."""
    collar = max(2 * tick, ask * MARKETABLE_COLLAR)
    return round(math.ceil((ask + collar) / tick - 1e-9) * tick, 2)


def marketable_sell_limit(bid: float, tick: float = 0.01) -> float:
    """The limit for a marketable sell priced from ``bid``: bid - collar, rounded down, >= 1 tick."""
    collar = max(2 * tick, bid * MARKETABLE_COLLAR)
    return max(tick, round(math.floor((bid - collar) / tick + 1e-9) * tick, 2))


def floor_tick(price: float, tick: float = 0.01) -> float:
    return round(math.floor(price / tick + 1e-9) * tick, 2)


class ProbeOrders:
    """Order helpers on one connection; keeps the journal in step with the Gateway."""

    def __init__(
        self,
        ib: IB,
        guard: PaperGuard,
        journal: Journal,
        active: ActiveConfig,
        governor: PacingGovernor,
        metrics: ProbeState | None = None,
    ) -> None:
        self.ib = ib
        self.guard = guard
        self.journal = journal
        self.active = active
        self.governor = governor
        self.metrics = metrics
        self.errors = OrderErrors()
        self.first_fill_at: dict[str, float] = {}
        self.sent_at: dict[str, float] = {}
        self.resting: set[str] = set()
        """Refs of orders priced to rest (close_retry's first close, the cancel probe's buy): their
        time to fill measures the market coming to them, not the order path, so it is kept out of
        the fill latency (``marketable_latencies``, ``gatewatch_order_fill_latency_seconds``)."""
        self._observed: set[str] = set()
        self.client_throttled = 0
        self._tickers: dict[int, Ticker] = {}
        ib.orderStatusEvent += self._on_status
        ib.execDetailsEvent += self._on_exec
        ib.errorEvent += self._on_error
        ib.client.throttleStart += self._on_throttle

    def detach(self) -> None:
        """Stop listening to the connection and cancel the quote subscriptions."""
        self.ib.orderStatusEvent -= self._on_status
        self.ib.execDetailsEvent -= self._on_exec
        self.ib.errorEvent -= self._on_error
        self.ib.client.throttleStart -= self._on_throttle
        for ticker in self._tickers.values():
            if ticker.contract is not None:
                self.ib.cancelMktData(ticker.contract)
        self._tickers.clear()

    # ----------------------------------------------------------------- journal sync
    def _on_status(self, trade: Trade) -> None:
        ref = trade.order.orderRef
        if self.guard.owns(ref):
            s = trade.orderStatus
            self.journal.update_status(ref, s.status, s.filled, s.avgFillPrice)

    def _on_exec(self, trade: Trade, fill: Fill) -> None:
        ref = fill.execution.orderRef or trade.order.orderRef
        if self.guard.owns(ref):
            self.first_fill_at.setdefault(ref, arrival_time(fill))
            self.record_fill(fill)

    def _on_throttle(self) -> None:
        self.client_throttled += 1
        logger.warning("ib_async is queueing requests (over 45 per second): a latency measured now includes it")

    def record_fill(self, fill: Fill) -> None:
        ex = fill.execution
        if self.guard.owns(ex.orderRef):
            self.journal.record_fill(
                exec_id=ex.execId,
                order_ref=ex.orderRef,
                con_id=fill.contract.conId,
                side=ex.side,
                shares=float(ex.shares),
                price=float(ex.price),
            )

    def _on_error(self, req_id: int, code: int, message: str, contract: Contract | None = None) -> None:
        if req_id > 0:
            self.errors.by_order.setdefault(req_id, []).append((code, message))
        elif code == DATA_LOST:
            self._renew_quotes()

    def _renew_quotes(self) -> None:
        """After 1101 the Gateway has dropped every subscription: request the probes' quotes again.

        Why at once and here: a probe pricing an order from a stream that no longer updates would
        price from a stale quote, or wait out its timeout and fail for a reason that is not the order
        path. The old tickers are cancelled (ib_async forgets them) and fresh ones replace them.
        """
        for con_id, ticker in list(self._tickers.items()):
            contract = ticker.contract
            if contract is None:
                continue
            self.ib.cancelMktData(contract)
            renewed = self.ib.reqMktData(contract, "", False, False)
            renewed.bid = renewed.ask = math.nan  # ib_async may hand back the old object: no stale price
            self._tickers[con_id] = renewed
        if self._tickers:
            logger.info("quotes restored after 1101 (data lost): {} probe quote stream(s) renewed", len(self._tickers))

    # ----------------------------------------------------------------- quotes
    async def quote(self, contract: Contract, timeout: float | None = None) -> tuple[float, float]:
        """Current (bid, ask) from a streaming subscription kept for the run."""
        ticker = self._tickers.get(contract.conId)
        if ticker is None:
            await self.governor.ready()
            ticker = self.ib.reqMktData(contract, "", False, False)
            self._tickers[contract.conId] = ticker
        deadline = time.monotonic() + (timeout or self.active.fill_timeout)
        while not (_valid(ticker.bid) and _valid(ticker.ask)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProbeFailure(
                    f"no bid/ask for {contract.localSymbol or contract.symbol} "
                    f"within {timeout or self.active.fill_timeout:g} s"
                )
            await _next_update(ticker, remaining)
        return float(ticker.bid), float(ticker.ask)

    # ----------------------------------------------------------------- orders
    def find_sent(self, order_ref: str) -> Trade | None:
        """The Gateway's (this session's) trade carrying ``order_ref``, if any."""
        return next((t for t in self.ib.trades() if t.order.orderRef == order_ref), None)

    def limit(
        self,
        contract: Contract,
        action: str,
        price: float,
        *,
        probe: str,
        quantity: float = 1,
        order_ref: str | None = None,
        reducing: bool = False,
        resting: bool = False,
    ) -> SentOrder:
        """Send a DAY limit order through the guard (``reducing``: it only reduces what the probes hold;
        ``resting``: priced away from the market on purpose, so its fill is no latency sample).

        With ``order_ref`` this is a retry: if the journal or the Gateway (open orders, executions)
        already knows that ref, the existing order is returned and nothing is sent again.
        """
        if order_ref is not None:
            existing = self.find_sent(order_ref)
            if existing is not None:
                logger.info(
                    "retry of {}: already sent as order {}, not sending again",
                    order_ref,
                    existing.order.orderId,
                )
                return SentOrder(existing, order_ref, math.nan)
            if self.journal.get(order_ref) is not None:
                raise ProbeFailure(f"{order_ref} is journalled but unknown to the Gateway: not resending")
        order = LimitOrder(action, quantity, round_tick(price), tif="DAY")
        sent = self.guard.place(contract, order, probe=probe, order_ref=order_ref, reducing=reducing)
        self.sent_at[sent.order_ref] = sent.sent_at
        if resting:
            self.resting.add(sent.order_ref)
        return sent

    async def pace(self) -> None:
        """Wait for a pacing slot (and any back-off) before an order message leaves."""
        await self.governor.ready()

    async def send_limit(
        self,
        contract: Contract,
        action: str,
        price: float,
        *,
        probe: str,
        quantity: float = 1,
        order_ref: str | None = None,
        reducing: bool = False,
        resting: bool = False,
    ) -> SentOrder:
        """:meth:`limit`, after a pacing slot: the way every probe sends an order."""
        await self.pace()
        return self.limit(
            contract,
            action,
            price,
            probe=probe,
            quantity=quantity,
            order_ref=order_ref,
            reducing=reducing,
            resting=resting,
        )

    async def wait_done_or_filled(self, sent: SentOrder, timeout: float) -> FillResult:
        """Wait (events, not polling) until the order is fully filled or done, or ``timeout``."""
        trade = sent.trade
        event = asyncio.Event()

        def check(*_: object) -> None:
            if trade.orderStatus.status in DONE or trade.remaining() <= 0 < trade.filled():
                event.set()

        trade.statusEvent += check
        trade.fillEvent += check
        check()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            trade.statusEvent -= check
            trade.fillEvent -= check
        first = self.first_fill_at.get(sent.order_ref)
        latency = first - sent.sent_at if first is not None and math.isfinite(sent.sent_at) else None
        filled = float(trade.filled())
        ref = sent.order_ref
        if latency is not None and ref not in self.resting and ref not in self._observed:
            self._observed.add(ref)
            if self.metrics:
                self.metrics.fill_latency.observe(latency)
        return FillResult(filled, trade.orderStatus.status, latency, float(trade.orderStatus.avgFillPrice))

    async def cancel(self, sent: SentOrder, timeout: float | None = None) -> str:
        """Cancel one of our orders by id and wait for a final state; returns it."""
        trade = sent.trade
        if not self.guard.owns(trade.order.orderRef):
            raise ProbeFailure(f"refusing to cancel order {trade.order.orderId}: not a probe order")
        if trade.orderStatus.status not in DONE:
            await self.pace()
            self.ib.cancelOrder(trade.order)
        await self.wait_done_or_filled(sent, timeout or self.active.cancel_timeout)
        return trade.orderStatus.status

    async def buy_marketable(self, contract: Contract, *, probe: str) -> tuple[SentOrder, FillResult]:
        """Buy one with a marketable limit (the ask plus a small collar) and wait for the fill."""
        _, ask = await self.quote(contract)
        sent = await self.send_limit(contract, "BUY", marketable_buy_limit(ask), probe=probe)
        result = await self.wait_done_or_filled(sent, self.active.fill_timeout)
        if result.filled < sent.trade.order.totalQuantity:
            await self.cancel(sent)
            reasons = "; ".join(msg for _, msg in self.errors.by_order.get(sent.trade.order.orderId, []))
            raise ProbeFailure(
                f"buy at the ask {ask} not filled within {self.active.fill_timeout:g} s "
                f"(status {result.status}, filled {result.filled:g}){': ' + reasons if reasons else ''}"
            )
        return sent, result

    async def close(
        self,
        contract: Contract,
        quantity: float,
        *,
        probe: str,
        first_price: float | None = None,
        wait: float | None = None,
    ) -> int:
        """Sell ``quantity`` (one order per max_quantity lot) to close; returns re-prices used.

        Each lot starts at ``first_price`` (default: marketable, the bid less the collar). A lot
        that does not fill within ``close_retry_wait`` is re-priced toward the mid (halving the
        distance; a price already at or below the mid becomes marketable from the current bid), at
        most ``close_retry_attempts`` times; then the close escalates
        (``gatewatch_order_close_escalations_total{probe}``, a loud log line) and is made marketable
        from the bid so nothing is left behind. The ``probe`` label lets the alert tell the close_retry
        probe's deliberate escalation from one that needs a human.

        ``quantity`` may not exceed what the journal and the Gateway agree the probes hold
        (:meth:`reducible`); asking for more fails loudly and sends nothing.
        """
        held = await self.reducible(contract)
        if quantity > held + 1e-9:
            raise ProbeFailure(
                f"refusing to sell {quantity:g} of {contract.localSymbol or contract.symbol}: the journal and "
                f"the Gateway agree the probes hold {held:g}"
            )
        reprices = 0
        wait = wait or self.active.close_retry_wait
        remaining = quantity
        while remaining > 1e-9:
            lot = min(remaining, float(self.active.max_quantity))
            bid, _ = await self.quote(contract)
            price = first_price or marketable_sell_limit(bid)
            sent = await self.send_limit(
                contract, "SELL", price, probe=probe, quantity=lot, reducing=True, resting=first_price is not None
            )
            result = await self.wait_done_or_filled(sent, wait)
            attempt = 0
            while (
                result.filled < lot
                and result.status not in DONE
                and attempt < self.active.close_retry_attempts
            ):
                attempt += 1
                bid, ask = await self.quote(contract)
                mid = (bid + ask) / 2
                old = float(sent.trade.order.lmtPrice or 0.0)
                new = round_tick(mid + (old - mid) / 2) if old > mid else marketable_sell_limit(bid)
                logger.info(
                    "close {} not filled at {}: re-pricing to {} (attempt {}/{})",
                    sent.order_ref,
                    old,
                    new,
                    attempt,
                    self.active.close_retry_attempts,
                )
                await self.pace()
                self.guard.modify_price(sent, new)
                result = await self.wait_done_or_filled(sent, wait)
            reprices += attempt
            if result.filled < lot and result.status not in DONE:
                if self.metrics:
                    self.metrics.close_escalations[probe] += 1
                # close_retry escalates on purpose (it proves this path): not an error then.
                logger.log(
                    "INFO" if probe == DELIBERATE_ESCALATION else "ERROR",
                    "close escalation: {} not filled after {} re-prices; closing at the bid now{}",
                    sent.order_ref,
                    attempt,
                    " (as the close_retry probe intends)" if probe == DELIBERATE_ESCALATION else "",
                )
                bid, _ = await self.quote(contract)
                await self.pace()
                self.guard.modify_price(sent, marketable_sell_limit(bid))
                result = await self.wait_done_or_filled(sent, self.active.fill_timeout)
            if result.filled < lot:
                await self.cancel(sent)
                raise ProbeFailure(
                    f"close {sent.order_ref} not filled (status {result.status}, "
                    f"filled {result.filled:g}/{lot:g})"
                )
            remaining -= lot
        return reprices

    async def _cancel_as_earlier_client(self, client: int, refs: set[str]) -> list[str]:
        """Cancel journalled probe orders placed under an earlier ``probe_client_id`` (changed since).

        Why a short connection under that id: the Gateway replays an order, and lets it be cancelled,
        only to the client id that placed it; from ours it is invisible, so it would be taken for
        gone while still working. Its executions are recorded too. If that id is in use (326) the
        orders stay open in the journal and are named, so the next start tries again.
        """
        ib = IB()
        try:
            await connect(ib, self.guard.config.gateway, client)
        except (ConnectionError, TimeoutError, OSError) as exc:
            return [f"{NOT_DONE}cancelled {', '.join(sorted(refs))}: placed under client id {client}, which "
                    f"cannot connect now ({type(exc).__name__} {exc})"]
        done = []
        try:
            for fill in ib.fills():
                self.record_fill(fill)
            working = [t for t in ib.openTrades() if t.order.orderRef in refs]
            for trade in working:
                await self.pace()
                ib.cancelOrder(trade.order)
            for trade in working:
                ref = trade.order.orderRef
                await self.wait_done_or_filled(SentOrder(trade, ref, math.nan), self.active.cancel_timeout)
                status = trade.orderStatus.status
                self.journal.update_status(ref, status, trade.orderStatus.filled)
                if status in DONE:
                    done.append(f"cancelled {ref} (id {trade.order.orderId}, client {client})")
                else:
                    done.append(f"{NOT_DONE}cancelled {ref} (client {client}): {status}")
            for ref in refs - {t.order.orderRef for t in working}:
                self.journal.update_status(ref, "Gone")
        finally:
            ib.disconnect()
        return done

    def marketable_latencies(self) -> list[float]:
        """placeOrder -> first execution of every marketable order that filled (resting ones left out)."""
        return [
            self.first_fill_at[ref] - sent_at
            for ref, sent_at in self.sent_at.items()
            if ref in self.first_fill_at and ref not in self.resting and math.isfinite(sent_at)
        ]

    # ----------------------------------------------------------------- clean-up
    async def held_by_gateway(self) -> dict[int, tuple[Contract, float]]:
        """Positions per conId as the Gateway reports them now."""
        positions = await asyncio.wait_for(self.ib.reqPositionsAsync(), self.active.cancel_timeout)
        return {
            p.contract.conId: (p.contract, float(p.position))
            for p in positions
            if p.account == self.guard.account
        }

    async def holdings(self, *, log: bool = True) -> dict[int, Holding]:
        """The probes' holdings, journal against Gateway; exports (and loudly logs) disagreements."""
        held = await self.held_by_gateway()
        found = reconcile(self.journal.net_positions(), {c: q for c, (_, q) in held.items()})
        bad = [h for h in found.values() if not h.agrees]
        if self.metrics:
            self.metrics.position_disagreements = len(bad)
        for h in bad if log else []:
            logger.error(
                "PROBE POSITION DISAGREEMENT {}: nothing will be sold or bought for it; "
                "see `gatewatch flatten --repair`",
                h.describe(),
            )
        return found

    async def reducible(self, contract: Contract, grace: float | None = None) -> float:
        """What a close may sell in ``contract``: the journal's position, if the Gateway agrees.

        A disagreement is re-read for ``grace`` seconds (default ``cancel_timeout``) first: the
        Gateway's position message can trail the execution report by a moment. Then it fails
        loudly (ProbeFailure), exported as ``gatewatch_probe_position_disagreements``.
        """
        deadline = time.monotonic() + (self.active.cancel_timeout if grace is None else grace)
        while True:
            last = time.monotonic() >= deadline
            found = await self.holdings(log=last)
            holding = found.get(contract.conId, Holding(contract.conId, 0.0, 0.0))
            if holding.agrees:
                return max(holding.reducible, 0.0)
            if last:
                raise ProbeFailure(
                    f"probe position disagreement, {holding.describe()}: nothing sold "
                    "(a close could open a position nobody asked for); see `gatewatch flatten --repair`"
                )
            await asyncio.sleep(0.25)

    async def settle(self) -> list[str]:
        """Cancel our working orders (one by id) and wait for each to end; the journal is then current.

        Each order either ends cancelled or fills first (a cancel can race a fill); its fills are
        recorded either way. Sends no new order: this is all a stop may do (see
        :mod:`probes.active.stopping`). Journalled orders the Gateway no longer shows are marked so.
        """
        actions: list[str] = []
        for trade in list(self.ib.openTrades()):
            if self.guard.owns(trade.order.orderRef) and trade.order.clientId == self.ib.client.clientId:
                await self.pace()
                self.ib.cancelOrder(trade.order)
                actions.append(f"cancelled {trade.order.orderRef} (id {trade.order.orderId})")
        for trade in list(self.ib.openTrades()):
            if self.guard.owns(trade.order.orderRef):
                await self.wait_done_or_filled(
                    SentOrder(trade, trade.order.orderRef, math.nan), self.active.cancel_timeout
                )
        for fill in self.ib.fills():
            self.record_fill(fill)
        open_refs = {t.order.orderRef for t in self.ib.openTrades()}
        unseen = [row for row in self.journal.open_orders() if row.order_ref not in open_refs]
        mine = self.ib.client.clientId
        for client in sorted({row.client_id for row in unseen} - {mine}):
            refs = {row.order_ref for row in unseen if row.client_id == client}
            actions += await self._cancel_as_earlier_client(client, refs)
        for row in self.journal.open_orders():
            if row.order_ref not in open_refs and row.client_id == mine:
                known = self.find_sent(row.order_ref)
                self.journal.update_status(row.order_ref, known.orderStatus.status if known else "Gone")
        for trade in self.ib.openTrades():
            if self.guard.owns(trade.order.orderRef):
                logger.error("probe order {} still {} {:g} s after its cancel", trade.order.orderRef,
                             trade.orderStatus.status, self.active.cancel_timeout)
                actions.append(f"{NOT_DONE}cancelled {trade.order.orderRef} (id {trade.order.orderId}): still "
                               f"{trade.orderStatus.status} {self.active.cancel_timeout:g} s after its cancel")
        return actions

    async def cleanup(self, *, probe: str = "cleanup") -> list[str]:
        """Settle our orders (:meth:`settle`), then close what our probes hold; returns what was done.

        Only orders with our orderRef prefix are cancelled, one by id. Positions closed are the
        journal's net probe position per contract when the Gateway agrees (:mod:`holdings`), so a
        position opened by the trading bot or by hand is never touched, and a disagreement is left
        for ``gatewatch flatten --repair`` instead of guessed at.
        """
        actions = await self.settle()
        held = await self.held_by_gateway()
        for con_id, holding in (await self.holdings()).items():
            contract = held.get(con_id, (None, 0.0))[0]
            if contract is None or holding.reducible <= 0:
                continue  # a disagreement: logged and exported by holdings(), repaired by flatten
            contract.exchange = contract.exchange or "SMART"
            name = contract.localSymbol or contract.symbol
            try:  # one contract that cannot be closed now must not keep the others open
                await self.close(contract, holding.reducible, probe=probe, wait=self.active.close_retry_wait)
            except (ProbeFailure, OrderRefused) as exc:
                logger.error("probe cleanup: {} of {} not closed: {}", holding.reducible, name, exc)
                actions.append(f"{NOT_DONE}closed {holding.reducible:g} of {name}: {exc}")
                continue
            actions.append(f"closed {holding.reducible:g} of {name}")
        for action in actions:
            if not action.startswith(NOT_DONE):  # those were logged as errors above
                logger.info("probe cleanup: {}", action)
        return actions


def arrival_time(fill: Fill) -> float:
    """Epoch seconds the execution report arrived (ib_async stamps live fills at the socket read)."""
    stamped = fill.time
    return stamped.timestamp() if stamped is not None and stamped.tzinfo is not None else time.time()


async def _next_update(ticker: Ticker, timeout: float) -> None:
    """Wait for the ticker's next update event (or the timeout)."""
    event = asyncio.Event()

    def on_update(*_: object) -> None:
        event.set()

    ticker.updateEvent += on_update
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        pass
    finally:
        ticker.updateEvent -= on_update


def _valid(price: float) -> bool:
    return price is not None and math.isfinite(price) and price > 0
