"""``gatewatch rehearse``: a whole validation session against the simulator, faults on a timeline.

Why: the 2-hour paper session during market hours is expensive to repeat. Rehearsing it first
(calm: the verdict must pass; chaos: it must fail, naming the right gates, without the exporter
ever going dark or a probe order being left behind) shows the monitor itself is sound.

Exit status: 0 when the verdict passes and the broker's books are clean, 1 otherwise, 2 for bad
input (the option is named), 128 + signum when SIGTERM/SIGINT stopped it (the parts are stopped,
the exporter first so it unwinds its probes, then the books are checked and reported; a second
signal kills every part at once).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from loguru import logger

from gatewatch.config import ConfigError, parse_duration
from gatewatch.localstack.process import REPO_ROOT, StartError
from gatewatch.logs import setup_logging
from gatewatch.rehearsal.checks import check_ledger
from gatewatch.rehearsal.runner import Rehearsal, RehearsalOptions, RehearsalStopped
from probes.active.stopping import STOP_SIGNALS, StopRequest

DEFAULT_SCENARIO = REPO_ROOT / "scenarios" / "chaos.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", default="10m", help="session length to rehearse (default 10m)")
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO,
                        help="fault timeline (default scenarios/chaos.yaml; scenarios/calm.yaml has none)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for logs, generated configs, evidence (default var/rehearsal-TIME)")
    parser.add_argument("--config", type=Path, default=None,
                        help="gatewatch configuration to start from (gateway, ports, intervals overridden)")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="multiply scenario times by this (default: duration / 10m)")
    parser.add_argument("--progress-every", default="5s", help="progress line interval (default 5s)")
    parser.add_argument("--seed", type=int, default=1, help="simulator price seed (default 1)")
    parser.add_argument("--market", choices=["open", "calendar"], default="open",
                        help="open (default): the simulator trades and the session counts as market hours "
                        "around the clock; calendar: both follow NYSE hours")
    parser.add_argument("--no-prometheus", action="store_true",
                        help="do not start Prometheus/Alertmanager (no alerts, no verdict)")
    parser.add_argument("--no-bot", action="store_true",
                        help="do not run examples/bot.py through gatewatch proxy (the bot gates then pass on no data)")
    parser.add_argument("--proxy-scenario", type=Path, default=None,
                        help="faults on the bot's path, scaled like --scenario (e.g. scenarios/bot-chaos.yaml)")


def options_from_args(args: argparse.Namespace) -> RehearsalOptions:
    """Validate the options; a bad value is a ConfigError naming the option (exit status 2)."""
    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise ConfigError(f"--duration: {exc}") from exc
    if duration < 20:
        raise ConfigError("--duration: at least 20s (a probe run and a few scrapes must fit)")
    try:
        progress = parse_duration(args.progress_every)
    except ValueError as exc:
        raise ConfigError(f"--progress-every: {exc}") from exc
    if not args.scenario.is_file():
        raise ConfigError(f"--scenario: no such file: {args.scenario}")
    if args.proxy_scenario is not None:
        from proxy.faults import load_scenario

        if args.no_bot:
            raise ConfigError("--proxy-scenario: needs the bot (drop --no-bot)")
        try:
            load_scenario(args.proxy_scenario)
        except ValueError as exc:
            raise ConfigError(f"--proxy-scenario: {exc}") from exc
    if args.config is not None and not args.config.is_file():
        raise ConfigError(f"--config: no such file: {args.config}")
    out = args.out or REPO_ROOT / "var" / f"rehearsal-{time.strftime('%Y%m%d-%H%M%S')}"
    return RehearsalOptions(duration=duration, scenario=args.scenario, out_dir=out, config=args.config,
                            time_scale=args.time_scale, progress_every=max(1.0, progress), seed=args.seed,
                            use_prometheus=not args.no_prometheus, market=args.market, bot=not args.no_bot,
                            proxy_scenario=args.proxy_scenario)


def run(args: argparse.Namespace) -> int:
    setup_logging("INFO")
    options = options_from_args(args)
    stop = StopRequest()
    try:
        rehearsal = Rehearsal(options)
        # Handlers outermost: a signal while the parts are stopped is still handled (never orphans them).
        with _stop_on_signals(rehearsal, stop), rehearsal:
            try:
                rehearsal.start()
                rehearsal.play()
            except (RehearsalStopped, StartError):
                if stop.signal is None:
                    raise
                return _stopped(rehearsal, stop)
            result = rehearsal.finish()
    except _StoppedAtOnce:
        print("gatewatch rehearse: stopped at once (second signal): every part killed, the books not checked; "
              "the next `gatewatch probe run` or `gatewatch flatten` with the rehearsal's config settles what "
              "the probes left", file=sys.stderr)
        return stop.exit_status
    if stop.signal is not None:  # arrived while the verdict was being written: it is complete
        return stop.exit_status
    return 0 if result.passed and not result.ledger.problems else 1


class _StoppedAtOnce(BaseException):
    """A second SIGTERM/SIGINT: the parts were SIGKILLed; unwinds out of everything."""


@contextlib.contextmanager
def _stop_on_signals(rehearsal: Rehearsal, stop: StopRequest) -> Iterator[None]:
    """First SIGTERM/SIGINT: ask the rehearsal to stop (it ends its wait or play loop); second: kill all.

    The parts run in their own sessions (a terminal's Ctrl-C reaches only this process), so the
    exporter gets exactly one SIGTERM, from :meth:`Rehearsal.stop_exporter`, and unwinds its probes.
    """

    def on_signal(signum: int, _frame: object) -> None:
        # State first, the log line last: loguru refuses (RuntimeError) if this interrupted one of its writes.
        if stop.signal is None:
            stop.signal = signal.Signals(signum)
            rehearsal.stopping.set()
            with contextlib.suppress(RuntimeError):
                logger.warning("{} received: stopping the rehearsal (the exporter unwinds its probes first, then "
                               "the books are checked); send it again to stop at once", stop.signal.name)
            return
        stop.forced = True
        rehearsal.kill_all()
        with contextlib.suppress(RuntimeError):
            logger.warning("{} received again: every part killed", signal.Signals(signum).name)
        raise _StoppedAtOnce

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(rehearsal: Rehearsal, stop: StopRequest) -> int:
    """After a stop request: exporter first (it unwinds its probe run), then the books, then the rest."""
    name = stop.signal.name if stop.signal is not None else "a stop request"
    print(f"gatewatch rehearse: stopped by {name} before the window closed: no verdict", file=sys.stderr,
          flush=True)
    rehearsal.stop_exporter()
    try:
        ledger = check_ledger(rehearsal.sim_state(), rehearsal.order_ref_prefix, rehearsal.journal_path)
    except (OSError, ValueError) as exc:
        print(f"gatewatch rehearse: books NOT checked (simulator unreachable: {exc})", file=sys.stderr)
        return stop.exit_status
    if ledger.problems:
        print("gatewatch rehearse: books after the stop: " + "; ".join(ledger.problems), file=sys.stderr)
    else:
        print(f"gatewatch rehearse: books after the stop: clean ({ledger.probe_orders} probe orders, none "
              "working, no probe position)", file=sys.stderr)
    return stop.exit_status
