"""``gatewatch evidence``: judge a session from Prometheus and write the evidence bundle.

Exit status: 0 only if the session passed every critical gate; 1 if it failed; 2 for bad input
(an unparsable time, a window that ends before it starts, an unreachable Prometheus, bad config).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger

from gatewatch.config import ConfigError, load_config, parse_duration
from gatewatch.evidence.bundle import write_bundle
from gatewatch.evidence.collect import collect
from gatewatch.evidence.gates import DEFAULT_GATES_PATH, session_gates
from gatewatch.evidence.grafana_snapshot import DEFAULT_DASHBOARDS, make_snapshots
from gatewatch.evidence.junit import add_junit
from gatewatch.evidence.junit import summarise as summarise_junit
from gatewatch.evidence.model import Window
from gatewatch.evidence.prometheus_api import PrometheusClient
from gatewatch.evidence.subject import describe_subject, prometheus_in_words
from gatewatch.logs import setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prometheus", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    source.add_argument("--prometheus-data", type=Path,
                        help="a Prometheus data folder instead (e.g. a rehearsal's prometheus-data), read through "
                        "a temporary read-only Prometheus on a copy")
    parser.add_argument("--from", dest="start", help="window start: ISO 8601 (no zone = UTC) or unix seconds")
    parser.add_argument("--to", dest="end", help="window end (default with --last: now)")
    parser.add_argument("--last", help="window length ending at --to or now, e.g. 2h, 90m")
    parser.add_argument("--out", required=True, type=Path, help="folder for the evidence bundle")
    parser.add_argument(
        "--grafana",
        help="Grafana base URL for dashboard snapshots (GRAFANA_TOKEN or "
        "GRAFANA_USER/GRAFANA_PASSWORD in the environment)",
    )
    parser.add_argument(
        "--config", help="gatewatch configuration file (session.required_duration, thresholds)"
    )
    parser.add_argument(
        "--gates", type=Path, default=DEFAULT_GATES_PATH, help="gates file (prometheus/gates.yml)"
    )
    parser.add_argument(
        "--junit", type=Path, action="append", default=[], metavar="FILE",
        help="a JUnit XML result to carry into the bundle (repeatable): e.g. the live validation suite's",
    )
    parser.add_argument(
        "--dashboards", type=Path, default=DEFAULT_DASHBOARDS, help="Grafana dashboard JSON folder"
    )
    parser.add_argument(
        "--subject", choices=("real", "simulator", "rehearsal", "unstated"), default="unstated",
        help="what the session watched, stated first in the report: a real paper Gateway or the simulator",
    )
    parser.add_argument(
        "--sign-key", type=Path, default=os.environ.get("GATEWATCH_SIGN_KEY") or None,
        help="the operator's SSH private key: sign the manifest (MANIFEST.sha256.sig, ssh-keygen -Y sign); "
        "default $GATEWATCH_SIGN_KEY. Check a bundle with: gatewatch evidence verify DIR --key KEY.pub",
    )


def parse_time(text: str, field: str) -> float:
    """ISO 8601 (naive means UTC) or unix seconds; a bad value is a ConfigError naming the option."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"{field}: not a time: {text!r} (use ISO 8601 like 2026-03-02T14:30:00Z or unix seconds)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def resolve_window(start: str | None, end: str | None, last: str | None, now: float) -> Window:
    """--from/--to, or --last (ending at --to or now); anything else is a ConfigError."""
    end_ts = parse_time(end, "--to") if end else now
    if last:
        if start:
            raise ConfigError("--last: give either --from/--to or --last, not both")
        try:
            length = parse_duration(last)
        except ValueError as exc:
            raise ConfigError(f"--last: {exc}") from exc
        window = Window(end_ts - length, end_ts)
    elif start and end:
        window = Window(parse_time(start, "--from"), end_ts)
    else:
        raise ConfigError("--from/--to: give both --from and --to, or --last")
    if window.seconds <= 0:
        raise ConfigError("--from: the window must start before it ends")
    if window.end > now + 60:
        raise ConfigError("--to: the window ends in the future")
    return window


def run(args: argparse.Namespace) -> int:
    if args.prometheus_data is not None:
        from gatewatch.localstack.servers import readonly_prometheus

        with readonly_prometheus(args.prometheus_data) as url:
            args.prometheus = url
            return _run(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    setup_logging("INFO")
    config = load_config(args.config)
    gates = session_gates(config, args.gates)
    for path in args.junit:  # a bad file is refused before any query
        summarise_junit(path)
    window = resolve_window(args.start, args.end, args.last, time.time())
    client = PrometheusClient(args.prometheus)
    if not client.ready():
        raise ConfigError(f"--prometheus: no Prometheus answering at {args.prometheus} (/-/ready)")
    evidence = collect(client, gates, window, config)
    evidence.subject = describe_subject(
        client, window, config, config_file=args.config, kind=args.subject,
        prometheus_text=prometheus_in_words(client, args.prometheus_data))
    if args.grafana:
        evidence.snapshots = make_snapshots(args.grafana, client, window, args.dashboards)
        if all(s.error for s in evidence.snapshots):
            evidence.grafana_note = (
                f"Grafana at {args.grafana}: no snapshot made (the bundle is complete without)"
            )
    extra = {"junit.json": add_junit(args.junit, args.out)} if args.junit else None
    evidence.test_suites = extra["junit.json"]["results"] if extra else []
    manifest = write_bundle(evidence, args.out, extra, sign_key=args.sign_key)
    verdict = "PASS" if evidence.passed else "FAIL"
    failed = [g.id for g in evidence.gates if not g.passed]
    logger.info(
        "session verdict {}{}; bundle {} (manifest {})",
        verdict,
        f" (failed: {', '.join(failed)})" if failed else "",
        args.out,
        manifest.name,
    )
    print(f"verdict: {verdict}" + (f" (failed gates: {', '.join(failed)})" if failed else ""))
    print(f"evidence: {args.out / 'report.html'}")
    if args.sign_key is None:
        print("not signed: give --sign-key (or GATEWATCH_SIGN_KEY) so that edits can be detected")
    return 0 if evidence.passed else 1
