"""The simulated IB Gateway: listener, tick loop, fan-out of broker events and fault side effects."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from typing import Any

from loguru import logger

from simulator import faults as faultlib
from simulator import messages as m
from simulator import streams
from simulator.broker import Broker, Execution, Order
from simulator.config import SimConfig
from simulator.contracts import Contract, ContractRegistry
from simulator.faults import FARM_TEXT, Fault, FaultSet
from simulator.handlers import COMPETING, Handlers
from simulator.history import ET
from simulator.market import Market
from simulator.session import MktSub, Session
from simulator.wire import Fields

SUMMARY_TAGS = (
    "AccountType",
    "NetLiquidation",
    "TotalCashValue",
    "SettledCash",
    "AccruedCash",
    "BuyingPower",
    "EquityWithLoanValue",
    "PreviousDayEquityWithLoanValue",
    "GrossPositionValue",
    "RegTEquity",
    "RegTMargin",
    "SMA",
    "InitMarginReq",
    "MaintMarginReq",
    "AvailableFunds",
    "ExcessLiquidity",
    "Cushion",
    "FullInitMarginReq",
    "FullMaintMarginReq",
    "FullAvailableFunds",
    "FullExcessLiquidity",
    "LookAheadNextChange",
    "LookAheadInitMarginReq",
    "LookAheadMaintMarginReq",
    "LookAheadAvailableFunds",
    "LookAheadExcessLiquidity",
    "HighestSeverity",
    "DayTradesRemaining",
    "DayTradesRemainingT+1",
    "DayTradesRemainingT+2",
    "DayTradesRemainingT+3",
    "DayTradesRemainingT+4",
    "Leverage",
)
#: Tags of the $LEDGER groups (per currency; $LEDGER is the base currency, $LEDGER:ALL adds every
#: currency and the BASE summary, $LEDGER:USD one currency), as a real account summary sends them.
LEDGER_TAGS = (
    "CashBalance",
    "TotalCashBalance",
    "AccruedCash",
    "StockMarketValue",
    "OptionMarketValue",
    "FutureOptionValue",
    "FuturesPNL",
    "NetLiquidationByCurrency",
    "UnrealizedPnL",
    "RealizedPnL",
    "ExchangeRate",
    "FundValue",
    "NetDividend",
    "MutualFundValue",
    "MoneyMarketFundValue",
    "CorporateBondValue",
    "TBondValue",
    "TBillValue",
    "WarrantValue",
    "FxCashBalance",
    "AccountOrGroup",
    "RealCurrency",
    "IssuerOptionValue",
)


class Simulator:
    """A TWS-API speaking server with an IBKR-paper-like broker and fault injection."""

    def __init__(self, cfg: SimConfig | None = None) -> None:
        self.cfg = cfg or SimConfig()
        self.started_at = time.time()
        self.clock_shift = 0.0
        self.contracts = ContractRegistry(self.cfg.symbols)
        self.market = Market(self.cfg.symbols, self.cfg.seed, self.clock())
        self.broker = Broker(
            self.cfg.account, self.cfg.starting_cash, self.market, self.clock, self, seed=self.cfg.seed
        )
        self.broker.market_open = self.market_open
        self.broker.extended_open = self.quotes_open
        self.faults = FaultSet()
        self.handlers = Handlers(self)
        self.sessions: set[Session] = set()
        self._ticks = 0  # tick rounds so far: which session is served first (:meth:`_tick_order`)
        self.by_client: dict[int, Session] = {}
        self.port = self.cfg.port
        self.control_port: int | None = self.cfg.control_port
        self._server: asyncio.Server | None = None
        self._control: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._session_tasks: dict[asyncio.Task[None], Session] = {}  # every connection until fully closed
        self._stopping = False
        self._open_cache: tuple[float, bool, bool] = (0.0, True, True)
        self._calendar: Any = None
        if self.cfg.market == "calendar":
            from gatewatch.market_calendar import NYSE  # imported lazily: only calendar mode needs it

            self._calendar = NYSE

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, self.cfg.host, self.cfg.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.cfg.control_port is not None:
            from simulator.control import ControlServer

            self._control = ControlServer(self)
            self.control_port = await self._control.start(self.cfg.host, self.cfg.control_port)
        self._tasks.append(asyncio.create_task(self._tick_loop()))
        if self.cfg.scenario:
            from simulator.scenario import load_scenario

            timeline = load_scenario(self.cfg.scenario, self.cfg.symbols)
            self._tasks.append(asyncio.create_task(self._run_scenario(timeline)))
        logger.info(
            "simulated IB Gateway listening on {}:{} (account {}, master API client id {}, control {})",
            self.cfg.host,
            self.port,
            self.cfg.account,
            "none" if self.cfg.master_client_id is None else self.cfg.master_client_id,
            f"http://{self.cfg.host}:{self.control_port}" if self.control_port is not None else "off",
        )

    async def stop(self) -> None:
        """Stop listening, drop every connection and wait until each has fully closed.

        A connection the loop accepted just before the listener closed reaches ``_on_connect``
        only afterwards: it is closed there (``_stopping``), never left running on a stopped loop.
        """
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        if self._server is not None:
            self._server.close()
        for s in list(self._session_tasks.values()):
            s.abort()
        if self._session_tasks:
            await asyncio.wait(list(self._session_tasks), timeout=2)
        if self._control is not None:
            await self._control.stop()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        logger.info("simulated IB Gateway on port {} stopped", self.port)

    async def _run_scenario(self, timeline: list[tuple[float, dict[str, Any]]]) -> None:
        for at, body in timeline:
            delay = self.started_at + at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                self.inject(body)
                logger.info("scenario: injected {}", body)
            except ValueError as exc:
                logger.error("scenario: bad fault {}: {}", body, exc)

    # ------------------------------------------------------------ time & market
    def clock(self) -> float:
        return time.time() + self.clock_shift

    def hello_time(self) -> str:
        t = dt.datetime.fromtimestamp(self.clock(), ET)
        return t.strftime("%Y%m%d %H:%M:%S ") + (t.tzname() or "EST")

    @property
    def calendar(self) -> Any:
        """The exchange calendar in ``calendar`` mode, None when the market trades around the clock."""
        return self._calendar

    def market_open(self) -> bool:
        """The regular session (09:30-16:00 ET, 13:00 on early closes); always in ``open`` mode."""
        return self._sessions_now()[0]

    def quotes_open(self) -> bool:
        """The extended session (04:00-20:00 ET, 17:00 on early closes) in which a Gateway streams
        quotes and fills outside-RTH orders, as the contract's tradingHours say."""
        return self._sessions_now()[1]

    def _sessions_now(self) -> tuple[bool, bool]:
        if self._calendar is None:
            return True, True
        now = time.monotonic()
        if now - self._open_cache[0] < 1.0:
            return self._open_cache[1], self._open_cache[2]
        t = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        regular = bool(self._calendar.is_open(t))
        session = self._calendar.session(t.astimezone(ET).date())
        extended = False
        if session is not None:
            minutes = t.astimezone(ET).hour * 60 + t.astimezone(ET).minute
            extended = 4 * 60 <= minutes < (17 if session.early_close else 20) * 60
        self._open_cache = (now, regular, extended)
        return regular, extended

    async def output_gate(self, queued_at: float) -> None:
        """Hold a queued message while a stall is active and for the configured latency.

        Output queued during a stall is delivered after it (not dropped).
        """
        while True:
            stall = self.faults.get("stall")
            if stall is None or stall.until is None:
                break
            await asyncio.sleep(max(0.01, min(stall.until - time.time(), 0.5)))
        lat = self.faults.get("latency")
        if lat is not None:
            wait = queued_at + float(lat.params["ms"]) / 1000 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.cfg.tick_hz
        next_t = loop.time()
        while True:
            next_t += interval
            delay = next_t - loop.time()
            if delay < -interval:  # fell behind (suspended process): do not burst to catch up
                next_t = loop.time()
                delay = 0
            await asyncio.sleep(max(delay, 0))
            try:
                self._tick()
            except Exception:
                logger.exception("tick failed")

    def _tick(self) -> None:
        for f in self.faults.prune():
            self._fault_ended(f)
        now = self.clock()
        is_open = self.quotes_open()
        if is_open:
            for sym in self.market.quotes:
                if not self.faults.get("freeze", sym):
                    self.market.step(sym, now)
        data_ok = not (self.faults.get("connectivity_lost") or self.faults.get("competing_session"))
        if data_ok and is_open:
            order = self._tick_order()
            for s in order:
                if not s.mkt:
                    continue
                for sub in list(s.mkt.values()):
                    if self.faults.get("freeze", sub.contract.symbol):
                        continue
                    for msg in self.tick_messages(s, sub, full=False):
                        s.send(msg)
            streams.push_all(self, order)
        self.broker.on_tick()

    def _tick_order(self) -> list[Session]:
        """The live sessions in the order this tick round serves them: each round starts one further on.

        Why: the client served first wakes first, and a set's order is fixed for the life of its
        sessions, so one client would always be first. Clients compared side by side (``bench/``
        runs the exporter beside a bare client) should not be compared by their places in the queue.
        """
        order = self.live_sessions()
        self._ticks += 1
        if len(order) > 1:
            first = self._ticks % len(order)
            order = order[first:] + order[:first]
        return order

    def tick_messages(self, s: Session, sub: MktSub, full: bool) -> list[list[Any]]:
        """The ticks one market-data line gets now (full=True: the initial/snapshot set)."""
        c = sub.contract
        now = self.clock()
        q = self.market.quote_for(c, now)
        delayed = s.md_type in (3, 4)
        frozen_ok = s.md_type in (2, 4)
        bid_t, ask_t, last_t, vol_t, ts_t = (66, 67, 68, 74, 88) if delayed else (1, 2, 4, 8, 45)
        rid = sub.req_id
        closed = not self.quotes_open()
        no_quote = self.faults.get("drop_bid_ask", c.symbol) is not None or (closed and not frozen_ok)
        out: list[list[Any]] = []
        if no_quote:
            out.append(m.tick_price(rid, bid_t, -1, 0))
            out.append(m.tick_price(rid, ask_t, -1, 0))
        else:
            out.append(m.tick_price(rid, bid_t, q.bid, q.bid_size))
            out.append(m.tick_price(rid, ask_t, q.ask, q.ask_size))
        if full or q.last_time != sub.last_trade_sent:
            sub.last_trade_sent = q.last_time
            out.append(m.tick_price(rid, last_t, q.last, q.last_size))
            out.append(m.tick_size(rid, vol_t, q.volume))
            out.append(m.tick_string(rid, ts_t, str(int(q.last_time))))
        if full:
            out.append(m.tick_price(rid, 75 if delayed else 9, round(q.last * 0.997, 2), 0))
            if c.secType == "STK" and q.open > 0:  # the session's open, high and low (ticks 14, 6, 7)
                hi, lo, op = (72, 73, 76) if delayed else (6, 7, 14)
                out += [m.tick_price(rid, hi, q.high, 0), m.tick_price(rid, lo, q.low, 0),
                        m.tick_price(rid, op, q.open, 0)]
        if c.secType == "OPT" and not no_quote:
            out.append([21, rid, 83 if delayed else 13, 1, *self.market.greeks(c, now)])  # model greeks
        return out

    # ------------------------------------------------------------ connections
    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping or self.faults.get("disconnect") or self.faults.get("refuse"):
            writer.close()
            return
        s = Session(self, reader, writer)
        self.sessions.add(s)
        task = asyncio.current_task()
        if task is not None:
            self._session_tasks[task] = s
        try:
            await s.run()
            await s.wait_closed()  # its writer flushes what is queued (326, ...) and ends: nothing outlives it
        finally:
            self.sessions.discard(s)
            if task is not None:
                self._session_tasks.pop(task, None)

    # ------------------------------------------------------------ session host
    @property
    def account(self) -> str:
        return self.cfg.account

    @property
    def max_server_version(self) -> int:
        return self.cfg.max_server_version

    def next_valid_id(self, client_id: int) -> int:
        return self.broker.next_valid_id(client_id)

    def dispatch(self, s: Session, f: Fields) -> None:
        self.handlers.dispatch(s, f)

    def register(self, s: Session) -> bool:
        assert s.client_id is not None
        other = self.by_client.get(s.client_id)
        if other is not None and not other.closed:
            return False
        self.by_client[s.client_id] = s
        return True

    def unregister(self, s: Session) -> None:
        self.sessions.discard(s)
        if s.registered and s.client_id is not None and self.by_client.get(s.client_id) is s:
            del self.by_client[s.client_id]
            logger.info("client {} (client id {}) disconnected", s.peer, s.client_id)

    def drop_all(self) -> None:
        for s in list(self.sessions):
            s.abort()

    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions if s.registered and not s.closed]

    # ------------------------------------------------------------ broker sink
    def sees_all_orders(self, client_id: int) -> bool:
        """Client 0 (the TWS client) and the configured Master API client id hear every client's
        order events and executions; any other client hears only its own."""
        return client_id == 0 or client_id == self.cfg.master_client_id

    def _order_targets(self, o: Order) -> list[Session]:
        out = []
        owner = self.by_client.get(o.clientId)
        if owner is not None and not owner.closed:
            out.append(owner)
        watchers = {0} if self.cfg.master_client_id is None else {0, self.cfg.master_client_id}
        for cid in sorted(watchers - {o.clientId}):
            watcher = self.by_client.get(cid)
            if watcher is not None and not watcher.closed:
                out.append(watcher)
        return out

    def order_update(self, order: Order, *, open_order: bool = True, status: bool = True) -> None:
        for s in self._order_targets(order):
            if open_order:
                s.send(m.open_order(s.sv, order))
            if status:
                s.send(m.order_status(order))

    def fill(self, order: Order, execution: Execution) -> None:
        targets = self._order_targets(order)

        def stamp() -> None:
            order.filled_at = time.time()

        if all(s.client_id != order.clientId for s in targets):
            order.filled_at = time.time()
        for s in targets:
            owner = s.client_id == order.clientId
            s.send(m.exec_details(s.sv, -1, execution), on_write=stamp if owner else None)
            s.send(m.order_status(order))
            s.send(m.open_order(s.sv, order))
            s.send(m.commission_report(execution))

    def order_error(self, order: Order, code: int, text: str) -> None:
        owner = self.by_client.get(order.clientId)
        if owner is not None:
            owner.error(order.orderId, code, text)

    def order_cancelled(self, o: Order) -> None:
        for s in self._order_targets(o):
            s.send(m.order_status(o))
            if s.client_id == o.clientId or s.client_id == 0:
                # the master hears the status only: error 202 carries an order id of another client
                s.error(o.orderId, 202, "Order Canceled - reason:")

    def portfolio_changed(self, contracts: list[Contract]) -> None:
        b = self.broker
        for s in self.live_sessions():
            if s.positions_sub:
                for c in contracts:
                    p = b.positions.get(c.conId)
                    if p is not None:
                        s.send(m.position(b.account, c, p.qty, round(p.avg_cost, 6)))
            if s.account_updates:
                self.push_account_values(s, contracts=contracts)
            for req_id, tags in s.summary_subs.items():
                self.push_account_summary(s, req_id, tags)
            for req_id in s.multi_subs:
                self.push_account_multi(s, req_id)

    def push_account_values(
        self, s: Session, *, all_positions: bool = False, contracts: list[Contract] | None = None
    ) -> None:
        b = self.broker
        acct = self.cfg.account
        for tag, (val, cur) in b.account_values().items():
            s.send([6, 2, tag, val, cur, acct])
        now = self.clock()
        positions = (
            b.positions.values()
            if all_positions
            else [b.positions[c.conId] for c in contracts or [] if c.conId in b.positions]
        )
        for p in positions:
            mark = self.market.mark(p.contract, now)
            unreal = p.qty * mark * p.contract.multiplier - p.qty * p.avg_cost
            s.send(m.portfolio(acct, p.contract, p.qty, mark, p.avg_cost, unreal, p.realized))
        s.send([8, 1, dt.datetime.fromtimestamp(now, ET).strftime("%H:%M")])

    def push_account_summary(self, s: Session, req_id: int, tags: list[str]) -> None:
        vals = self.broker.account_values()
        wanted = [t for t in SUMMARY_TAGS if t in tags or "All" in tags] if tags else list(SUMMARY_TAGS)
        for tag in wanted:
            val, cur = vals[tag]
            s.send([63, 1, req_id, self.cfg.account, tag, val, cur])
        ledgers = [t.upper() for t in tags if t.upper().startswith("$LEDGER")]
        currencies: list[str] = []
        for group in ledgers:
            which = group.partition(":")[2]
            for cur in (["BASE", "USD"] if which == "ALL" else ["USD"] if which in ("", "USD") else []):
                if cur not in currencies:
                    currencies.append(cur)
        for cur in currencies:
            for tag in LEDGER_TAGS:
                s.send([63, 1, req_id, self.cfg.account, tag, self.broker.ledger_value(tag, cur), cur])

    def push_account_multi(self, s: Session, req_id: int) -> None:
        for tag, (val, cur) in self.broker.account_values().items():
            s.send([73, 1, req_id, self.cfg.account, "", tag, val, cur])

    # ------------------------------------------------------------ faults
    def inject(self, body: Any) -> dict[str, Any]:
        """Apply one fault (same body as POST /faults). Raises ValueError on a bad body."""
        name, params, duration = faultlib.validate(body, list(self.market.quotes))
        fault: Fault | None = None
        if duration is not None or name in (
            "disconnect",
            "refuse",
            "stall",
            "latency",
            "freeze",
            "drop_bid_ask",
            "connectivity_lost",
            "competing_session",
            "historical_pacing",
        ):
            fault = self.faults.add(name, params, duration)
        sessions = self.live_sessions()
        if name in ("disconnect", "drop"):
            self.drop_all()
        elif name == "connectivity_lost":
            for s in sessions:
                s.error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")
        elif name == "farm_status":
            text = FARM_TEXT[params["code"]].format(farm=params["farm"])
            for s in sessions:
                s.error(-1, params["code"], text)
        elif name == "competing_session":
            for s in sessions:
                for rid in s.mkt:
                    s.error(rid, 10197, COMPETING)
        elif name == "reject_next_order":
            self.broker.pending.reject_reason = params["reason"]
        elif name == "partial_fill_next_order":
            self.broker.pending.partial_fraction = params["fraction"]
        elif name == "clock_shift":
            self.clock_shift = params["ms"] / 1000.0
        elif name == "malformed":
            for s in sessions:
                rid = next(iter(s.mkt), -1)
                s.send([1, 6, rid, 1, "not-a-price", "xx", "0"])
        elif name == "pacing":
            for s in sessions:
                for _ in range(int(params["count"])):
                    s.error(-1, 100, "Max rate of messages per second has been exceeded:max=50 rec=51")
        elif name == "manual_trade":
            self._manual_trade(params)
        elif name == "price_jump":
            self.market.jump(params["symbol"], params["pct"])
        logger.info("fault injected: {} {} for {}", name, params, duration)
        return {
            "ok": True,
            "fault": name,
            **params,
            "for": duration,
            "id": fault.id if fault else None,
            "until": fault.until if fault else None,
        }

    def _manual_trade(self, params: dict[str, Any]) -> None:
        c = self.contracts.stocks[params["symbol"]]
        q = self.market.quotes[c.symbol]
        qty = float(params["qty"])
        price = float(params.get("price") or (q.ask if qty > 0 else q.bid))
        self.broker.manual_trade(c, qty, price, report=params["report"] == "executions")

    def _fault_ended(self, f: Fault) -> None:
        logger.info("fault ended: {} {}", f.name, f.params)
        if f.name == "connectivity_lost":
            if f.params.get("restore") == "data_lost":
                for s in self.live_sessions():
                    s.mkt.clear()
                    s.error(
                        -1,
                        1101,
                        "Connectivity between IB and Trader Workstation has been restored - data lost.",
                    )
            else:
                for s in self.live_sessions():
                    s.error(
                        -1,
                        1102,
                        "Connectivity between IB and Trader Workstation has been restored - data maintained.",
                    )

    def clear_faults(self) -> dict[str, Any]:
        active = list(self.faults.active)
        self.faults.active.clear()
        for f in active:
            if f.until is None or f.until > time.time():
                self._fault_ended(f)
        self.clock_shift = 0.0
        self.broker.pending.reject_reason = None
        self.broker.pending.partial_fraction = None
        trades = len(self.broker.manual_undo)
        touched = self.broker.undo_manual()
        if touched:
            self.portfolio_changed(touched)
        return {"ok": True, "cleared": len(active), "manual_trades_undone": trades}

    # ------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        b = self.broker
        faults = self.faults.state()
        if self.clock_shift:
            faults.append({"fault": "clock_shift", "ms": self.clock_shift * 1000})
        if b.pending.reject_reason is not None:
            faults.append({"fault": "reject_next_order", "reason": b.pending.reject_reason})
        if b.pending.partial_fraction is not None:
            faults.append({"fault": "partial_fill_next_order", "fraction": b.pending.partial_fraction})
        return {
            "server_time": self.clock(),
            "port": self.port,
            "account_id": self.cfg.account,
            "master_client_id": self.cfg.master_client_id,
            "market_open": self.market_open(),
            "clients": sorted(s.client_id for s in self.live_sessions() if s.client_id is not None),
            "orders": [o.to_state() for o in b.all_orders],
            "executions": [e.to_state() for e in b.executions],
            "positions": b.positions_state(),
            "account": {k: v for k, (v, _) in b.account_values().items()},
            "faults": faults,
            "quotes": {
                sym: {"bid": q.bid, "ask": q.ask, "last": q.last} for sym, q in self.market.quotes.items()
            },
        }
