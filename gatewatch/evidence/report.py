"""The evidence report: one self-contained HTML page and a Markdown summary of the same facts.

Why self-contained: the page is the artefact the operator hands over and archives; it must open
offline with nothing fetched (inline CSS, inline SVG, no script).
"""

from __future__ import annotations

import html

from gatewatch.evidence import bot, junit
from gatewatch.evidence.charts import legend_html, render_svg
from gatewatch.evidence.gates import GateResult
from gatewatch.evidence.model import Evidence, iso
from gatewatch.thresholds import duration_text

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:960px;
color:#222}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.verdict{display:inline-block;padding:6px 16px;border-radius:4px;font-weight:bold;font-size:20px;color:#fff}
.verdict.pass{background:#2e7d32} .verdict.fail{background:#c62828}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top} th{background:#f5f5f5}
td.pass{color:#2e7d32;font-weight:bold} td.fail{color:#c62828;font-weight:bold}
code{font-size:12px;background:#f6f6f6;padding:1px 3px}
.legend{font-size:12px;margin:2px 0 12px 70px} .key{margin-right:14px;white-space:nowrap}
.key i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.muted{color:#666;font-size:13px}
table.subject{width:auto;margin-bottom:12px} table.subject th{width:200px}
"""


def _values_text(result: GateResult) -> str:
    if not result.series:
        return "no data"
    shown = []
    for s in result.series[:12]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "__name__")
        shown.append(f"{labels + ': ' if labels else ''}{result.value_text(s.value)}")
    more = f" (+{len(result.series) - 12} more)" if len(result.series) > 12 else ""
    return "; ".join(shown) + more


def why_text(result: GateResult) -> str:
    """The gate in words: what it measured and why it passed or failed."""
    parts = []
    if result.passed:
        parts.append(f"{result.measures or result.title}: meets {result.threshold}" if result.series
                     else result.reason or f"no data: {result.no_data_means}")
    else:
        parts.append(result.reason)
    parts += [f"{label}: {value}" for label, value in result.shown]
    if result.note:
        parts.append(result.note)
    return ". ".join(p[:1].upper() + p[1:] for p in parts if p) + "."


RUNBOOK = "runbook.md"
"""The runbook, copied into the bundle so that every alert links to its section offline."""


def runbook_link(alertname: str) -> str:
    """An alert's name linked to its runbook section (docs/runbook.md anchors: the name in lower case)."""
    name = html.escape(alertname)
    return f'<a href="{RUNBOOK}#{html.escape(alertname.lower())}">{name}</a>'


def subject_html(evidence: Evidence) -> str:
    """The subject block: what the evidence is about, before any verdict."""
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in evidence.subject.rows()
    )
    return f'<section id="subject"><h2>Subject</h2><table class="subject">{rows}</table></section>'


def render_html(evidence: Evidence) -> str:
    """The whole report page."""
    verdict = "PASS" if evidence.passed else "FAIL"
    css_class = "pass" if evidence.passed else "fail"
    window = evidence.window
    title = f"gatewatch session evidence: {verdict} ({iso(window.start)} to {iso(window.end)})"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        "<h1>gatewatch validation session</h1>",
        subject_html(evidence),
        f'<p><span class="verdict {css_class}" id="verdict">Session verdict: {verdict}</span></p>',
        f"<p>Window: <b>{iso(window.start)}</b> to <b>{iso(window.end)}</b> ({duration_text(round(window.seconds))}). "
        f"Generated {iso(evidence.generated_at)} from Prometheus "
        f"<code>{html.escape(evidence.prometheus_url)}</code>.</p>",
    ]
    failed = [g for g in evidence.gates if not g.passed]
    if failed:
        out.append("<p><b>Failed gates:</b> " + ", ".join(html.escape(g.id) for g in failed) + "</p>")
    out.append(
        "<h2>Session gates</h2><table><tr><th>Gate</th><th>Result</th><th>Needs</th><th>Value(s)</th>"
        "<th>Why</th></tr>"
    )
    for gate in evidence.gates:
        out.append(
            f"<tr><td><b>{html.escape(gate.title)}</b><br><code>{html.escape(gate.id)}</code>"
            f"{'' if gate.critical else ' (non-critical)'}</td>"
            f'<td class="{gate.status}">{gate.status.upper()}</td><td>{html.escape(gate.threshold)}</td>'
            f"<td>{html.escape(_values_text(gate))}</td><td>{html.escape(why_text(gate))}</td></tr>"
        )
    out.append("</table>")

    out.append("<h2>Charts</h2>")
    for chart in evidence.charts:
        out.append(f"<h3>{html.escape(chart.spec.title)}</h3>")
        if chart.spec.explanation:
            out.append(
                f'<p class="muted">{html.escape(chart.spec.explanation)} '
                f"Raw data: <code>series/{chart.spec.id}.json</code></p>"
            )
        out.append(render_svg(chart, window.start, window.end, _step(evidence)))
        out.append(legend_html(chart))

    out.append("<h2>Alerts that fired</h2>")
    if evidence.alerts:
        out.append("<table><tr><th>Alert</th><th>Severity</th><th>From</th><th>To</th><th>Labels</th></tr>")
        for alert in evidence.alerts:
            labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
            out.append(
                f"<tr><td>{runbook_link(alert.name)}</td><td>{html.escape(alert.severity)}</td>"
                f"<td>{iso(alert.start)}</td><td>{iso(alert.end)}</td><td>{html.escape(labels)}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>No alert fired in the window.</p>")

    out.append("<h2>Probe runs</h2>")
    if evidence.probes:
        out.append(
            "<table><tr><th>Probe</th><th>Kind</th><th>Successful runs</th><th>Failed runs</th>"
            "<th>Last result</th></tr>"
        )
        for probe in evidence.probes:
            last = (
                "n/a" if probe.last_success is None else ("success" if probe.last_success >= 1 else "failure")
            )
            out.append(
                f"<tr><td>{html.escape(probe.probe)}</td><td>{html.escape(probe.kind)}</td>"
                f"<td>{probe.successes:.0f}</td><td>{probe.failures:.0f}</td><td>{last}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>No probe ran in the window.</p>")

    out.append(bot.html_section(evidence.bots))
    out.append(junit.html_section(evidence.test_suites))

    out.append("<h2>Grafana snapshots</h2>")
    if evidence.snapshots:
        out.append("<ul>")
        for snap in evidence.snapshots:
            if snap.url:
                url = html.escape(snap.url)
                out.append(f'<li>{html.escape(snap.dashboard)}: <a href="{url}">{url}</a></li>')
            else:
                out.append(f"<li>{html.escape(snap.dashboard)}: not made ({html.escape(snap.error)})</li>")
        out.append("</ul>")
    else:
        out.append(f"<p>{html.escape(evidence.grafana_note)}</p>")
    if evidence.notes:
        out.append(
            "<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in evidence.notes) + "</ul>"
        )
    out.append(
        '<p class="muted">Integrity: every file of this bundle is listed in MANIFEST.sha256, which the '
        "operator's SSH key signs (MANIFEST.sha256.sig). Check both with "
        "<code>gatewatch evidence verify DIR --key KEY.pub</code> (edits, deletions, additions).</p>"
    )
    out.append("</body></html>")
    return "\n".join(out)


def _step(evidence: Evidence) -> float:
    for chart in evidence.charts:
        for series in chart.series:
            if len(series.points) > 1:
                return series.points[1][0] - series.points[0][0]
    return 1.0


def render_markdown(evidence: Evidence) -> str:
    """The summary for the repository: verdict, gates, alerts, probes."""
    verdict = "PASS" if evidence.passed else "FAIL"
    window = evidence.window
    lines = [
        f"# gatewatch validation session: {verdict}",
        "",
        "## Subject",
        "",
        *[f"- {label}: {value}" for label, value in evidence.subject.rows()],
        "",
        f"- Window: {iso(window.start)} to {iso(window.end)} ({duration_text(round(window.seconds))})",
        f"- Generated: {iso(evidence.generated_at)} from Prometheus {evidence.prometheus_url}",
        "- Full report: report.html (self-contained); raw series in series/; integrity: MANIFEST.sha256, "
        "signed in MANIFEST.sha256.sig (gatewatch evidence verify DIR --key KEY.pub)",
        "",
        "## Gates",
        "",
        "| Gate | Result | Needs | Value(s) | Why |",
        "|---|---|---|---|---|",
    ]
    for gate in evidence.gates:
        why = why_text(gate).replace("|", "\\|")
        lines.append(
            f"| {gate.title} (`{gate.id}`) | **{gate.status.upper()}** | {gate.threshold} | "
            f"{_values_text(gate).replace('|', '/')} | {why} |"
        )
    lines += ["", "## Alerts that fired", ""]
    if evidence.alerts:
        lines += ["| Alert | Severity | From | To |", "|---|---|---|---|"]
        lines += [f"| [{a.name}]({RUNBOOK}#{a.name.lower()}) | {a.severity} | {iso(a.start)} | {iso(a.end)} |"
                  for a in evidence.alerts]
    else:
        lines.append("None.")
    lines += ["", "## Probe runs", ""]
    if evidence.probes:
        lines += ["| Probe | Kind | Successful | Failed |", "|---|---|---|---|"]
        lines += [f"| {p.probe} | {p.kind} | {p.successes:.0f} | {p.failures:.0f} |" for p in evidence.probes]
    else:
        lines.append("No probe ran in the window.")
    lines += bot.markdown_section(evidence.bots)
    lines += junit.markdown_section(evidence.test_suites)
    lines += ["", "## Grafana snapshots", ""]
    if evidence.snapshots:
        lines += [f"- {s.dashboard}: {s.url or 'not made (' + s.error + ')'}" for s in evidence.snapshots]
    else:
        lines.append(evidence.grafana_note)
    return "\n".join(lines) + "\n"
