"""The ``gatewatch`` command: one entry point, a subcommand per job.

Subcommand modules are imported only when chosen, so ``gatewatch sim`` does not pay for the
exporter's imports (start-up time matters on a Raspberry Pi). Each module provides
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from gatewatch.config import ConfigError


@dataclass(frozen=True)
class Command:
    module: str
    summary: str
    subcommands: tuple[tuple[str, Command], ...] = ()
    """``gatewatch <command> <sub> ...`` dispatches to the sub-command's module."""


COMMANDS: dict[str, Command] = {
    "sim": Command("simulator.cli", "run the simulated IB Gateway (TWS API socket protocol, fault injection)"),
    "exporter": Command("exporter.cli", "run the Prometheus exporter and its passive probes"),
    "proxy": Command("proxy.cli", "relay a bot's TWS API connection to the Gateway, measuring what the bot sees"),
    "probe": Command("probes.cli", "run the active paper-order probes once (gatewatch probe run)"),
    "flatten": Command("probes.flatten", "cancel probe orders and close probe positions"),
    "preflight": Command("gatewatch.preflight", "check everything a validation session needs, before it starts"),
    "evidence": Command("gatewatch.evidence.cli", "judge a session from Prometheus and write the evidence bundle",
                        (("verify", Command("gatewatch.evidence.verify",
                                            "check an evidence bundle's signature and files (edits, deletions, "
                                            "additions)")),)),
    "rehearse": Command("gatewatch.rehearse", "rehearse a whole session against the simulator, with faults"),
    "stack": Command("gatewatch.stack", "run the whole stack natively (no Docker): sim, exporter, Prometheus, ..."),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: gatewatch <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += ["", "gatewatch <command> --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; configuration errors exit with status 2 and name the field."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    command = COMMANDS.get(name)
    if command is None:
        print(f"gatewatch: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    subcommands = dict(command.subcommands)
    if rest and rest[0] in subcommands:
        name, command, rest = f"{name} {rest[0]}", subcommands[rest[0]], rest[1:]
    module = importlib.import_module(command.module)
    parser = argparse.ArgumentParser(prog=f"gatewatch {name}", description=command.summary)
    module.add_arguments(parser)
    parsed = parser.parse_args(rest)
    try:
        return int(module.run(parsed) or 0)
    except ConfigError as exc:
        print(f"gatewatch {name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
