"""``gatewatch sim``: run the simulated IB Gateway in the foreground.

Every bad input (a missing or unplayable scenario file, an empty account, an unreadable ``--config``)
is refused before anything listens, with exit status 2 and a message naming the culprit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from loguru import logger
from pydantic import ValidationError

from simulator.config import DEFAULT_MASTER_CLIENT_ID, SimConfig
from simulator.protobuf import MAX_SERVED, MIN_SERVED
from simulator.scenario import ScenarioError, load_scenario
from simulator.server import Simulator

DEFAULT_ACCOUNT = "DU1234567"
DEFAULT_SYMBOLS = "SPY,QQQ,IWM"
NO_MASTER = -1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4002, help="TWS API port (default 4002, 0 = ephemeral)")
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=(
            "gatewatch configuration to serve: symbols from probes.symbols, the master client id from "
            "gateway.client_id, the account from gateway.account (explicit options win)"
        ),
    )
    parser.add_argument("--account", default=None, help=f"account id to report (default {DEFAULT_ACCOUNT})")
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
    parser.add_argument("--list-faults", action="store_true",
                        help="print the fault names scenarios and the control API accept, with their fields; exit")
    parser.add_argument("--symbols", default=None, help=f"comma-separated stock symbols (default {DEFAULT_SYMBOLS})")
    parser.add_argument("--tick-hz", type=float, default=4.0, help="quote updates per second per symbol")
    parser.add_argument(
        "--max-server-version",
        type=int,
        default=MAX_SERVED,
        metavar="N",
        help=f"highest server version to negotiate: 157-178 (text protocol) or {MIN_SERVED}-{MAX_SERVED} "
        f"(protobuf, for clients that advertise it; default {MAX_SERVED}); clients advertising less get "
        "the highest served version in their range",
    )
    parser.add_argument(
        "--master-client-id",
        type=_master_client_id,
        default=None,
        metavar="N",
        help=(
            "the Gateway's 'Master API client ID': that client hears every client's orders and "
            f"executions (default {DEFAULT_MASTER_CLIENT_ID}, gatewatch's exporter client id, or "
            "gateway.client_id with --config: the simulator comes configured as "
            "docs/deployment_validation_checklist.md asks a real Gateway to be; -1 or 'none' disables)"
        ),
    )


def _master_client_id(text: str) -> int:
    """``N`` >= 0, or ``-1`` / ``none`` for no master client (argparse reports a bad value, exit 2)."""
    if text.strip().lower() == "none":
        return NO_MASTER
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a client id >= 0, -1 or 'none', got {text!r}") from None
    if value < NO_MASTER:
        raise argparse.ArgumentTypeError(f"expected a client id >= 0, -1 or 'none', got {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Options over ``--config`` over built-in defaults. Raises ValueError naming the bad input."""
    symbols: str | list[str] = DEFAULT_SYMBOLS
    account = DEFAULT_ACCOUNT
    master: int | None = DEFAULT_MASTER_CLIENT_ID
    if args.config is not None:
        from gatewatch.config import ConfigError, load_config  # only --config needs gatewatch's model

        try:
            loaded = load_config(args.config)
        except ConfigError as exc:
            raise ValueError(f"--config: {exc}") from None
        symbols = list(loaded.probes.symbols)
        account = loaded.gateway.account or account
        master = loaded.gateway.client_id
    if args.symbols is not None:
        symbols = args.symbols
    if args.account is not None:
        account = args.account
    if args.master_client_id is not None:
        master = None if args.master_client_id == NO_MASTER else args.master_client_id
    control = args.control_port
    try:
        cfg = SimConfig.model_validate(
            {
                "host": args.host,
                "port": args.port,
                "account": account,
                "seed": args.seed,
                "control_port": None if control is not None and control < 0 else control,
                "market": args.market,
                "scenario": args.scenario,
                "symbols": symbols,
                "tick_hz": args.tick_hz,
                "master_client_id": master,
                "max_server_version": args.max_server_version,
            }
        )
    except ValidationError as exc:
        raise ValueError("; ".join(_describe(e) for e in exc.errors())) from None
    if cfg.scenario:
        load_scenario(cfg.scenario, cfg.symbols)  # raises ScenarioError naming the file and the entry
    return cfg


def _describe(error: Any) -> str:
    """``--account: account must be ...`` from one pydantic error (the option named as typed)."""
    option = "--" + "-".join(str(p) for p in error["loc"]).replace("_", "-")
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{option}: {message}"


async def _serve(cfg: SimConfig) -> None:
    # Signal handlers before the listeners start: a SIGTERM during the start (a supervisor giving up
    # on it) stops the simulator cleanly, exit 0, instead of killing it.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    sim = Simulator(cfg)
    await sim.start()
    try:
        await stop.wait()
    finally:
        await sim.stop()


def list_faults() -> str:
    """One line per fault of the catalogue (simulator.faults.FAULTS): its name and the fields it takes."""
    from simulator.faults import FAULTS

    lines = []
    for name in sorted(FAULTS):
        params, takes_for = FAULTS[name]
        fields = sorted(params) + (["for"] if takes_for else [])
        lines.append(f"{name:<24} {', '.join(fields) if fields else '-'}")
    return "\n".join(["fault                    fields", *lines])


def run(args: argparse.Namespace) -> int:
    if getattr(args, "list_faults", False):
        print(list_faults())
        return 0
    try:
        cfg = config_from_args(args)
    except ScenarioError as exc:
        logger.error("invalid scenario: {}", exc)
        return 2
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
