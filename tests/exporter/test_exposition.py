"""The exporter's own text exposition writes exactly what prometheus-client writes from the same
families, and the probes stay free of the exporter (no import circle)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

from prometheus_client import generate_latest
from support.exporter import fast_config

from exporter.app import ExporterApp
from probes.passive.quotes import QuoteState

ROOT = Path(__file__).resolve().parents[2]


def test_render_is_prometheus_clients_exposition_of_the_same_state() -> None:
    app = ExporterApp(fast_config(1, symbols=["SPY", "QQQ"]))
    quotes = app.quotes
    spy: QuoteState = quotes.states["SPY"]
    spy.ticks, spy.bid, spy.ask, spy.last, spy.last_change = 7, 600.25, 600.5, math.nan, 1.7e9
    quotes.market_open = True
    conn = app.probes["connection"]
    conn._on_error(-1, 2104, 'Market data farm connection is OK:us"farm\\x')  # type: ignore[attr-defined]
    app.probes["heartbeat"].rtt.observe(0.012)  # type: ignore[attr-defined]
    app.metrics.fill_latency.observe(0.3)
    app.metrics.orders["buy"] += 2
    app.metrics.outcomes.recorder("fill", "active").record(False, 1.5, "no fill")
    ours = app.metrics.render().decode()
    theirs = generate_latest(app.metrics.registry).decode()
    # the quote age is computed at each call: compare everything else line by line
    strip = lambda text: [ln for ln in text.splitlines() if not ln.startswith("gatewatch_quote_age_seconds{")]  # noqa: E731
    assert strip(ours) == strip(theirs)
    assert 'gatewatch_quote_bid{symbol="SPY"} 600.25' in ours
    assert 'gatewatch_quote_field_present{field="last",symbol="SPY"} 0.0' in ours
    assert 'gatewatch_quote_bid{symbol="QQQ"}' not in ours  # no series before the first quote
    assert 'gatewatch_probe_runs_total{kind="active",probe="fill",result="failure"} 1.0' in ours


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_probes_never_import_the_exporter() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "probes").rglob("*.py")
                 if any(m == "exporter" or m.startswith("exporter.") for m in _imports(p))]
    assert offenders == []
