"""Run the proxy in a background thread, for synchronous tests and benches (like simulator.testing)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from gatewatch.config import GatewatchConfig
from gatewatch.loop_thread import call_in_loop, loop_thread
from proxy.app import ProxyApp
from proxy.relay import Relay, RelayHooks

T = TypeVar("T")


class ProxyHandle:
    """Thread-safe facade over a relay running in its own event loop."""

    def __init__(self, relay: Relay, loop: asyncio.AbstractEventLoop) -> None:
        self.relay = relay
        self.loop = loop

    @property
    def port(self) -> int:
        return self.relay.port

    @property
    def hooks(self) -> RelayHooks:
        return self.relay.hooks

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the proxy's loop and return its result."""
        return call_in_loop(self.loop, fn, *args)


@contextlib.contextmanager
def running_proxy(
    upstream_port: int, hooks: RelayHooks | None = None, host: str = "127.0.0.1"
) -> Iterator[ProxyHandle]:
    """The bare relay: ``with running_proxy(sim.port) as proxy: IB().connect("127.0.0.1", proxy.port, 7)``."""
    relay = Relay((host, 0), (host, upstream_port), hooks)
    with loop_thread(relay.start, relay.stop, name="proxy") as loop:
        yield ProxyHandle(relay, loop)


@contextlib.contextmanager
def running_proxy_app(upstream_port: int, **proxy: Any) -> Iterator[ProxyApp]:
    """The whole proxy (decoder, guard, faults, /metrics, control API) on free ports, in a thread.

    ``proxy`` overrides fields of the ``proxy:`` config section; the upstream is a paper port
    unless ``gateway`` says otherwise (``gateway={"paper_ports": [...]}``).
    """
    gateway = {"port": upstream_port, "paper_ports": [upstream_port], **proxy.pop("gateway", {})}
    section = {"listen": "127.0.0.1:0", "metrics_listen": "127.0.0.1:0", "control_port": 0, **proxy}
    app = ProxyApp(GatewatchConfig.model_validate({"gateway": gateway, "proxy": section}))
    with loop_thread(app.start, app.stop, name="proxy"):
        yield app
