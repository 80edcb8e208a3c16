"""Every PromQL query the dashboards show, apart from where a panel sits or how it looks.

Why a module of its own: a query is what the dashboard test runs against a real Prometheus, and what
a reviewer checks against the metrics reference; the layout (rows, sizes, colours) changes for other
reasons. Panels refer to these names; the layout module never writes PromQL.
Grafana substitutes ``$__range`` (the selected time range), ``$__rate_interval`` and the
dashboards' own variables (``$probe``, ``$kind``) before a query reaches Prometheus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    """One PromQL target: ``instant`` for stats over ``$__range``, range queries otherwise."""

    expr: str
    legend: str = "__auto"
    instant: bool = False


_PASS_IF = re.compile(r"^\s*(<=|>=|<|>|==)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$")


def parse_pass_if(pass_if: str) -> tuple[str, str]:
    """A gate's ``pass_if`` ('<= 5', '>= 1') as (operator, number as written); anything else is refused."""
    match = _PASS_IF.match(pass_if)
    if not match:
        raise ValueError(f"gates.yml: pass_if must look like '<= 5' or '>= 1', got {pass_if!r}")
    return match.group(1), match.group(2)


def gate_query(expr: str, pass_if: str) -> str:
    """Turn a gate's expr and ``pass_if`` into a 1 (pass) / 0 (fail) query per series.

    PromQL's ``bool`` modifier keeps every series and gives 1 or 0, which is exactly what a
    pass/fail panel needs; the raw value stays in the panel's description via the expr.
    """
    op, value = parse_pass_if(pass_if)
    return f"({expr.strip()}) {op} bool {value}"


def gate(expr: str, pass_if: str) -> Query:
    return Query(gate_query(expr, pass_if), "{{symbol}}{{process}}{{probe}}", instant=True)


# --- connection -----------------------------------------------------------------------------
GATEWAY_CONNECTED = Query("gatewatch_gateway_connected", "API connected")
IB_SERVERS_REACHABLE = Query("1 - gatewatch_gateway_connectivity_lost", "IB servers reachable (not 1100)")
MARKET_DATA_OURS = Query("1 - gatewatch_gateway_competing_session", "market data ours (not 10197)")
DISCONNECTS_IN_RANGE = Query("sum(increase(gatewatch_gateway_disconnects_total[$__range]))", instant=True)
RECONNECT_ATTEMPTS_IN_RANGE = Query("sum(increase(gatewatch_gateway_reconnect_attempts_total[$__range]))",
                                    instant=True)
DATA_FARMS = Query("gatewatch_data_farm_connected", "{{type}} {{farm}}")

# --- market data ----------------------------------------------------------------------------
QUOTE_AGE = Query("gatewatch_quote_age_seconds", "{{symbol}}")
QUOTE_SANE = Query("gatewatch_quote_sane", "{{symbol}}")
MARKET_OPEN = Query("gatewatch_market_open", "market open ({{exchange}})")
QUOTE_TICK_RATE = Query("sum by (symbol) (rate(gatewatch_quote_ticks_total[$__rate_interval]))", "{{symbol}}")
QUOTE_SPREAD = Query("gatewatch_quote_spread", "{{symbol}}")

# --- orders, positions, account -------------------------------------------------------------
_FILL = "sum by (le) (rate(gatewatch_order_fill_latency_seconds_bucket[$__rate_interval]))"
FILL_LATENCY = tuple(Query(f"histogram_quantile({q}, {_FILL})", f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99))
POSITION_DRIFT = Query("gatewatch_position_drift", "{{symbol}} vs {{source}}")
GATEWAY_POSITION = Query("gatewatch_gateway_position", "{{symbol}} {{sec_type}}")
NET_LIQUIDATION = Query("gatewatch_account_net_liquidation", "net liquidation {{currency}}")
CASH = Query("gatewatch_account_cash", "cash {{currency}}")
EXPOSURE_RATIO = Query("gatewatch_position_exposure_ratio", "{{symbol}}")
EXPOSURE_LIMIT = Query("gatewatch_risk_max_position_ratio", "limit (probes.max_position_ratio)")
DAY_TRADES_REMAINING = Query("gatewatch_account_day_trades_remaining", instant=True)

# --- clock and resources --------------------------------------------------------------------
CLOCK_SKEW = Query("gatewatch_clock_skew_seconds", "skew")
CLOCK_SKEW_UPPER = Query("gatewatch_clock_skew_seconds + gatewatch_clock_skew_uncertainty_seconds", "upper bound")
CLOCK_SKEW_LOWER = Query("gatewatch_clock_skew_seconds - gatewatch_clock_skew_uncertainty_seconds", "lower bound")
HEARTBEAT_RTT_P95 = Query("histogram_quantile(0.95, sum by (le) (rate(gatewatch_heartbeat_rtt_seconds_bucket"
                          "[$__rate_interval])))", "p95")
PROCESS_MEMORY = Query("gatewatch_process_resident_memory_bytes", "{{process}}")
PROCESS_CPU = Query("rate(gatewatch_process_cpu_seconds_total[$__rate_interval])", "{{process}}")
HOST_CPU = Query("gatewatch_host_cpu_usage_ratio", "CPU")
HOST_MEMORY = Query("gatewatch_host_memory_usage_ratio", "memory")

# --- errors and alerts ----------------------------------------------------------------------
API_ERRORS = Query("sum by (code, class) (increase(gatewatch_api_errors_total[$__rate_interval]))",
                   "{{code}} {{class}}")
FIRING_ALERTS = Query('ALERTS{alertstate="firing"}', instant=True)

# --- probes (filtered by the probe dashboard's $probe and $kind) ----------------------------
PROBE_VARIABLE = 'label_values(gatewatch_probe_success{kind=~"$kind"}, probe)'
_SEL = 'probe=~"$probe", kind=~"$kind"'
PROBE_SUCCESS = Query(f"gatewatch_probe_success{{{_SEL}}}", "{{kind}} {{probe}}")
PROBE_DURATION = Query(f"gatewatch_probe_duration_seconds{{{_SEL}}}", "{{kind}} {{probe}}")
PROBE_SINCE_LAST_RUN = Query(f"time() - gatewatch_probe_last_run_timestamp_seconds{{{_SEL}}}", "{{kind}} {{probe}}")
PROBE_RUNS_BY_RESULT = Query(
    f"sum by (kind, probe, result) (increase(gatewatch_probe_runs_total{{{_SEL}}}[$__rate_interval]))",
    "{{kind}} {{probe}} {{result}}")
PROBE_FAILED_RUNS_IN_RANGE = Query(
    f'sum by (kind, probe) (increase(gatewatch_probe_runs_total{{{_SEL}, result="failure"}}[$__range]))',
    "{{kind}} {{probe}}", instant=True)
PROBE_ORDERS_SENT = Query("sum by (action) (increase(gatewatch_probe_orders_total[$__range]))", "{{action}}",
                          instant=True)
PROBE_ORDERS_REFUSED = Query("sum by (reason) (increase(gatewatch_probe_orders_refused_total[$__range]))",
                             "{{reason}}", instant=True)
CLOSE_ESCALATIONS = Query('sum by (probe) (increase(gatewatch_order_close_escalations_total{probe!="close_retry"}'
                          "[$__range]))", "{{probe}}", instant=True)
PROBE_OPEN_ORDERS = Query("gatewatch_probe_open_orders", "open orders")
PROBE_POSITIONS = Query("gatewatch_probe_positions", "positions")
PACING_BACKOFFS = Query("sum by (code) (increase(gatewatch_pacing_backoffs_total[$__rate_interval]))", "{{code}}")
HISTORICAL_LATENCY_P95 = Query("histogram_quantile(0.95, sum by (le) "
                               "(rate(gatewatch_historical_request_duration_seconds_bucket[$__rate_interval])))",
                               "p95 latency")
HISTORICAL_BARS = Query("gatewatch_historical_bars", "bars {{symbol}}")
CONNECTS = Query("increase(gatewatch_gateway_connects_total[$__rate_interval])", "connects")
RECONNECT_ATTEMPTS = Query("increase(gatewatch_gateway_reconnect_attempts_total[$__rate_interval])",
                           "reconnect attempts")
HISTORICAL_TIMEOUTS = Query("increase(gatewatch_historical_timeouts_total[$__rate_interval])", "historical timeouts")

# --- the bot, through `gatewatch proxy` (job "proxy") ----------------------------------------
_BOT = "{{client_id}} {{client_name}}"
BOT_CONNECTED = Query("max by (client_id, client_name) (gatewatch_bot_connected)", _BOT)
BOT_FAULTS = Query("max by (fault) (gatewatch_proxy_fault_active)", "fault: {{fault}}")
BOT_DISCONNECTS_IN_RANGE = Query(
    "sum by (closed_by) (increase(gatewatch_bot_disconnects_total[$__range]))", "by {{closed_by}}", instant=True)
BOT_SESSION = Query("gatewatch_bot_session_seconds", _BOT)
BOT_RATE_PEAK = Query("max by (client_id, client_name) (gatewatch_bot_message_rate_peak)", "peak 1 s " + _BOT)
BOT_RATE_LIMIT = Query("max(gatewatch_bot_message_rate_limit)", "Gateway limit")
BOT_ERRORS = Query("sum by (code, class) (increase(gatewatch_bot_errors_total[$__rate_interval]))",
                   "{{code}} {{class}}")
BOT_REQUEST_LATENCY_P95 = Query(
    "histogram_quantile(0.95, sum by (kind, le) (rate(gatewatch_bot_request_first_answer_seconds_bucket"
    "[$__rate_interval])))", "p95 {{kind}}")
BOT_UNANSWERED = Query("sum by (kind) (gatewatch_bot_requests_unanswered)", "{{kind}}")
BOT_ORDERS_IN_RANGE = tuple(
    Query(f"sum(increase(gatewatch_bot_orders_{what}_total[$__range]))", what, instant=True)
    for what in ("placed", "acknowledged", "filled", "cancelled", "rejected", "refused"))
BOT_ORDERS_WORKING = Query("sum(gatewatch_bot_orders_working)", "working")
BOT_ORDER_LATENCY_P95 = tuple(
    Query(f"histogram_quantile(0.95, sum by (le) (rate(gatewatch_bot_order_{name}_seconds_bucket"
          f"[$__rate_interval])))", f"p95 placeOrder to {label}")
    for name, label in (("ack", "ack"), ("first_fill", "first fill")))
BOT_TICK_AGE = Query("max by (symbol) (gatewatch_bot_tick_age_seconds)", "{{symbol}}")
BOT_TICK_RATE = Query("sum by (symbol) (rate(gatewatch_bot_ticks_total[$__rate_interval]))", "{{symbol}}")
PROXY_FRAMES = Query("sum by (direction) (increase(gatewatch_proxy_frames_total[$__range]))", "relayed {{direction}}",
                     instant=True)
PROXY_UNDECODED = Query(
    "sum by (direction, reason) (increase(gatewatch_proxy_frames_undecoded_total[$__range]))",
    "not decoded {{direction}} {{reason}}", instant=True)
