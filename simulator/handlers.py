"""Request handlers: one method per client message id, all answering through the session.

Handlers parse leniently (see wire.Fields) and raise on garbage; the dispatcher logs and drops the
offending message, so a hostile client never disturbs the simulator or other clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from loguru import logger

from simulator import messages as m
from simulator import refdata, streams
from simulator.broker import Broker, Order
from simulator.config import SimConfig
from simulator.contracts import Contract, ContractRegistry, contract_details_fields, exchange_date
from simulator.faults import FaultSet
from simulator.history import (
    LEGAL_WHAT_TO_SHOW,
    HistoryRequestError,
    format_range_date,
    generate_bars,
    parse_bar_size,
    parse_end_datetime,
    parse_history_duration,
)
from simulator.market import Market
from simulator.requests import REFUSED, SILENT
from simulator.session import MktSub, Session
from simulator.wire import UNSET_DOUBLE_STR, Fields

NO_SECDEF = "No security definition has been found for the request"
HIST_PACING = "Historical Market Data Service error message:Historical data request pacing violation"
COMPETING = "No market data during competing live session"
HIST_NO_DATA = "Historical Market Data Service error message:HMDS query returned no data"
KEEP_UP_TO_DATE_WITH_END = (
    "Error validating request.-'bP' : cause - End date not supported with live updates"
)
CONTRACT_DETAILS_CAP = 2  # one contract wanted: two found is already ambiguous


class HandlerHost(Protocol):
    """The simulator as request handlers see it (the server implements it).

    State (contracts, market, broker, faults) is read directly; what must reach other sessions
    (account pushes, cancels heard by the master client) goes back through the host.
    """

    cfg: SimConfig
    contracts: ContractRegistry
    market: Market
    broker: Broker
    faults: FaultSet

    @property
    def calendar(self) -> Any: ...
    def clock(self) -> float: ...
    def market_open(self) -> bool: ...
    def tick_messages(self, s: Session, sub: MktSub, full: bool) -> list[list[Any]]: ...
    def push_account_values(
        self, s: Session, *, all_positions: bool = False, contracts: list[Contract] | None = None
    ) -> None: ...
    def push_account_summary(self, s: Session, req_id: int, tags: list[str]) -> None: ...
    def push_account_multi(self, s: Session, req_id: int) -> None: ...
    def sees_all_orders(self, client_id: int) -> bool: ...
    def order_cancelled(self, o: Order) -> None: ...


class Handlers:
    def __init__(self, sim: HandlerHost) -> None:
        self.sim = sim
        self.table: dict[int, Callable[[Session, Fields], None]] = {
            1: self.req_mkt_data,
            2: self.cancel_mkt_data,
            3: self.place_order,
            4: self.cancel_order,
            5: self.req_open_orders,
            6: self.req_account_updates,
            7: self.req_executions,
            8: self.req_ids,
            9: self.req_contract_details,
            15: self.req_auto_open_orders,
            16: self.req_all_open_orders,
            20: self.req_historical_data,
            25: self.cancel_historical_data,
            49: self.req_current_time,
            58: self.req_global_cancel,
            59: self.req_market_data_type,
            61: self.req_positions,
            62: self.req_account_summary,
            63: self.cancel_account_summary,
            64: self.cancel_positions,
            71: self.noop,
            76: self.req_account_updates_multi,
            77: self.cancel_account_updates_multi,
            78: self.req_sec_def_opt_params,
            99: self.req_completed_orders,
            # reference data and streams (refdata.py, streams.py)
            17: self.req_managed_accts,
            24: self.req_scanner_parameters,
            50: self.req_real_time_bars,
            81: self.req_matching_symbols,
            85: self.req_news_providers,
            87: self.req_head_timestamp,
            91: self.req_market_rule,
            92: self.req_pnl,
            94: self.req_pnl_single,
            96: self.req_historical_ticks,
            97: self.req_tick_by_tick,
            104: self.req_user_info,
            105: self.req_current_time_millis,
            51: self.cancel_stream,
            93: self.cancel_stream,
            95: self.cancel_stream,
            98: self.cancel_stream,
        }

    def dispatch(self, s: Session, f: Fields) -> None:
        try:
            msg_id = int(f.s(0))
        except ValueError:
            logger.warning("client {}: non-numeric message id {!r}; ignored", s.client_id, f.s(0)[:40])
            return
        handler = self.table.get(msg_id)
        if handler is None:
            self._not_modelled(s, f, msg_id)
            return
        try:
            handler(s, f)
        except Exception as exc:
            logger.warning(
                "client {}: malformed message {} ({}: {}); answered with error 320",
                s.client_id,
                msg_id,
                type(exc).__name__,
                exc,
            )
            s.error(_req_id_guess(f), 320, f"Error reading request.Message id {msg_id}.  Unable to parse data.")

    def _not_modelled(self, s: Session, f: Fields, msg_id: int) -> None:
        """A request the simulator does not model: refused as a Gateway refuses it (requests.py)."""
        refusal = REFUSED.get(msg_id)
        if refusal is not None:
            rid = -1
            if refusal.req_id_field is not None:
                try:
                    rid = f.i(refusal.req_id_field, -1)
                except ValueError:
                    rid = -1
            logger.info("client {}: {} refused with {}", s.client_id, refusal.name, refusal.code)
            s.error(rid, refusal.code, refusal.text)
        elif msg_id not in SILENT:
            logger.info("client {}: unknown message id {}; refused with 321", s.client_id, msg_id)
            s.error(-1, 321, f"Error validating request.-'' : cause - Unknown message id {msg_id}")

    def noop(self, s: Session, f: Fields) -> None:
        return None

    def _one_contract(self, s: Session, req_id: int, f: Fields, start: int) -> Contract | None:
        found = self._contract_from(f, start)
        if len(found) != 1:
            s.error(req_id, 200, NO_SECDEF)
            return None
        return found[0]

    # ------------------------------------------------------------ reference data
    def req_managed_accts(self, s: Session, f: Fields) -> None:
        s.send(refdata.managed_accounts(self.sim.cfg.account))

    def req_scanner_parameters(self, s: Session, f: Fields) -> None:
        s.send(refdata.scanner_parameters())

    def req_matching_symbols(self, s: Session, f: Fields) -> None:
        s.send(refdata.matching_symbols(f.i(1), f.s(2), list(self.sim.contracts.stocks.values())))

    def req_news_providers(self, s: Session, f: Fields) -> None:
        s.send(refdata.news_providers())

    def req_user_info(self, s: Session, f: Fields) -> None:
        s.send(refdata.user_info(f.i(1)))

    def req_current_time_millis(self, s: Session, f: Fields) -> None:
        if s.sv < 197:
            s.error(-1, 321, "Error validating request.-'' : cause - reqCurrentTimeInMillis needs server version 197")
            return
        s.send([109, int(self.sim.clock() * 1000)])

    def req_market_rule(self, s: Session, f: Fields) -> None:
        rule_id = f.i(1)
        msg = refdata.market_rule(rule_id)
        if msg is None:
            s.error(-1, 321, f"Error validating request.-'' : cause - Invalid market rule id: {rule_id}")
            return
        s.send(msg)

    def req_head_timestamp(self, s: Session, f: Fields) -> None:
        req_id = f.i(1)
        c = self._one_contract(s, req_id, f, 2)
        if c is not None:
            s.send(refdata.head_timestamp(req_id, c, f.i(17, 1)))

    def req_historical_ticks(self, s: Session, f: Fields) -> None:
        req_id = f.i(1)
        c = self._one_contract(s, req_id, f, 2)
        if c is None:
            return
        now = self.sim.clock()
        q = self.sim.market.quote_for(c, now)
        try:
            msg = refdata.historical_ticks(
                req_id, c, f, now=now, mid=self.sim.market.mark(c, now), spread=q.ask - q.bid, seed=self.sim.cfg.seed
            )
        except HistoryRequestError as exc:
            s.error(req_id, 321, str(exc))
            return
        s.send(msg)

    # ------------------------------------------------------------ streams
    def req_pnl(self, s: Session, f: Fields) -> None:
        req_id, account = f.i(1), f.s(2)
        if account and account != self.sim.cfg.account:
            s.error(req_id, 321, f"Error validating request.-'cu' : cause - Invalid account: {account}")
            return
        sub = streams.PnLSub(req_id)
        s.streams[req_id] = sub
        sub.last = streams.pnl_values(self.sim.broker, self.sim.clock())
        s.send(streams.pnl_message(sub, sub.last))

    def req_pnl_single(self, s: Session, f: Fields) -> None:
        req_id, account, con_id = f.i(1), f.s(2), f.i(4)
        if account and account != self.sim.cfg.account:
            s.error(req_id, 321, f"Error validating request.-'cv' : cause - Invalid account: {account}")
            return
        if con_id not in self.sim.contracts.by_conid:
            s.error(req_id, 200, NO_SECDEF)
            return
        sub = streams.PnLSingleSub(req_id, con_id)
        s.streams[req_id] = sub
        sub.last = streams.pnl_values(self.sim.broker, self.sim.clock(), con_id)
        s.send(streams.pnl_message(sub, sub.last))

    def req_real_time_bars(self, s: Session, f: Fields) -> None:
        req_id = f.i(2)
        c = self._one_contract(s, req_id, f, 3)
        if c is None:
            return
        bar_size, what = f.i(15, 5), f.s(16).upper()
        if bar_size != streams.RT_BAR_SECONDS or what not in ("TRADES", "MIDPOINT", "BID", "ASK"):
            s.error(req_id, 321, f"Error validating request.-'bR' : cause - Invalid real-time bar request: "
                                 f"{bar_size} secs {what}; only 5 secs of TRADES, MIDPOINT, BID or ASK")
            return
        s.streams[req_id] = streams.RealTimeBarSub(req_id, c)

    def req_tick_by_tick(self, s: Session, f: Fields) -> None:
        req_id = f.i(1)
        c = self._one_contract(s, req_id, f, 2)
        if c is None:
            return
        kind = f.s(14).replace(" ", "").upper()
        if kind not in streams.TBT_TYPES:
            s.error(req_id, 321, f"Error validating request.-'cz' : cause - Invalid tick type: {f.s(14)}")
            return
        s.streams[req_id] = streams.TickByTickSub(req_id, c, streams.TBT_TYPES[kind])

    def cancel_stream(self, s: Session, f: Fields) -> None:
        s.streams.pop(f.i(2) if f.s(0) == "51" else f.i(1), None)

    def cancel_historical_data(self, s: Session, f: Fields) -> None:
        req_id = f.i(2)
        if s.streams.pop(req_id, None) is None:
            s.error(req_id, 366, f"No historical data query found for ticker id:{req_id}")

    # ------------------------------------------------------------ basics
    def req_current_time(self, s: Session, f: Fields) -> None:
        s.current_time()

    def req_ids(self, s: Session, f: Fields) -> None:
        s.send([9, 1, self.sim.broker.next_valid_id(s.client_id or 0)])

    def _contract_from(self, f: Fields, start: int, limit: int = CONTRACT_DETAILS_CAP) -> list[Contract]:
        """Resolve the 12 contract fields starting at ``start`` (market data and orders need one
        contract; ``limit`` only bounds the search)."""
        return self.sim.contracts.match(
            conid=f.i(start),
            symbol=f.s(start + 1),
            sec_type=f.s(start + 2),
            expiry=f.s(start + 3),
            strike=f.fl(start + 4),
            right=f.s(start + 5),
            limit=limit,
        )

    def req_contract_details(self, s: Session, f: Fields) -> None:
        """Every match, however many: a Gateway answers a wildcard option request with the whole
        chain (thousands of contracts) rather than cutting it short."""
        req_id = f.i(2)
        found = self._contract_from(f, 3, limit=1_000_000)
        if not found:
            s.error(req_id, 200, NO_SECDEF)
            return
        today = exchange_date(self.sim.clock())  # the hours start on the exchange's day, not the host's
        for c in found:
            s.send(m.contract_details(s.sv, contract_details_fields(req_id, c, today, self.sim.calendar)))
        s.send([52, 1, req_id])

    def req_sec_def_opt_params(self, s: Session, f: Fields) -> None:
        req_id = f.i(1)
        symbol = f.s(2).upper()
        chain = self.sim.contracts.chains.get(symbol)
        if chain is None:
            s.error(req_id, 200, NO_SECDEF)
            return
        exps = sorted(chain.by_expiry)
        strikes = chain.all_strikes()
        for exch in ("SMART", "CBOE", "AMEX"):
            s.send(
                [
                    75,
                    req_id,
                    exch,
                    chain.underlying.conId,
                    symbol,
                    "100",
                    len(exps),
                    *exps,
                    len(strikes),
                    *strikes,
                ]
            )
        s.send([76, req_id])

    # ------------------------------------------------------------ market data
    def req_market_data_type(self, s: Session, f: Fields) -> None:
        t = f.i(2)
        if t in (1, 2, 3, 4):
            s.md_type = t

    def req_mkt_data(self, s: Session, f: Fields) -> None:
        req_id = f.i(2)
        found = self._contract_from(f, 3)
        i = 15
        if f.s(5) == "BAG":
            s.error(req_id, 200, NO_SECDEF)
            return
        if f.b(i):
            i += 3
        i += 1
        snapshot = f.b(i + 1)
        if len(found) != 1:
            s.error(req_id, 200, NO_SECDEF)
            return
        sim = self.sim
        if sim.faults.get("competing_session"):
            s.error(req_id, 10197, COMPETING)
            return
        sub = MktSub(req_id, found[0])
        s.send([81, req_id, 0.01, "9c0001", 3])
        s.send([58, 1, req_id, s.md_type])
        if not sim.faults.get("connectivity_lost"):
            for msg in sim.tick_messages(s, sub, full=True):
                s.send(msg)
        if snapshot:
            s.send([57, 1, req_id])
        else:
            s.mkt[req_id] = sub

    def cancel_mkt_data(self, s: Session, f: Fields) -> None:
        req_id = f.i(2)
        if s.mkt.pop(req_id, None) is None:
            s.error(req_id, 300, f"Can't find EId with tickerId:{req_id}")

    def req_historical_data(self, s: Session, f: Fields) -> None:
        """reqHistoricalData ``[20, reqId, C12, includeExpired, end, barSize, duration, useRTH, what,
        formatDate, keepUpToDate, chartOptions]``: refusals as a Gateway words them (321 for a bar
        size, duration or end date it will not take, 162 for an unknown whatToShow or a window with no
        bar), else the bars, and for keepUpToDate the bar being built until cancelled."""
        req_id = f.i(1)
        end_text, bar_size, duration = f.s(15), f.s(16), f.s(17)
        use_rth, what, fmt_date, keep = f.b(18), f.s(19).upper() or "TRADES", f.i(20, 1), f.b(21)
        c = self._one_contract(s, req_id, f, 2)
        if c is None:
            return
        try:
            step = parse_bar_size(bar_size)
            parse_history_duration(duration)
            end = parse_end_datetime(end_text)
        except HistoryRequestError as exc:
            s.error(req_id, 321, str(exc))
            return
        if keep and end is not None:
            s.error(req_id, 321, KEEP_UP_TO_DATE_WITH_END)
            return
        if what not in LEGAL_WHAT_TO_SHOW:
            s.error(req_id, 162, f"Historical Market Data Service error message:Invalid whatToShow: {what}")
            return
        sim = self.sim
        if sim.faults.get("historical_pacing") or self._hist_paced(s, c, f):
            s.error(req_id, 162, HIST_PACING)
            return
        now = sim.clock()
        bars = generate_bars(
            symbol=c.key,
            seed=sim.cfg.seed,
            last_price=sim.market.mark(c, now),
            now=now,
            end=end,
            duration=duration,
            bar_size=bar_size,
            use_rth=use_rth,
            what=what,
            format_date=fmt_date,
            all_days=sim.cfg.market == "open",
            calendar=sim.calendar,
        )
        if not bars:
            s.error(req_id, 162, HIST_NO_DATA)
            return
        end_ts = min(end or now, now)
        amount, unit = parse_history_duration(duration)
        span = amount * {"S": 1, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}[unit]
        msg: list[object] = [17, req_id, format_range_date(end_ts - span), format_range_date(end_ts), len(bars)]
        for b in bars:
            msg.extend(b)
        s.send(msg)
        if keep:
            s.streams[req_id] = streams.BarUpdateSub(req_id, c, step, fmt_date)

    def _hist_paced(self, s: Session, c: Contract, f: Fields) -> bool:
        """IB's three historical pacing rules, per client session."""
        now = time.monotonic()
        key = "|".join(f.f[2:21])
        log = s.hist_log
        while log and log[0][0] < now - 600:
            log.popleft()
        identical = any(k == key and t > now - 15 for t, k, _ in log)
        same_contract = sum(1 for t, _, cid in log if cid == c.conId and t > now - 2)
        violation = identical or same_contract >= 5 or len(log) >= 60
        log.append((now, key, c.conId))
        return violation

    # ------------------------------------------------------------ account
    def req_positions(self, s: Session, f: Fields) -> None:
        s.positions_sub = True
        b = self.sim.broker
        for p in b.positions.values():
            s.send(m.position(b.account, p.contract, p.qty, round(p.avg_cost, 6)))
        s.send([62, 1])

    def cancel_positions(self, s: Session, f: Fields) -> None:
        s.positions_sub = False

    def req_account_updates(self, s: Session, f: Fields) -> None:
        subscribe = f.b(2)
        s.account_updates = subscribe
        if not subscribe:
            return
        self.sim.push_account_values(s, all_positions=True)
        s.send([54, 1, self.sim.cfg.account])

    def req_account_summary(self, s: Session, f: Fields) -> None:
        req_id = f.i(2)
        tags = [t.strip() for t in f.s(4).split(",") if t.strip()]
        s.summary_subs[req_id] = tags
        self.sim.push_account_summary(s, req_id, tags)
        s.send([64, 1, req_id])

    def cancel_account_summary(self, s: Session, f: Fields) -> None:
        s.summary_subs.pop(f.i(2), None)

    def req_account_updates_multi(self, s: Session, f: Fields) -> None:
        req_id = f.i(2)
        s.multi_subs.add(req_id)
        self.sim.push_account_multi(s, req_id)
        s.send([74, 1, req_id])

    def cancel_account_updates_multi(self, s: Session, f: Fields) -> None:
        s.multi_subs.discard(f.i(2))

    # ------------------------------------------------------------ orders
    def req_open_orders(self, s: Session, f: Fields) -> None:
        cid = s.client_id or 0
        self._send_open_orders(s, None if cid == 0 else cid)

    def req_all_open_orders(self, s: Session, f: Fields) -> None:
        self._send_open_orders(s, None)

    def _send_open_orders(self, s: Session, client_id: int | None) -> None:
        for o in self.sim.broker.open_orders(client_id):
            s.send(m.open_order(s.sv, o))
            s.send(m.order_status(o))
        s.send([53, 1])

    def req_auto_open_orders(self, s: Session, f: Fields) -> None:
        return None

    def req_completed_orders(self, s: Session, f: Fields) -> None:
        """Filled, cancelled and rejected orders of the account, every client's (``apiOnly`` leaves
        out those placed by hand in TWS), then completedOrdersEnd."""
        api_only = f.b(1)
        for o in self.sim.broker.all_orders:
            if o.whatIf or o.is_open or (api_only and o.clientId == 0 and o.orderId == 0):
                continue
            s.send(m.completed_order(s.sv, o))
        s.send([102])

    def req_executions(self, s: Session, f: Fields) -> None:
        """reqExecutions ``[7, 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side]``
        (tws-protocol.md "More messages"): every filter that is set must match; the time filter
        keeps executions at or after it ("yyyymmdd hh:mm:ss [zone]", exchange time by default, or
        "yyyymmdd-hh:mm:ss" UTC)."""
        req_id = f.i(2)
        flt_client, acct, since_text = f.i(3), f.s(4), f.s(5)
        symbol, sec_type, exchange, side = f.s(6).upper(), f.s(7).upper(), f.s(8).upper(), f.s(9).upper()
        try:
            since = parse_end_datetime(since_text)
        except HistoryRequestError:
            s.error(req_id, 321, f"Error validating request.-'bC' : cause - Invalid filter time: {since_text}")
            return
        cid = s.client_id or 0
        sees_all = self.sim.sees_all_orders(cid)
        for e in self.sim.broker.executions:
            if not sees_all and e.clientId != cid:
                continue
            if flt_client and e.clientId != flt_client:
                continue
            if acct and e.account != acct:
                continue
            if since is not None and e.time < since:
                continue
            if symbol and e.contract.symbol != symbol:
                continue
            if sec_type and e.contract.secType != sec_type:
                continue
            if exchange and exchange != "SMART" and e.exchange != exchange:
                continue
            if side and side[:1] != e.side[:1]:  # BUY/BOT, SELL/SLD
                continue
            s.send(m.exec_details(s.sv, req_id, e))
            s.send(m.commission_report(e))
        s.send([55, 1, req_id])

    def place_order(self, s: Session, f: Fields) -> None:
        received_at = time.time()
        order_id = f.i(1)
        cid = s.client_id or 0
        broker = self.sim.broker
        if f.s(4) == "BAG":
            s.error(order_id, 200, NO_SECDEF)
            return
        action, qty, order_type = f.s(16).upper(), f.fl(17), f.s(18).upper()
        lmt = f.fl(19, float("nan"))
        order_ref, outside_rth = f.s(26), f.b(33)
        whatif = self._parse_whatif(s, f)
        existing = broker.orders.get((cid, order_id))
        transmit = f.s(27) != "0"
        if existing is not None and existing.is_open and not whatif:
            broker.modify(existing, qty, lmt, order_type, transmit)
            return
        if existing is not None or order_id <= broker.max_order_id.get(cid, 0):
            s.error(order_id, 103, "Duplicate order id")
            return
        found = self._contract_from(f, 2)
        if len(found) != 1:
            s.error(order_id, 200, NO_SECDEF)
            return
        o = Order(
            orderId=order_id,
            clientId=cid,
            permId=broker.new_perm_id(),
            contract=found[0],
            action=action,
            totalQuantity=qty,
            orderType=order_type,
            lmtPrice=lmt,
            tif=f.s(21) or "DAY",
            account=self.sim.cfg.account,
            orderRef=order_ref,
            outsideRth=outside_rth,
            whatIf=whatif,
            received_at=received_at,
            parentId=f.i(28),
            auxPrice=f.fl(20, float("nan")),
            ocaGroup=f.s(22),
            transmit=transmit,
        )
        if whatif:
            broker.all_orders.append(o)
            broker.max_order_id[cid] = max(broker.max_order_id.get(cid, 0), order_id)
            problem = broker.validate_new(o)
            if problem is not None and problem[0] != 201:
                o.status = "Inactive"
                s.error(order_id, *problem)
                return
            o.status = "PreSubmitted"
            s.send(m.open_order(s.sv, o, margin=broker.margin_impact(o)))
            return
        broker.place(o)

    def _parse_whatif(self, s: Session, f: Fields) -> bool:
        """Walk placeOrder's optional branches (as ib_async's client.placeOrder builds them)."""
        i = 35
        i += 7  # "", discretionaryAmt, goodAfterTime, goodTillDate, faGroup, faMethod, faPercentage
        if s.sv < 177:
            i += 1  # faProfile
        dn_type = f.s(i + 22)
        i += 24
        if dn_type:
            i += 8
        incr = f.fl(i + 6, 0.0)
        i += 7
        if 0 < incr < float(UNSET_DOUBLE_STR):
            i += 7
        hedge = f.s(i + 3)
        i += 4
        if hedge:
            i += 1
        i += 4
        if f.b(i):
            i += 4
        else:
            i += 1
        algo = f.s(i)
        i += 1
        if algo:
            n = f.i(i)
            i += 1 + 2 * n
        i += 1  # algoId
        return f.b(i)

    def cancel_order(self, s: Session, f: Fields) -> None:
        order_id = f.i(2)
        o = self.sim.broker.cancel(s.client_id or 0, order_id)
        if o is None:
            s.error(
                order_id,
                161,
                f"Cancel attempted when order is not in a cancellable state.  Order id ={order_id}",
            )
            return
        self.sim.order_cancelled(o)

    def req_global_cancel(self, s: Session, f: Fields) -> None:
        for o in self.sim.broker.open_orders(None):
            o.status = "Cancelled"
            self.sim.order_cancelled(o)


def _req_id_guess(f: Fields) -> int:
    """The request id of a message that could not be parsed: after the version field, except in
    placeOrder, reqHistoricalData and every id from 78 on, which have none (tws-protocol.md gotcha 5)."""
    msg_id = f.i(0)
    try:
        return f.i(1 if msg_id in (3, 20) or msg_id >= 78 else 2, -1)
    except ValueError:
        return -1
