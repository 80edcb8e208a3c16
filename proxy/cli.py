"""``gatewatch proxy``: run the bot's TWS API proxy in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal

from loguru import logger

from gatewatch.config import ConfigError, add_config_argument, load_config, split_host_port
from gatewatch.logs import setup_logging
from proxy.app import ProxyApp


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--listen", help="host:port the bot connects to (proxy.listen, default 127.0.0.1:4012)")
    parser.add_argument(
        "--upstream", help="the Gateway's host:port (proxy.upstream; default gateway.host:port or GATEWATCH_GATEWAY)"
    )
    parser.add_argument("--metrics", help="host:port for /metrics and /healthz (proxy.metrics_listen)")
    parser.add_argument("--control-port", type=int, help="fault control API port (proxy.control_port; 0: any)")
    parser.add_argument("--scenario", help="fault timeline for the bot's path (proxy.scenario)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    pc = config.proxy
    for flag, attr in (("--listen", "listen"), ("--upstream", "upstream"), ("--metrics", "metrics_listen")):
        value = getattr(args, flag.lstrip("-"))
        if value:
            split_host_port(value, field=flag)
            setattr(pc, attr, value)
    if args.control_port is not None:
        if not 0 <= args.control_port <= 65535:
            raise ConfigError(f"--control-port: expected 0..65535, got {args.control_port}")
        pc.control_port = args.control_port
    if args.scenario:
        pc.scenario = args.scenario
    setup_logging(config.exporter.log_level, config.exporter.log_json)
    try:
        app = ProxyApp(config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    # Everything imported so far lives as long as the process: keep it out of the cyclic garbage
    # collector's scans, so a collection never pauses the relay for long.
    gc.collect()
    gc.freeze()
    return asyncio.run(_serve(app))


async def _serve(app: ProxyApp) -> int:
    # Signal handlers first: a SIGTERM that arrives while the listeners start (the /healthz answer
    # may already be out) stops the proxy cleanly instead of killing it.
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, lambda: main.cancel() if main else None)
    try:
        try:
            await app.start()
        except OSError as exc:
            logger.error("proxy cannot listen: {}", exc.strerror or exc)
            return 1
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        logger.info("proxy stopping")
    finally:
        await app.stop()
    return 0
