"""The report's words: subject first, alerts linked to their runbook sections, legends and ticks."""

from __future__ import annotations

import re
from pathlib import Path

from gatewatch.evidence.charts import Chart, ChartSpec, nice_step, render_svg, time_ticks
from gatewatch.evidence.gates import load_gates
from gatewatch.evidence.model import AlertFiring, Evidence, Subject, Window
from gatewatch.evidence.prometheus_api import RangeSeries
from gatewatch.evidence.report import render_html, render_markdown

ROOT = Path(__file__).resolve().parents[2]


def evidence() -> Evidence:
    window = Window(1_800_000_000.0, 1_800_007_200.0)
    found = Evidence(window, "http://127.0.0.1:9090", window.end, [],
                     subject=Subject(account="DU1234567", account_type="paper", gateway="10.0.0.5:4002",
                                     server_version="178", kind="real", prometheus="Prometheus 2.42.0 at x"))
    found.alerts = [AlertFiring("GatewayDown", "critical", window.start + 60, window.start + 120, {}),
                    AlertFiring("ClockSkewHigh", "critical", window.start + 600, window.start + 660, {})]
    return found


def test_subject_comes_first_and_alerts_link_to_the_runbook() -> None:
    page = render_html(evidence())
    body = page[page.index("<body>"):]
    assert body.index('id="subject"') < body.index('id="verdict"')
    assert "a real paper IB Gateway" in body and "10.0.0.5:4002" in body and "178" in body
    links = re.findall(r'<a href="runbook.md#([a-z0-9]+)">(\w+)</a>', body)
    assert links == [("gatewaydown", "GatewayDown"), ("clockskewhigh", "ClockSkewHigh")]
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    assert all(f'<a id="{anchor}"></a>' in runbook for anchor, _ in links)
    md = render_markdown(evidence())
    assert md.index("## Subject") < md.index("## Gates") and "[GatewayDown](runbook.md#gatewaydown)" in md


def test_verdict_json_starts_with_the_subject() -> None:
    data = evidence().verdict_json()
    assert next(iter(data)) == "subject"
    assert set(data["subject"]) >= {"account", "gateway", "server_version", "kind", "gatewatch_version",
                                    "config", "prometheus"}


def test_legend_names_each_series_and_ticks_are_round() -> None:
    spec = ChartSpec("quote_age", "Quote age per symbol", "q", "s", ("symbol",))
    points = [(1_800_000_000.0 + i * 10, 1.0) for i in range(720)]
    chart = Chart(spec, [RangeSeries({"symbol": "SPY"}, points), RangeSeries({"symbol": "QQQ"}, points)])
    svg = render_svg(chart, 1_800_000_000.0, 1_800_007_200.0, 10)
    assert 'data-series="symbol=SPY"' in svg and 'data-series="symbol=QQQ"' in svg
    assert svg.count("stroke-dasharray") >= 1  # identical lines stay visible: the second is dashed
    assert re.findall(r">(\d\d:\d\d) UTC<", svg)[:2] == ["08:00", "08:30"]
    assert nice_step(0.83) == 0.2 and nice_step(600) == 200
    memory = Chart(ChartSpec("memory", "Resident memory", "m", "B", ("process",)),
                   [RangeSeries({"process": "exporter"}, [(1_800_000_000.0, 60e6), (1_800_007_200.0, 600e6)])])
    ticks = re.findall(r'text-anchor="end" fill="#444">([^<]+)</text>', render_svg(memory, 1_800_000_000.0,
                                                                                  1_800_007_200.0, 10))
    assert ticks and all(re.fullmatch(r"\d+ MiB|0 B", t) for t in ticks), ticks
    assert all(t % 1800 == 0 for t in time_ticks(1_800_000_000.0, 1_800_007_200.0))


def test_every_gate_row_has_a_why_in_words() -> None:
    from gatewatch.evidence.gates import judge

    found = evidence()
    found.gates = [judge(g, 7200, [({}, 0.0)]) for g in load_gates()[:4]]
    page = render_html(found)
    rows = re.findall(r"<tr><td><b>.*?</tr>", page)
    assert len(rows) == 4
    assert all(re.search(r"<td>[A-Z][^<]{10,}\.</td></tr>$", row) for row in rows), rows
