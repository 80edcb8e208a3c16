"""gatewatch's own API clients: which client id each uses, and connecting one, written once.

Why fixed, distinct client ids: the Gateway refuses a second connection with an id already in use
(error 326) and may knock the first one off, and it replays open orders only to the client id that
placed them (the probes' recovery depends on that). So each of gatewatch's clients has its own id,
derived from the configuration in one place:

- the exporter's read-only connection: ``gateway.client_id`` (also the Gateway's Master API client
  id, so it sees every client's orders and executions);
- the active probes, ``gatewatch probe run`` and ``gatewatch flatten``: ``gateway.probe_client_id``
  (flatten must be the client that placed the probe orders to cancel them);
- preflight: ``gateway.client_id + PREFLIGHT_CLIENT_ID_OFFSET``, so it can run beside a live exporter;
- the live validation suite: its read-only connection ``gateway.client_id + LIVE_SUITE_CLIENT_ID_OFFSET``
  and its order connection ``gateway.probe_client_id + LIVE_SUITE_CLIENT_ID_OFFSET``, so it can run
  beside a live exporter, its scheduled probes and a preflight.

Connecting: every request is time-boxed (``gateway.request_timeout``; ib_async has none by default),
the handshake and initial synchronisation by ``gateway.connect_timeout``, and the whole attempt by an
outer bound that catches a Gateway that accepts and then says nothing at all.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

from ib_async import IB

from gatewatch.config import GatewayConfig

PREFLIGHT_CLIENT_ID_OFFSET = 10
LIVE_SUITE_CLIENT_ID_OFFSET = 20
CONNECT_BOUND_FACTOR = 3
"""The outer bound is this many connect timeouts: the handshake plus ib_async's sync requests."""


class Client(StrEnum):
    """gatewatch's own API clients."""

    EXPORTER = "exporter"
    PROBES = "probes"
    PREFLIGHT = "preflight"
    LIVE_SUITE = "live-suite"
    LIVE_SUITE_PROBES = "live-suite-probes"


def client_id(gateway: GatewayConfig, client: Client) -> int:
    """The client id ``client`` connects with (see the module docstring for why each)."""
    if client is Client.EXPORTER:
        return gateway.client_id
    if client is Client.PROBES:
        return gateway.probe_client_id
    if client is Client.LIVE_SUITE:
        return gateway.client_id + LIVE_SUITE_CLIENT_ID_OFFSET
    if client is Client.LIVE_SUITE_PROBES:
        return gateway.probe_client_id + LIVE_SUITE_CLIENT_ID_OFFSET
    return gateway.client_id + PREFLIGHT_CLIENT_ID_OFFSET


def connect_bound(gateway: GatewayConfig) -> float:
    """The longest one connection attempt can take (the outer bound of :func:`connect`)."""
    return gateway.connect_timeout * CONNECT_BOUND_FACTOR


async def connect(
    ib: IB, gateway: GatewayConfig, client: Client | int, *, readonly: bool = False
) -> None:
    """Connect ``ib`` as ``client`` (one of gatewatch's, or an explicit client id), time-boxed.

    Raises TimeoutError, OSError/ConnectionError like ``IB.connectAsync``; a connection that the
    Gateway closes during synchronisation is a ConnectionError too.
    """
    number = client if isinstance(client, int) else client_id(gateway, client)
    ib.RequestTimeout = gateway.request_timeout
    await asyncio.wait_for(
        ib.connectAsync(
            gateway.host,
            gateway.port,
            clientId=number,
            timeout=gateway.connect_timeout,
            readonly=readonly,
            account=gateway.account or "",
        ),
        connect_bound(gateway),
    )
    if not ib.isConnected():
        raise ConnectionError("connection closed during synchronisation")
