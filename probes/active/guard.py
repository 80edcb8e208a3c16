"""The paper guard: the only door through which a probe order reaches the Gateway.

Why one object: the rules that keep real money safe (paper account, paper port, the operator's
``paper: true``, hard size/notional/rate limits, our orderRef tag, journal-before-send) are worth
nothing if one probe can call ``ib.placeOrder`` directly. Every probe gets a :class:`PaperGuard`,
never the raw placeOrder, and every refusal is counted by reason and sends nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from ib_async import IB, Contract, Order, Trade
from loguru import logger

from gatewatch.config import GatewatchConfig
from gatewatch.ib.account import the_account
from probes.active.journal import PROBE_SCOPE, Journal
from probes.state import ProbeState


class OrderRefused(Exception):
    """The guard refused an order; nothing was sent. ``reason`` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SentOrder:
    """An order the guard let through: the live Trade, its tag and when it left this process."""

    trade: Trade
    order_ref: str
    sent_at: float


PAPER_ACCOUNT_PREFIX = "D"
"""IBKR paper account ids start with D (DU... for individual, DF... for advisor paper accounts)."""


@dataclass(frozen=True)
class PaperVerdict:
    """The paper rule's answer: ``reason`` is empty when orders may go, else the refusal's metric label."""

    account: str
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return not self.reason


def paper_verdict(
    *,
    paper: bool,
    port: int,
    paper_ports: Sequence[int],
    managed_accounts: Sequence[str],
    configured_account: str | None = None,
) -> PaperVerdict:
    """THE paper rule: may orders go to this Gateway? Pure, so the guard, preflight and the proxy agree.

    Three independent facts must all say paper, because each alone can be wrong: the operator's
    statement (``gateway.paper: true``), the port the connection uses (in ``gateway.paper_ports``;
    ports are only a convention and configurable in the Gateway) and the account ids.

    Several managed accounts (an advisor or linked login): EVERY managed account must start with D,
    not only the one the probes trade. Why: a login that can see a live account can route an order
    to it (an empty or wrong ``account`` field, an allocation group), so one live id among paper ones
    makes the whole Gateway live for this rule. "The" account is ``configured_account`` when set
    (it must then be managed by this Gateway), else the first managed account. No managed account
    at all (not logged in, or the list not yet received) is a refusal too.

    Checks run in a fixed order and the first failure is the reason: ``paper_false``,
    ``port_not_paper``, ``account_unknown``, ``account_not_paper``.
    """
    accounts = [a for a in managed_accounts if a]
    account = the_account(configured_account, accounts)
    if not paper:
        return PaperVerdict(account, "paper_false", "gateway.paper is false: orders only go to a paper Gateway")
    if port not in paper_ports:
        return PaperVerdict(
            account, "port_not_paper", f"port {port} is not in gateway.paper_ports {list(paper_ports)}"
        )
    if not account or account not in accounts:
        return PaperVerdict(
            account,
            "account_unknown",
            f"account {account or '(none)'} is not managed by this Gateway "
            f"(managed: {', '.join(accounts) or 'none'})",
        )
    live = [a for a in accounts if not a.startswith(PAPER_ACCOUNT_PREFIX)]
    if live:
        return PaperVerdict(
            account,
            "account_not_paper",
            f"account id(s) {', '.join(live)} do not start with {PAPER_ACCOUNT_PREFIX}: "
            "this Gateway is logged into a LIVE account",
        )
    return PaperVerdict(
        account, "", f"account {account} is paper, port {port} is a paper port, gateway.paper is true"
    )


def contract_to_dict(contract: Contract) -> dict[str, object]:
    """The fields needed to rebuild a contract after a crash (journal)."""
    return {
        "conId": contract.conId,
        "symbol": contract.symbol,
        "secType": contract.secType,
        "lastTradeDateOrContractMonth": contract.lastTradeDateOrContractMonth,
        "strike": contract.strike,
        "right": contract.right,
        "multiplier": contract.multiplier,
        "exchange": contract.exchange or "SMART",
        "currency": contract.currency or "USD",
    }


def multiplier_of(contract: Contract) -> float:
    """Contract multiplier (options 100); stocks have none."""
    try:
        return float(contract.multiplier) if contract.multiplier else 1.0
    except ValueError:
        return 1.0


class PaperGuard:
    """Checks, journals and sends probe orders; refuses anything outside the paper rules."""

    def __init__(
        self,
        ib: IB,
        config: GatewatchConfig,
        journal: Journal,
        *,
        run_id: str,
        metrics: ProbeState | None = None,
    ) -> None:
        self.ib = ib
        self.config = config
        self.journal = journal
        self.run_id = run_id
        self.metrics = metrics
        self._seq = 0
        self._closes: set[str] = set()
        """Refs of the probes' own closes sent this session: re-pricing one is not held to the notional cap."""

    # ----------------------------------------------------------------- paper checks
    @property
    def account(self) -> str:
        """The account the probes trade: the configured one, else the first managed account."""
        return the_account(self.config.gateway.account, self.ib.managedAccounts())

    def check_paper(self) -> str:
        """Raise :class:`OrderRefused` unless this connection is certainly paper (:func:`paper_verdict`).

        The port judged is the one this connection actually uses, not the configured one.
        """
        gateway = self.config.gateway
        if gateway.paper and not self.ib.isConnected():
            self._refuse("not_connected", "not connected to the Gateway")
        verdict = paper_verdict(
            paper=gateway.paper,
            port=int(getattr(self.ib.client, "port", -1)),
            paper_ports=gateway.paper_ports,
            managed_accounts=self.ib.managedAccounts(),
            configured_account=gateway.account,
        )
        if not verdict.ok:
            self._refuse(verdict.reason, f"{verdict.message}; no order sent")
        return verdict.account

    # ----------------------------------------------------------------- orders
    def new_order_ref(self, probe: str) -> str:
        """``<prefix>:<probe>:<run id>.<n>``: unique per order, so a retry can find its order."""
        self._seq += 1
        return f"{self.config.active.order_ref_prefix}:{probe}:{self.run_id}.{self._seq}"

    def owns(self, order_ref: str) -> bool:
        """True for orderRefs our probes wrote (only those may be cancelled or closed)."""
        return order_ref.startswith(self.config.active.order_ref_prefix + ":")

    def place(
        self,
        contract: Contract,
        order: Order,
        *,
        probe: str,
        reference_price: float | None = None,
        order_ref: str | None = None,
        scope: str = PROBE_SCOPE,
        reducing: bool = False,
    ) -> SentOrder:
        """Check limits, journal the intent, then send. ``reference_price`` prices MKT orders.

        ``scope`` is ``operator`` for closes of positions the probes did not open (flatten --all):
        the same checks and tag, but the journal keeps their fills out of the probes' position.
        ``reducing`` marks a close (the caller has capped it by what is held): the hourly cap
        does not apply to it, because refusing a close leaves risk on; everything else does.
        Nor does the notional cap to a close of the probes' own position (scope ``probe``): the
        cap admitted that position when it was opened, and a price that rose since must not keep
        it open. Operator-scope closes (flatten --all) keep the notional cap.
        """
        active = self.config.active
        if order.totalQuantity > active.max_quantity:
            self._refuse(
                "quantity",
                f"quantity {order.totalQuantity:g} exceeds active.max_quantity {active.max_quantity}",
            )
        price = order.lmtPrice if order.orderType == "LMT" else reference_price
        if price is None or not math.isfinite(price) or price <= 0:
            self._refuse(
                "price", f"order {order.orderType} has no usable price to check the notional against"
            )
        notional = float(order.totalQuantity) * float(price) * multiplier_of(contract)
        if notional > active.max_notional and not (reducing and scope == PROBE_SCOPE):
            self._refuse(
                "notional", f"notional {notional:.2f} USD exceeds active.max_notional {active.max_notional:g}"
            )
        return self._send(contract, order, probe=probe, order_ref=order_ref, scope=scope, reducing=reducing)

    async def place_reject_test(
        self, contract: Contract, order: Order, *, probe: str, bid: float
    ) -> SentOrder:
        """The one exception to the size/notional limits: an order meant to be rejected (201).

        Why it is safe: (1) it must be a BUY limit priced at or below half the current bid, so even
        if the Gateway accepted it, it could not fill before we cancel it; (2) a what-if check runs
        first and the order is sent only if the Gateway itself predicts the initial margin would
        exceed the equity with loan (i.e. it will be rejected); (3) the caller cancels it at once
        if it is not rejected. It still passes the paper checks, the per-hour limit and the journal.
        """
        if order.action != "BUY" or order.orderType != "LMT":
            self._refuse("reject_test_shape", "the reject test must be a BUY limit order")
        limit = float(order.lmtPrice or 0.0)
        if not (bid > 0 and 0 < limit <= bid * 0.5):
            self._refuse(
                "reject_test_marketable",
                f"reject-test limit {order.lmtPrice} must be at most half the bid {bid}",
            )
        self.check_paper()
        self._check_rate()
        what_if = Order(
            action=order.action,
            totalQuantity=order.totalQuantity,
            orderType="LMT",
            lmtPrice=order.lmtPrice,
            account=self.account,
            tif="DAY",
            orderRef=self.new_order_ref(probe),
        )
        state = await self.ib.whatIfOrderAsync(contract, what_if)
        init_after = _number(getattr(state, "initMarginAfter", ""))
        equity_after = _number(getattr(state, "equityWithLoanAfter", ""))
        if not (init_after > equity_after > 0):
            self._refuse(
                "reject_test_whatif",
                f"what-if predicts acceptance (initial margin {init_after:.2f} <= equity "
                f"{equity_after:.2f}): not sending an order that might be accepted",
            )
        return self._send(contract, order, probe=probe, order_ref=None)

    def modify_price(self, sent: SentOrder, new_price: float) -> None:
        """Re-price one of our open limit orders (same order id: never a second order)."""
        order = sent.trade.order
        if not self.owns(order.orderRef):
            self._refuse("order_ref", f"order {order.orderId} is not a probe order")
        notional = float(order.totalQuantity) * new_price * multiplier_of(sent.trade.contract)
        if notional > self.config.active.max_notional and sent.order_ref not in self._closes:
            self._refuse("notional", f"re-priced notional {notional:.2f} USD exceeds active.max_notional")
        self.check_paper()
        order.lmtPrice = new_price
        self.journal.update_price(sent.order_ref, new_price)
        self.ib.placeOrder(sent.trade.contract, order)

    def _check_reduces(self, contract: Contract, order: Order, scope: str) -> None:
        """A probe order exempt from the hourly cap must shrink the journal's position, not flip it.

        Why here as well as in the caller: the exemption must not become a way around the cap.
        The caller has already checked the Gateway agrees (holdings); operator-scope closes
        (flatten --all) are priced from the Gateway's own position and are checked by the caller.
        """
        if scope != PROBE_SCOPE:
            return
        net = self.journal.net_positions().get(contract.conId, 0.0)
        signed = float(order.totalQuantity) * (1.0 if order.action == "BUY" else -1.0)
        if not (net * signed < 0 and abs(signed) <= abs(net) + 1e-9):
            self._refuse(
                "not_reducing",
                f"{order.action} {order.totalQuantity:g} is not a reduction of the probes' position {net:g}",
            )

    def _check_rate(self) -> None:
        limit = self.config.active.max_orders_per_hour
        sent = self.journal.orders_since(time.time() - 3600)
        if sent >= limit:
            self._refuse(
                "rate", f"{sent} probe orders in the last hour: active.max_orders_per_hour is {limit}"
            )

    def _send(
        self,
        contract: Contract,
        order: Order,
        *,
        probe: str,
        order_ref: str | None,
        scope: str = PROBE_SCOPE,
        reducing: bool = False,
    ) -> SentOrder:
        account = self.check_paper()
        if reducing:
            self._check_reduces(contract, order, scope)
        else:
            self._check_rate()
        if not contract.conId:
            self._refuse("contract", "contract is not qualified (conId 0)")
        ref = order_ref or self.new_order_ref(probe)
        if not self.owns(ref):
            self._refuse(
                "order_ref", f"orderRef {ref!r} lacks the {self.config.active.order_ref_prefix!r} prefix"
            )
        if reducing and scope == PROBE_SCOPE:
            self._closes.add(ref)
        order.orderRef = ref
        order.account = account
        order.tif = order.tif or "DAY"
        order.orderId = self.ib.client.getReqId()
        self.journal.record_intent(
            order_ref=ref,
            probe=probe,
            run_id=self.run_id,
            client_id=self.ib.client.clientId,
            order_id=order.orderId,
            con_id=contract.conId,
            contract=contract_to_dict(contract),
            action=order.action,
            quantity=float(order.totalQuantity),
            order_type=order.orderType,
            limit_price=float(order.lmtPrice or 0.0) if order.orderType == "LMT" else None,
            scope=scope,
        )
        if self.metrics:
            self.metrics.orders[order.action.lower()] += 1
        logger.info(
            "probe order {} {} {:g} {} {} @ {} sent (id {})",
            ref,
            order.action,
            order.totalQuantity,
            contract.localSymbol or contract.symbol,
            order.orderType,
            order.lmtPrice if order.orderType == "LMT" else "MKT",
            order.orderId,
        )
        sent_at = time.time()
        trade = self.ib.placeOrder(contract, order)
        return SentOrder(trade=trade, order_ref=ref, sent_at=sent_at)

    def _refuse(self, reason: str, message: str) -> NoReturn:
        if self.metrics:
            self.metrics.orders_refused[reason] += 1
        logger.warning("probe order refused ({}): {}", reason, message)
        raise OrderRefused(reason, message)


def _number(text: object) -> float:
    try:
        value = float(str(text))
    except ValueError:
        return float("nan")
    return value if math.isfinite(value) and abs(value) < 1e300 else float("nan")
