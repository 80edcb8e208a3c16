"""``gatewatch sim``: run the simulated IB Gateway in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from loguru import logger

from simulator.config import DEFAULT_MASTER_CLIENT_ID, SimConfig
from simulator.server import Simulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4002, help="TWS API port (default 4002, 0 = ephemeral)")
    parser.add_argument("--account", default="DU1234567", help="account id to report (default DU1234567)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for prices (default 0)")
    parser.add_argument(
        "--control-port",
        type=int,
        default=4080,
        help="HTTP control API port (default 4080, 0 = ephemeral, -1 = off)",
    )
    parser.add_argument(
        "--market",
        choices=["open", "calendar"],
        default="open",
        help="'open' trades around the clock; 'calendar' follows NYSE hours",
    )
    parser.add_argument("--scenario", default=None, help="YAML fault timeline to play")
    parser.add_argument("--symbols", default="SPY,QQQ,IWM", help="comma-separated stock symbols")
    parser.add_argument("--tick-hz", type=float, default=4.0, help="quote updates per second per symbol")
    parser.add_argument(
        "--master-client-id",
        type=_master_client_id,
        default=DEFAULT_MASTER_CLIENT_ID,
        metavar="N",
        help=(
            "the Gateway's 'Master API client ID': that client hears every client's orders and "
            f"executions (default {DEFAULT_MASTER_CLIENT_ID}, gatewatch's exporter client id: the simulator "
            "comes configured as docs/deployment_validation_checklist.md asks a real Gateway to be; "
            "-1 or 'none' disables)"
        ),
    )


def _master_client_id(text: str) -> int | None:
    """``N`` >= 0, or ``-1`` / ``none`` for no master client (argparse reports a bad value, exit 2)."""
    if text.strip().lower() in ("none", "-1", ""):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a client id >= 0, -1 or 'none', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a client id >= 0, -1 or 'none', got {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> SimConfig:
    control = args.control_port
    return SimConfig(
        host=args.host,
        port=args.port,
        account=args.account,
        seed=args.seed,
        control_port=None if control is not None and control < 0 else control,
        market=args.market,
        scenario=args.scenario,
        symbols=args.symbols,
        tick_hz=args.tick_hz,
        master_client_id=args.master_client_id,
    )


async def _serve(cfg: SimConfig) -> None:
    sim = Simulator(cfg)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        logger.error("invalid simulator configuration: {}", exc)
        return 2
    try:
        asyncio.run(_serve(cfg))
    except OSError as exc:
        logger.error("cannot start the simulator: {}", exc)
        return 1
    except ValueError as exc:
        logger.error("cannot start the simulator: {}", exc)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
