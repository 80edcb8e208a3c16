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
from simulator.broker import Broker, Order
from simulator.config import SimConfig
from simulator.contracts import Contract, ContractRegistry, contract_details_fields
from simulator.faults import FaultSet
from simulator.history import (
    HistoryRequestError,
    format_range_date,
    generate_bars,
    parse_bar_size,
    parse_duration,
    parse_end_datetime,
)
from simulator.market import Market
from simulator.session import MktSub, Session
from simulator.wire import UNSET_DOUBLE_STR, Fields

NO_SECDEF = "No security definition has been found for the request"
HIST_PACING = "Historical Market Data Service error message:Historical data request pacing violation"
COMPETING = "No market data during competing live session"
CONTRACT_DETAILS_CAP = 500


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
            25: self.noop,
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
        }

    def dispatch(self, s: Session, f: Fields) -> None:
        try:
            msg_id = int(f.s(0))
        except ValueError:
            logger.warning("client {}: non-numeric message id {!r}; ignored", s.client_id, f.s(0)[:40])
            return
        handler = self.table.get(msg_id)
        if handler is None:
            logger.info("client {}: unsupported message id {}; ignored", s.client_id, msg_id)
            return
        try:
            handler(s, f)
        except Exception as exc:
            logger.warning(
                "client {}: malformed message {} ({}: {}); ignored",
                s.client_id,
                msg_id,
                type(exc).__name__,
                exc,
            )

    def noop(self, s: Session, f: Fields) -> None:
        return None

    # ------------------------------------------------------------ basics
    def req_current_time(self, s: Session, f: Fields) -> None:
        s.current_time()

    def req_ids(self, s: Session, f: Fields) -> None:
        s.send([9, 1, self.sim.broker.next_valid_id(s.client_id or 0)])

    def _contract_from(self, f: Fields, start: int) -> list[Contract]:
        """Resolve the 12 contract fields starting at ``start``."""
        return self.sim.contracts.match(
            conid=f.i(start),
            symbol=f.s(start + 1),
            sec_type=f.s(start + 2),
            expiry=f.s(start + 3),
            strike=f.fl(start + 4),
            right=f.s(start + 5),
            limit=CONTRACT_DETAILS_CAP,
        )

    def req_contract_details(self, s: Session, f: Fields) -> None:
        req_id = f.i(2)
        found = self._contract_from(f, 3)
        if not found:
            s.error(req_id, 200, NO_SECDEF)
            return
        today = self.sim.contracts.today
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
        s.mkt.pop(f.i(2), None)

    def req_historical_data(self, s: Session, f: Fields) -> None:
        req_id = f.i(1)
        found = self._contract_from(f, 2)
        end_text, bar_size, duration = f.s(15), f.s(16), f.s(17)
        use_rth, what, fmt_date = f.b(18), f.s(19).upper() or "TRADES", f.i(20, 1)
        if len(found) != 1:
            s.error(req_id, 200, NO_SECDEF)
            return
        c = found[0]
        try:
            parse_bar_size(bar_size)
            parse_duration(duration)
            end = parse_end_datetime(end_text)
        except HistoryRequestError as exc:
            s.error(req_id, 321, str(exc))
            return
        sim = self.sim
        if sim.faults.get("historical_pacing") or self._hist_paced(s, c, f):
            s.error(req_id, 162, HIST_PACING)
            return
        now = sim.clock()
        last = sim.market.mark(c, now)
        bars = generate_bars(
            symbol=c.key,
            seed=sim.cfg.seed,
            last_price=last,
            now=now,
            end=end,
            duration=duration,
            bar_size=bar_size,
            use_rth=use_rth,
            what=what,
            format_date=fmt_date,
            all_days=sim.cfg.market == "open",
        )
        end_ts = min(end or now, now)
        amount, unit = parse_duration(duration)
        span = amount * {"S": 1, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}[unit]
        msg: list[object] = [
            17,
            req_id,
            format_range_date(end_ts - span),
            format_range_date(end_ts),
            len(bars),
        ]
        for b in bars:
            msg.extend(b)
        s.send(msg)

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
        s.send([102])

    def req_executions(self, s: Session, f: Fields) -> None:
        req_id = f.i(2)
        flt_client, symbol, sec_type, side = f.i(3), f.s(7).upper(), f.s(8).upper(), f.s(10).upper()
        cid = s.client_id or 0
        sees_all = self.sim.sees_all_orders(cid)
        for e in self.sim.broker.executions:
            if not sees_all and e.clientId != cid:
                continue
            if flt_client and e.clientId != flt_client:
                continue
            if symbol and e.contract.symbol != symbol:
                continue
            if sec_type and e.contract.secType != sec_type:
                continue
            if side and side.startswith("B") != (e.side == "BOT"):
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
        if existing is not None and existing.is_open and not whatif:
            broker.modify(existing, qty, lmt, order_type)
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
