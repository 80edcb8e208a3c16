"""The proxy's paper guard: no placeOrder reaches the Gateway unless the ONE paper rule says paper.

The rule itself is :func:`probes.active.guard.paper_verdict` (shared with the active probes and
preflight); this module only applies it to a bot's connection: the upstream port, the accounts the
Gateway announced on this connection (managedAccounts) and the order's own account field (text
placeOrder, or IBKR's PlaceOrderRequest at server versions above 200, read by
:mod:`proxy.protodecode`). An order whose bytes cannot be read is judged without its account
field, and a connection whose accounts are unknown is refused: when in doubt, nothing is sent.
The bot gets an error for that order id (201, the Gateway's own "order rejected" code) whose text
says why.
"""

from __future__ import annotations

from loguru import logger

from gatewatch.config import GatewayConfig
from probes.active.guard import paper_verdict
from proxy import protodecode
from proxy.inject import error_frame
from proxy.measure import ConnState
from proxy.observer import PROTOBUF_MIN_SERVER_VERSION, PROTOBUF_MSG_ID
from proxy.relay import Connection

PLACE_ORDER = 3
ORDER_REJECTED = 201
#: Index of the account field in a text placeOrder (no version field; TWS protocol notes).
ACCOUNT_FIELD = 23


class OrderGuard:
    """Filters the bot's placeOrder messages through the paper rule."""

    def __init__(self, gateway: GatewayConfig, upstream_port: int, *, paper_only: bool) -> None:
        self.gateway = gateway
        self.upstream_port = upstream_port
        self.paper_only = paper_only

    def filter(self, conn: Connection, payloads: list[bytes]) -> list[bytes] | None:
        """None when nothing is held back (the common case, at the cost of one scan)."""
        if not self.paper_only:
            return None
        raw = conn.server_version >= PROTOBUF_MIN_SERVER_VERSION
        if not any(_order(p, raw) is not None for p in payloads):
            return None
        kept: list[bytes] = []
        for payload in payloads:
            order = _order(payload, raw)
            if order is None or self._allowed(conn, *order):
                kept.append(payload)
        return kept

    def _allowed(self, conn: Connection, order_id: str, account: str) -> bool:
        verdict = paper_verdict(
            paper=self.gateway.paper,
            port=self.upstream_port,
            paper_ports=self.gateway.paper_ports,
            managed_accounts=conn.accounts,
            configured_account=account or None,
        )
        if verdict.ok:
            return True
        st: ConnState | None = conn.state.get("obs")
        if st is not None:
            st.stats.refused[verdict.reason] += 1
        logger.warning(
            "proxy paper guard: order {} of client id {} NOT sent to the Gateway ({}): {}",
            order_id,
            conn.client_id,
            verdict.reason,
            verdict.message,
        )
        try:
            req_id = int(order_id)
        except ValueError:
            req_id = -1
        text = f"Order rejected - reason: gatewatch proxy paper guard ({verdict.reason}): {verdict.message}"
        if conn.ready:
            conn.bot_writer.write(error_frame(conn.server_version, req_id, ORDER_REJECTED, text))
        return False


def _order(payload: bytes, raw_ids: bool) -> tuple[str, str] | None:
    """(order id, account field) of a placeOrder, else None."""
    if raw_ids:
        if len(payload) < 4:
            return None
        mid = int.from_bytes(payload[:4], "big")
        if mid == PLACE_ORDER + PROTOBUF_MSG_ID:
            try:
                ids, account = protodecode.place_order(payload[4:])
            except protodecode.DecodeError:
                return "-1", ""
            return str(ids[0]), account
        if mid != PLACE_ORDER:
            return None
        payload = b"3\0" + payload[4:]
    elif not payload.startswith(b"3\0"):
        return None
    fields = payload.split(b"\0", ACCOUNT_FIELD + 1)
    order_id = fields[1].decode("ascii", "replace") if len(fields) > 1 else "?"
    account = fields[ACCOUNT_FIELD].decode("utf-8", "replace") if len(fields) > ACCOUNT_FIELD else ""
    return order_id, account
