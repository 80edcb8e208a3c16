"""Run the proxy in a background thread, for synchronous tests and benches (like simulator.testing)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from gatewatch.config import GatewatchConfig
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

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


@contextlib.contextmanager
def _in_thread(
    start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[Any]]
) -> Iterator[asyncio.AbstractEventLoop]:
    """Start a service on an event loop of its own in a daemon thread; stop it on exit."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, BaseException] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                await start()
            except BaseException as exc:
                box["error"] = exc
            finally:
                ready.set()

        loop.run_until_complete(boot())
        if "error" not in box:
            loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=main, name="proxy", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in box:
        raise box["error"]
    try:
        yield loop
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(10)  # type: ignore[arg-type]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@contextlib.contextmanager
def running_proxy(
    upstream_port: int, hooks: RelayHooks | None = None, host: str = "127.0.0.1"
) -> Iterator[ProxyHandle]:
    """The bare relay: ``with running_proxy(sim.port) as proxy: IB().connect("127.0.0.1", proxy.port, 7)``."""
    relay = Relay((host, 0), (host, upstream_port), hooks)
    with _in_thread(relay.start, relay.stop) as loop:
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
    with _in_thread(app.start, app.stop):
        yield app
