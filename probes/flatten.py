"""``gatewatch flatten``: cancel probe orders and close probe positions; ``--all`` for everything.

Why two scopes: the default touches only what the probes own (journal + orderRef prefix), so it is
safe while the trading bot runs. ``--all`` is the paper account's emergency stop: every open order
(cancelled one by one, by id: a global cancel is never sent) and every position, after the paper
checks and an explicit confirmation.

Where the journal and the Gateway disagree on what the probes hold (see probes.active.holdings),
the default lists the disagreement and the repair it would make, and exits 1; ``--repair`` makes
it after a confirmation: buy back a short the probes' sells caused (never more than the Gateway
shows short) and write off, in the journal only, a probe position the Gateway no longer shows.
It never sells a long it cannot prove is the probes'. Closes, cancels and repairs are not held
back by the hourly order cap (only risk-increasing orders are); the paper rule still applies.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ib_async import IB, Contract, LimitOrder, Order
from loguru import logger

from gatewatch.config import GatewatchConfig, add_config_argument, load_config
from gatewatch.ib.connect import connect
from gatewatch.logs import setup_logging
from probes.active.guard import OrderRefused
from probes.active.journal import OPERATOR_SCOPE, PROBE_SCOPE, JournalError
from probes.active.orders import NOT_DONE, ProbeFailure, marketable_buy_limit, marketable_sell_limit
from probes.active.runner import ActiveSession, ClientIdInUse, unwind_bound
from probes.active.stopping import cancel_on_stop, run_until_signalled


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--all",
        action="store_true",
        help="every open order and position on the PAPER account, not only the probes'",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="repair what the probes caused where the journal and the Gateway disagree (asks first)",
    )
    parser.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)"
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    setup_logging(config.exporter.log_level, config.exporter.log_json)
    if args.all and not args.yes and not _confirmed(ALL_QUESTION):
        print(
            "gatewatch flatten: --all not confirmed; nothing done (use --yes to skip the prompt)",
            file=sys.stderr,
        )
        return 1
    if args.repair and not args.yes and not _confirmed(REPAIR_QUESTION):
        print(
            "gatewatch flatten: --repair not confirmed; nothing done (use --yes to skip the prompt)",
            file=sys.stderr,
        )
        return 1
    try:
        done, stop = run_until_signalled(
            lambda event: flatten(config, everything=args.all, repair=args.repair, stop=event),
            unwinding="flatten sends no further order and settles the ones it sent (fill or cancel)",
            bound=unwind_bound(config),
        )
    except OrderRefused as exc:
        print(f"gatewatch flatten: refused ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    except ProbeFailure as exc:
        print(f"gatewatch flatten: not done: {exc}", file=sys.stderr)
        return 1
    except JournalError as exc:
        print(f"gatewatch flatten: {exc}", file=sys.stderr)
        return 2
    except ClientIdInUse as exc:  # reachable, but another probe run holds the probes' client id
        print(f"gatewatch flatten: not now: {exc}", file=sys.stderr)
        return 1
    except (ConnectionError, TimeoutError, OSError) as exc:
        print(f"gatewatch flatten: cannot reach the Gateway: {type(exc).__name__} {exc}", file=sys.stderr)
        return 1
    if done is None:
        print("gatewatch flatten: stopped at once (second signal); every order it sent is journalled and "
              "the next recovery (`gatewatch flatten`, `probe run`, the exporter) settles it", file=sys.stderr)
        return stop.exit_status
    for line in done or ["nothing to do"]:
        print(line)
    if stop.signal is not None:
        print(f"gatewatch flatten: stopped by {stop.signal.name}: no further order sent, the ones it sent "
              "settled (above, with what the probes hold now); run it again to finish", file=sys.stderr)
        return stop.exit_status
    return 1 if any(line.startswith(NOT_DONE) for line in done) else 0


ALL_QUESTION = "Cancel EVERY open order and close EVERY position on this paper account?"
REPAIR_QUESTION = (
    "Repair where the probes' journal and the Gateway disagree (buy back shorts the probes caused, "
    "write off probe positions the Gateway no longer shows)?"
)


def _confirmed(question: str) -> bool:
    print(f"{question} Type 'yes': ", end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip().lower() == "yes"


async def flatten(
    config: GatewatchConfig, *, everything: bool = False, repair: bool = False, stop: asyncio.Event | None = None
) -> list[str]:
    """Flatten probe orders/positions (default) or everything on the paper account.

    A set ``stop`` (a signal) cancels the work in flight, so no further order is sent; the orders
    already sent are settled (each fills or is cancelled, bounded by ``unwind_bound``) and what the
    probes hold then is listed, so the journal, the Gateway and the report agree.
    """
    async with ActiveSession(config) as session:
        session.guard.check_paper()
        done: list[str] = []
        finished = await cancel_on_stop(_flatten(session, done, everything=everything, repair=repair), stop)
        if finished is None:
            done += await _settle_after_stop(session)
        else:
            await finished
        session.update_gauges()
        return done


async def _flatten(session: ActiveSession, done: list[str], *, everything: bool, repair: bool) -> None:
    """The work itself; each step's lines are added to ``done`` as it completes."""
    done += await session.orders.cleanup(probe="flatten")
    done += await _disagreements(session, repair=repair)
    if everything:
        done += await _flatten_everything(session)


async def _settle_after_stop(session: ActiveSession) -> list[str]:
    """After a stop: settle the orders flatten sent (no new one), then say what the probes hold."""
    bound = unwind_bound(session.config)
    try:
        done = await asyncio.wait_for(session.orders.settle(), bound)
    except TimeoutError:
        done = [f"{NOT_DONE}settled the orders sent within {bound:g} s: they are journalled, the next "
                "recovery finishes it"]
    except (ConnectionError, OSError) as exc:
        return [f"{NOT_DONE}settled the orders sent: {type(exc).__name__} {exc}; they are journalled, the next "
                "recovery settles them"]
    try:
        holdings = await session.orders.holdings()
    except (TimeoutError, ConnectionError, OSError) as exc:
        return [*done, f"{NOT_DONE}read the positions after the stop: {type(exc).__name__} {exc}"]
    held = [h for h in holdings.values() if abs(h.journal) > 1e-9 or abs(h.gateway) > 1e-9]
    done += [f"{NOT_DONE}flat: {h.describe()}" for h in held]
    return done or ["nothing was working; the probes hold nothing"]


async def _disagreements(session: ActiveSession, *, repair: bool) -> list[str]:
    """List (or, with ``repair``, make) the repair of each journal/Gateway disagreement."""
    done: list[str] = []
    orders, journal = session.orders, session.journal
    for holding in (await orders.holdings()).values():
        if holding.agrees:
            continue
        plan = []
        if holding.repair_order:
            plan.append(f"buy back {holding.repair_order:g} (a short the probes' sells caused)")
        if holding.write_off:
            plan.append(f"write off {holding.write_off:+g} in the journal (no order: the Gateway does not show it)")
        if not repair:
            done.append(f"{NOT_DONE}repaired: {holding.describe()}; `gatewatch flatten --repair` would "
                        + " and ".join(plan))
            continue
        if holding.repair_order:
            done.append(await _buy_back(session, holding.con_id, holding.repair_order))
        if holding.write_off:
            journal.write_off(holding.con_id, holding.write_off, f"flatten --repair: {holding.describe()}")
            done.append(f"wrote off {holding.write_off:+g} of conId {holding.con_id} in the journal "
                        f"({holding.describe()})")
    if repair and done:
        await orders.holdings()  # refresh the disagreement gauge
    return done


async def _buy_back(session: ActiveSession, con_id: int, quantity: float) -> str:
    """Buy back (marketable, through the guard, uncapped by the hourly limit) a probe-caused short."""
    contract = (await session.orders.held_by_gateway()).get(con_id, (None, 0.0))[0]
    if contract is None:
        return f"{NOT_DONE}bought back conId {con_id}: the Gateway no longer lists it"
    left, why = await _trade_out(session, contract, "BUY", quantity, probe="repair", scope=PROBE_SCOPE)
    if left:
        return f"{NOT_DONE}bought back {left:g} {contract.localSymbol}: {why}"
    return f"bought back {quantity:g} {contract.localSymbol or contract.symbol} (a short the probes caused)"


async def _trade_out(
    session: ActiveSession, contract: Contract, action: str, quantity: float, *, probe: str, scope: str
) -> tuple[float, str]:
    """Reduce a position by ``quantity``: marketable limits through the guard, one per max_quantity lot.

    Returns what is left and why (``(0, "")`` when all filled). Stops at the first lot that is
    refused, finds no quote or does not fill (that lot is cancelled): the caller names the rest.
    """
    contract.exchange = contract.exchange or "SMART"
    remaining = quantity
    while remaining > 1e-9:
        lot = min(remaining, float(session.config.active.max_quantity))
        try:
            bid, ask = await session.orders.quote(contract)
            price = marketable_sell_limit(bid) if action == "SELL" else marketable_buy_limit(ask)
            await session.orders.pace()
            sent = session.guard.place(
                contract, LimitOrder(action, lot, price, tif="DAY"), probe=probe, scope=scope, reducing=True
            )
        except (OrderRefused, ProbeFailure) as exc:
            return remaining, str(exc)
        result = await session.orders.wait_done_or_filled(sent, session.config.active.fill_timeout)
        if result.filled < lot:
            await session.orders.cancel(sent)
            return remaining, result.status
        remaining -= lot
    return 0.0, ""


async def _flatten_everything(session: ActiveSession) -> list[str]:
    """Cancel every open order by id, then close every position with marketable limits.

    The API lets a client cancel only its own orders, and a global cancel is never an option, so
    orders of another client id are cancelled from a short connection under that client id (if
    that client is still connected the Gateway refuses with 326, and we say so). Closes go through
    the guard, so size/notional limits still hold: a bigger position is reported for manual
    handling, not closed blindly. These closes are journalled with the operator scope: they are
    ours to cancel after a crash, but their fills are not probe positions (see journal scopes).
    """
    ib, done = session.ib, []
    timeout = session.config.gateway.request_timeout
    trades = await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), timeout)
    by_client: dict[int, list[Order]] = {}
    for trade in trades:
        if trade.orderStatus.status not in ("Filled", "Cancelled", "ApiCancelled", "Inactive"):
            by_client.setdefault(trade.order.clientId, []).append(trade.order)
    for client_id, orders in by_client.items():
        if client_id == ib.client.clientId:
            for order in orders:
                await session.orders.pace()
                ib.cancelOrder(order)
                done.append(
                    f"cancelled order {order.orderId} (client {client_id}, ref {order.orderRef or '-'})"
                )
        else:
            done += await _cancel_as_client(session.config, client_id, orders)
    await asyncio.sleep(0.5)
    for contract, qty in (await session.orders.held_by_gateway()).values():
        if qty == 0:
            continue
        left, why = await _trade_out(
            session, contract, "SELL" if qty > 0 else "BUY", abs(qty), probe="flatten-all", scope=OPERATOR_SCOPE
        )
        if left:
            logger.error("flatten --all: {} {:g} needs manual handling: {}", contract.localSymbol, qty, why)
            done.append(f"{NOT_DONE}closed {left:g} of {qty:g} {contract.localSymbol}: {why}")
        else:
            done.append(f"closed {qty:g} {contract.localSymbol}")
    return done


async def _cancel_as_client(config: GatewatchConfig, client_id: int, orders: list[Order]) -> list[str]:
    """Cancel another client's orders by id from a short connection under its client id."""
    ib = IB()
    try:
        await connect(ib, config.gateway, client_id)
    except (ConnectionError, TimeoutError, OSError) as exc:
        return [
            f"{NOT_DONE}cancelled {len(orders)} order(s) of client {client_id}: cannot connect as that client "
            f"(still connected? error 326): {type(exc).__name__} {exc}"
        ]
    try:
        done = []
        for order in orders:
            ib.cancelOrder(order)
            done.append(f"cancelled order {order.orderId} (client {client_id}, ref {order.orderRef or '-'})")
        await asyncio.sleep(0.3)
        return done
    finally:
        ib.disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="gatewatch flatten")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
