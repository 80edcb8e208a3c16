"""``gatewatch exporter``: run the exporter until interrupted.

Configuration problems raise :class:`gatewatch.config.ConfigError`, which ``gatewatch.cli`` prints
(file and field named) before exiting with status 2. A Gateway that is down is not an error here:
the exporter starts anyway, reports ``gatewatch_gateway_connected 0`` and keeps retrying.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from loguru import logger

from exporter.app import ExporterApp
from gatewatch.config import add_config_argument, load_config, split_host_port
from gatewatch.logs import setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--listen", help="host:port for /metrics and /healthz (overrides exporter.listen)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.listen:
        split_host_port(args.listen, field="--listen")
        config.exporter.listen = args.listen
    setup_logging(config.exporter.log_level, config.exporter.log_json)
    # /metrics is served from a thread: with the default 5 ms GIL switch interval a scrape can wait
    # a full interval behind the event loop; 1 ms keeps the scrape's tail latency low.
    sys.setswitchinterval(0.001)
    return asyncio.run(_serve(ExporterApp(config)))


async def _serve(app: ExporterApp) -> int:
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    unwinding: list[asyncio.Task[None]] = []

    async def unwind_then_stop() -> None:
        await app.unwind()
        if main:
            main.cancel()

    def on_signal() -> None:
        # First signal: the active probes unwind (cancel, close; bounded), then stop. Second: stop now.
        if not unwinding and app.unwind_hooks:
            logger.info("stopping: unwinding the active probes first (a second signal stops at once)")
            unwinding.append(loop.create_task(unwind_then_stop()))
        elif main:
            main.cancel()

    # The handlers come before the HTTP server: /healthz answers from its own threads at once, and a
    # supervisor's SIGTERM right after it must stop the exporter cleanly, not kill it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    try:
        app.start_http()
    except OSError as exc:
        logger.error("cannot listen on {}: {}", app.config.exporter.listen, exc.strerror or exc)
        return 1
    logger.info("watching gateway {} (client id {}, read-only)",
                app.session.address, app.config.gateway.client_id)
    try:
        await app.run()
    except asyncio.CancelledError:
        logger.info("exporter stopping")
    finally:
        app.stop_http()
    return 0
