"""The proxy's paper guard: no placeOrder reaches the Gateway unless the ONE paper rule says paper.

The rule itself is :func:`probes.active.guard.paper_verdict` (shared with the active probes and
preflight); this module only applies it to a bot's connection: the upstream port, the accounts the
Gateway announced on this connection (managedAccounts) and the order's own account field. An
order that cannot be read (protobuf) is judged without its account field, and a connection whose
accounts are unknown is refused: when in doubt, nothing is sent. The bot gets an error for that
order id (201, the Gateway's own "order rejected" code) whose text says why.
"""

from __future__ import annotations

from loguru import logger

from gatewatch.config import GatewayConfig
from probes.active.guard import paper_verdict
from proxy import protowire
from proxy.inject import error_frame
from proxy.observer import PROTOBUF_MIN_SERVER_VERSION, PROTOBUF_MSG_ID, ConnState
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
        if not any(_order_fields(p, raw) is not None for p in payloads):
            return None
        kept: list[bytes] = []
        for payload in payloads:
            fields = _order_fields(payload, raw)
            if fields is None or self._allowed(conn, fields):
                kept.append(payload)
        return kept

    def _allowed(self, conn: Connection, fields: list[bytes]) -> bool:
        account = fields[ACCOUNT_FIELD].decode("utf-8", "replace") if len(fields) > ACCOUNT_FIELD else ""
        verdict = paper_verdict(
            paper=self.gateway.paper,
            port=self.upstream_port,
            paper_ports=self.gateway.paper_ports,
            managed_accounts=conn.accounts,
            configured_account=account or None,
        )
        if verdict.ok:
            return True
        order_id = fields[1].decode("ascii", "replace") if len(fields) > 1 else "?"
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


def _order_fields(payload: bytes, raw_ids: bool) -> list[bytes] | None:
    """The fields of a placeOrder (protobuf ones: only the id), else None."""
    if raw_ids:
        if len(payload) < 4:
            return None
        mid = int.from_bytes(payload[:4], "big")
        if mid == PLACE_ORDER:
            return [b"3", *payload[4:].split(b"\0")]
        if mid == PLACE_ORDER + PROTOBUF_MSG_ID:  # PlaceOrderRequest: orderId = 1
            try:
                order_id = protowire.fields(payload[4:]).get(1, -1)
            except ValueError:
                order_id = -1
            return [b"3", str(order_id if isinstance(order_id, int) else -1).encode()]
        return None
    if not payload.startswith(b"3\0"):
        return None
    return payload.split(b"\0", ACCOUNT_FIELD + 1)
