"""The bot section of the evidence: what the bot experienced through ``gatewatch proxy``, per client id.

Why a section apart from the gates: the bot gates (prometheus/gates.yml, ``bot_*``) say pass or
fail; this table gives the operator the numbers behind them for the whole window (share of time
connected, reconnects, orders, pacing, data age). A session without the proxy has no rows, and the
report says the bot was not observed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Protocol

#: (key, column title, PromQL with {r} = the window as a range, how to show the value)
FIGURES: tuple[tuple[str, str, str, str], ...] = (
    ("connected_share", "Connected", "avg_over_time(max by (client_id, client_name) (gatewatch_bot_connected)[{r}:])",
     "percent"),
    ("connects", "API sessions", "sum by (client_id, client_name) (increase(gatewatch_bot_connects_total[{r}]))",
     "count"),
    ("disconnects", "Disconnects",
     "sum by (client_id, client_name) (increase(gatewatch_bot_disconnects_total[{r}]))", "count"),
    ("peak_rate", "Peak msg/s", "max by (client_id, client_name) (max_over_time(gatewatch_bot_message_rate_peak[{r}]))",
     "count"),
    ("pacing", "Pacing errors",
     "sum by (client_id, client_name) (increase(gatewatch_bot_pacing_violations_total[{r}]))", "count"),
    ("placed", "Orders placed", "sum by (client_id, client_name) (increase(gatewatch_bot_orders_placed_total[{r}]))",
     "count"),
    ("filled", "Filled", "sum by (client_id, client_name) (increase(gatewatch_bot_orders_filled_total[{r}]))",
     "count"),
    ("rejected", "Rejected",
     "sum by (client_id, client_name) (increase(gatewatch_bot_orders_rejected_total[{r}]))", "count"),
    ("refused", "Refused (paper guard)",
     "sum by (client_id, client_name) (increase(gatewatch_bot_orders_refused_total[{r}]))", "count"),
    ("unanswered", "Most unanswered requests",
     "max by (client_id, client_name) (max_over_time(sum by (client_id, client_name) "
     "(gatewatch_bot_requests_unanswered)[{r}:]))", "count"),
    ("tick_age", "Oldest tick age",
     "max by (client_id, client_name) (max_over_time(gatewatch_bot_tick_age_seconds[{r}]))", "seconds"),
)  # fmt: skip


class InstantQuery(Protocol):
    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]: ...


@dataclass
class BotSummary:
    """One bot (client id) over the window."""

    client_id: str
    client_name: str
    figures: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "client_name": self.client_name, **self.figures}


def collect_bots(client: InstantQuery, seconds: float, end: float) -> list[BotSummary]:
    """Every figure for every client id the proxy saw in the window (PrometheusError propagates)."""
    range_text = f"{max(1, round(seconds))}s"
    bots: dict[str, BotSummary] = {}
    for key, _, expr, _ in FIGURES:
        for labels, value in client.query(expr.format(r=range_text), end):
            cid = labels.get("client_id", "")
            bot = bots.setdefault(cid, BotSummary(cid, labels.get("client_name", "")))
            bot.figures[key] = value
    return sorted(bots.values(), key=lambda b: b.client_id)


def _show(value: float | None, how: str) -> str:
    if value is None or value != value:
        return "n/a"
    if how == "percent":
        return f"{value * 100:.1f} %"
    if how == "seconds":
        return f"{value:.1f} s"
    return f"{round(value):d}"


def rows(bots: list[BotSummary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows, shared by the HTML and Markdown renderings."""
    header = ["Client id", *(title for _, title, _, _ in FIGURES)]
    body = [
        [f"{b.client_id} {b.client_name}".strip(), *(_show(b.figures.get(k), how) for k, _, _, how in FIGURES)]
        for b in bots
    ]
    return header, body


NOT_OBSERVED = "No bot was observed: no series from gatewatch proxy in the window (the bot gates pass on no data)."


def html_section(bots: list[BotSummary]) -> str:
    if not bots:
        return f"<h2>The bot (through gatewatch proxy)</h2><p>{html.escape(NOT_OBSERVED)}</p>"
    header, body = rows(bots)
    out = ["<h2>The bot (through gatewatch proxy)</h2><table><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr>")
    for row in body:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def markdown_section(bots: list[BotSummary]) -> list[str]:
    lines = ["", "## The bot (through gatewatch proxy)", ""]
    if not bots:
        return [*lines, NOT_OBSERVED]
    header, body = rows(bots)
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines
