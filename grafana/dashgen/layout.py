"""Where each panel sits: the session dashboard and the probe dashboard, row by row.

This module only arranges: every PromQL expression comes from :mod:`queries` (``q.``), every number
from :mod:`sources`, and the look from :mod:`panels`. A new dashboard is a function here taking
:class:`Sources` and returning a model, plus one line in ``dashgen.DASHBOARDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, units
from grafana_foundation_sdk.models import dashboard as dash

from . import queries as q
from .panels import (
    DATASOURCE,
    Board,
    gate_panel,
    stat_panel,
    state_timeline_panel,
    table_panel,
    timeseries_panel,
    value_texts,
)
from .sources import Limits

BARS = common.GraphDrawStyle.BARS
POINTS = common.GraphDrawStyle.POINTS

ALLOW_EMPTY: dict[str, str] = {
    # panel title -> why the panel may legitimately show nothing in a healthy, fresh stack
    "Firing alerts": "a healthy stack has no firing alert",
    "Fill latency": "needs at least one filled probe order inside the rate window",
    "Gateway positions": "a flat account (the simulator starts flat) has no position series",
    "Position exposure against the risk limit": "a flat account has no exposure series (the limit shows)",
    "Probe orders sent": "the counter appears with the first active probe order",
    "Probe orders refused by a guard": "the counter appears only when a safety guard refuses an order",
    "Pacing back-offs": "appears only after IBKR reports a pacing error (100 or 162)",
    "Close escalations": "appears only when a close needs manual intervention",
}
"""Panels whose queries may return no series. Kept short: every other panel must return data in
the dashboard test. The session gate panels are exempt too, because each already states what no
data means (gates.yml ``no_data``); the test still checks that every metric any panel names is
exported by the exporter or recorded by a rule, so a misspelt name cannot hide behind either."""


@dataclass(frozen=True)
class Sources:
    """Everything a dashboard is built from besides its queries."""

    gates: list[dict[str, Any]]
    limits: Limits


def session_dashboard(src: Sources) -> dict[str, Any]:
    limits = src.limits
    d = Board("gatewatch-session", "Live validation session",
              "The 2-hour paper session: each gate from prometheus/gates.yml judged over the selected time range, "
              "with the signals behind it.", links=[("Probe detail", "gatewatch-probes")])
    d.row("Session gates (over the selected time range; pick exactly the session's window)")
    for gate in src.gates:
        d.add(gate_panel(gate), 4, 4)

    d.row("Connection")
    d.add(state_timeline_panel("Gateway connection", [q.GATEWAY_CONNECTED, q.IB_SERVERS_REACHABLE, q.MARKET_DATA_OURS],
                               ok_text="up", bad_text="DOWN",
                               description="Any red stretch is a disconnect the session gate counts."), 16, 6)
    d.add(stat_panel("Disconnects in range", [q.DISCONNECTS_IN_RANGE], steps=((None, "green"), (0.5, "red")),
                     description="Session gate: none at all."), 4, 6)
    d.add(stat_panel("Reconnect attempts in range", [q.RECONNECT_ATTEMPTS_IN_RANGE],
                     steps=((None, "green"), (0.5, "orange"))), 4, 6)
    d.add(state_timeline_panel("Data farms", [q.DATA_FARMS], ok_text="ok", bad_text="BROKEN",
                               description="2103/2105/2157 broken; 2104/2106/2158/2107/2108 fine."), 24, 5)

    d.row("Market data")
    stale = limits.quote_stale_after
    d.add(timeseries_panel("Quote age per symbol", [q.QUOTE_AGE], unit=units.Seconds,
                           steps=((None, "green"), (stale, "red")), min_value=0,
                           description=f"Seconds since the newest quote; the session needs every symbol under "
                                       f"{stale:g} s while the market is open."), 12, 8)
    d.add(state_timeline_panel("Quote sanity (bid > 0, ask > bid)", [q.QUOTE_SANE, q.MARKET_OPEN],
                               ok_text="ok", bad_text="BAD"), 12, 8)
    d.add(timeseries_panel("Quote updates per second", [q.QUOTE_TICK_RATE], unit=units.RequestsPerSecond), 12, 7)
    d.add(timeseries_panel("Spread", [q.QUOTE_SPREAD], unit=units.Dollars), 12, 7)

    d.row("Orders and positions")
    d.add(timeseries_panel("Fill latency", q.FILL_LATENCY, unit=units.Seconds, draw=POINTS,
                           description="Submit-to-execution latency of the active probes' paper orders."), 12, 8)
    d.add(timeseries_panel("Reconciliation drift", [q.POSITION_DRIFT], steps=((None, "green"), (0.5, "red")),
                           description="Gateway position minus the compared source's; anything but 0 fails the "
                                       "session."), 12, 8)
    d.add(timeseries_panel("Gateway positions", [q.GATEWAY_POSITION]), 12, 6)
    d.add(timeseries_panel("Account", [q.NET_LIQUIDATION, q.CASH], unit=units.Dollars), 12, 6)
    d.add(timeseries_panel("Position exposure against the risk limit", [q.EXPOSURE_RATIO, q.EXPOSURE_LIMIT],
                           unit=units.PercentUnit, min_value=0,
                           description="Position value / net liquidation per symbol; above the limit for a minute "
                                       "raises PositionLimitExceeded (warning)."), 16, 6)
    d.add(stat_panel("Day trades remaining", [q.DAY_TRADES_REMAINING],
                     steps=((None, "green"), (0, "orange"), (2, "green")),
                     mappings=value_texts({"-1": ("unlimited", "green")}),
                     description="Pattern-day-trader allowance the Gateway reports (-1: unlimited). Every order "
                                 "probe run is a day trade; 1 or 0 left raises DayTradesLow (warning)."), 8, 6)

    d.row("Clock and resources")
    skew = limits.clock_skew_max
    d.add(timeseries_panel("Clock skew (host minus IB) with uncertainty",
                           [q.CLOCK_SKEW, q.CLOCK_SKEW_UPPER, q.CLOCK_SKEW_LOWER], unit=units.Seconds,
                           steps=((None, "red"), (-skew, "green"), (skew, "red")),
                           description=f"IB answers in whole seconds, so the estimate carries an uncertainty; "
                                       f"the session needs |skew| under {skew:g} s."), 12, 8)
    d.add(timeseries_panel("Heartbeat round trip", [q.HEARTBEAT_RTT_P95], unit=units.Seconds), 12, 8)
    d.add(timeseries_panel("Resident memory per process", [q.PROCESS_MEMORY], unit=units.BytesIEC,
                           steps=((None, "green"), (limits.memory_max_bytes, "red")), min_value=0), 8, 8)
    d.add(timeseries_panel("CPU per process", [q.PROCESS_CPU], unit=units.PercentUnit, min_value=0), 8, 8)
    d.add(timeseries_panel("Host", [q.HOST_CPU, q.HOST_MEMORY], unit=units.PercentUnit, min_value=0), 8, 8)

    d.row("Errors and alerts")
    d.add(timeseries_panel("API errors by code", [q.API_ERRORS], draw=BARS,
                           description="Error/notice messages from the Gateway (farm notices 2104/2106/2158 are "
                                       "normal)."), 12, 8)
    d.add(table_panel("Firing alerts", [q.FIRING_ALERTS],
                      description="Alerts Prometheus currently holds as firing (critical ones fail the session).",
                      hidden_columns=("Time", "Value", "__name__", "alertstate")), 12, 8)
    return d.model()


def _all_selected() -> dash.VariableOption:
    return dash.VariableOption(selected=True, text=["All"], value=["$__all"])


def probe_dashboard(src: Sources) -> dict[str, Any]:
    kind = (dash_b.CustomVariable("kind").label("Kind").values("passive,active").current(_all_selected())
            .include_all(True).all_value(".*").multi(True))
    probe = (dash_b.QueryVariable("probe").label("Probe").datasource(DATASOURCE)
             .query({"query": q.PROBE_VARIABLE, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
             .current(_all_selected()).include_all(True).all_value(".*").multi(True)
             .refresh(dash.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dash.VariableSort.ALPHABETICAL_ASC))
    d = Board("gatewatch-probes", "Probe detail",
              "Every probe, passive and active: last result, duration, runs, and the active probes' paper orders.",
              links=[("Session", "gatewatch-session")], variables=[kind, probe])
    d.row("Probe results")
    d.add(state_timeline_panel("Probe success", [q.PROBE_SUCCESS], ok_text="pass", bad_text="FAIL"), 24, 8)
    d.add(timeseries_panel("Probe duration", [q.PROBE_DURATION], unit=units.Seconds, min_value=0), 12, 8)
    d.add(timeseries_panel("Seconds since the probe last finished", [q.PROBE_SINCE_LAST_RUN], unit=units.Seconds,
                           min_value=0, description="A probe that stops running shows here as a climbing line."),
          12, 8)
    d.add(timeseries_panel("Runs by result (per probe, over the interval)", [q.PROBE_RUNS_BY_RESULT], draw=BARS),
          12, 8)
    d.add(stat_panel("Failed runs in range", [q.PROBE_FAILED_RUNS_IN_RANGE], steps=((None, "green"), (0.5, "red"))),
          12, 8)

    d.row("Active probes: paper orders")
    d.add(stat_panel("Probe orders sent", [q.PROBE_ORDERS_SENT]), 8, 5)
    d.add(stat_panel("Probe orders refused by a guard", [q.PROBE_ORDERS_REFUSED],
                     steps=((None, "green"), (0.5, "orange"))), 8, 5)
    d.add(stat_panel("Close escalations", [q.CLOSE_ESCALATIONS], steps=((None, "green"), (0.5, "red")),
                     description="A close that never filled after every re-price: flatten by hand. The "
                                 "close_retry probe's deliberate escalation on every run is left out."), 8, 5)
    d.add(timeseries_panel("Probe orders and positions still open", [q.PROBE_OPEN_ORDERS, q.PROBE_POSITIONS],
                           min_value=0, description="From the probe journal; both return to 0 after every run."),
          12, 7)
    d.add(timeseries_panel("Pacing back-offs", [q.PACING_BACKOFFS], draw=BARS), 12, 7)

    d.row("Passive probe details")
    d.add(timeseries_panel("Historical request latency (p95) and bars", [q.HISTORICAL_LATENCY_P95, q.HISTORICAL_BARS]),
          12, 7)
    d.add(timeseries_panel("Connects, reconnect attempts, historical timeouts",
                           [q.CONNECTS, q.RECONNECT_ATTEMPTS, q.HISTORICAL_TIMEOUTS], draw=BARS), 12, 7)
    return d.model()


def bot_dashboard(src: Sources) -> dict[str, Any]:
    stale = src.limits.quote_stale_after
    bot_gates = [g for g in src.gates if str(g["id"]).startswith("bot_")]
    d = Board("gatewatch-bot", "Bot",
              "The bot's own view of the Gateway, measured by gatewatch proxy between the bot and the Gateway: "
              "connection, message rate, requests, orders and market data as the bot receives them.",
              links=[("Session", "gatewatch-session")])
    d.row("Bot gates (over the selected time range)")
    for gate in bot_gates:
        d.add(gate_panel(gate), 24 // max(len(bot_gates), 1), 4)
    d.row("Connection")
    d.add(state_timeline_panel("Bot connection", [q.BOT_CONNECTED, q.BOT_FAULTS], ok_text="up", bad_text="DOWN",
                               description="Faults injected on the bot's path show on their own line."), 16, 6)
    d.add(stat_panel("Bot disconnects in range", [q.BOT_DISCONNECTS_IN_RANGE],
                     steps=((None, "green"), (0.5, "orange"))), 4, 6)
    d.add(stat_panel("Bot session length", [q.BOT_SESSION], unit=units.Seconds), 4, 6)
    d.row("Requests")
    d.add(timeseries_panel("Bot message rate against the Gateway's limit", [q.BOT_RATE_PEAK, q.BOT_RATE_LIMIT],
                           min_value=0, description="Most messages the bot sent in one second over the last "
                                                    "minute; above the limit the Gateway answers 100."), 12, 7)
    d.add(timeseries_panel("Errors the bot received", [q.BOT_ERRORS], draw=BARS), 12, 7)
    d.add(timeseries_panel("Bot request to first answer (p95)", [q.BOT_REQUEST_LATENCY_P95], unit=units.Seconds,
                           min_value=0), 12, 7)
    d.add(timeseries_panel("Bot requests without an answer", [q.BOT_UNANSWERED], min_value=0,
                           steps=((None, "green"), (0.5, "red")),
                           description="Requests older than proxy.unanswered_after with no answer at all."), 12, 7)
    d.row("Orders")
    d.add(stat_panel("Bot orders in range", list(q.BOT_ORDERS_IN_RANGE)), 12, 6)
    d.add(stat_panel("Bot orders working", [q.BOT_ORDERS_WORKING]), 4, 6)
    d.add(timeseries_panel("Bot order latency (p95)", list(q.BOT_ORDER_LATENCY_P95), unit=units.Seconds,
                           min_value=0), 8, 6)
    d.row("Market data as the bot receives it")
    d.add(timeseries_panel("Tick age as the bot sees it", [q.BOT_TICK_AGE], unit=units.Seconds, min_value=0,
                           steps=((None, "green"), (stale, "red")),
                           description=f"Seconds since the newest tick the bot received, per subscribed symbol; "
                                       f"the bot gate needs every one under {stale:g} s while the market is open."),
          12, 7)
    d.add(timeseries_panel("Ticks per second to the bot", [q.BOT_TICK_RATE]), 8, 7)
    d.add(stat_panel("Frames relayed and frames not decoded", [q.PROXY_FRAMES, q.PROXY_UNDECODED],
                     description="Frames the proxy could not decode are relayed unchanged all the same "
                                 "(protobuf at server versions above 200, input that is not the TWS API)."), 4, 7)
    return d.model()
