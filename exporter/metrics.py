"""Every metric gatewatch exports, defined in one place.

Why one module: the Prometheus rules, the Grafana dashboards, the evidence command and the metrics
reference in docs/ all depend on these names. Keeping the definitions together (and pinned by a
golden-file test) means a rename cannot slip through unnoticed.

Conventions: the ``gatewatch_`` prefix, base units (seconds, bytes, ratios 0-1), ``_total`` on
counters, ``_info`` for constant-1 metadata, blackbox_exporter-style ``gatewatch_probe_success`` and
``gatewatch_probe_duration_seconds`` with a ``probe`` label (and ``kind``: passive or active).
Money is in the account's currency, named by a ``currency`` label.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from probes.outcome import ProbeOutcomes

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FILL_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class CounterFromSource(Gauge):
    """A counter whose total is read from elsewhere (e.g. a process's CPU seconds) and set.

    prometheus_client's Counter can only be incremented; exposing a copied total as a gauge named
    ``*_total`` fails ``promtool check metrics`` and misleads ``rate()`` users. This keeps the
    setter but is exposed as a counter.
    """

    _type = "counter"

    def _child_samples(self) -> Iterable[Sample]:
        return tuple(sample._replace(name="_total") for sample in super()._child_samples())


@dataclass(frozen=True)
class MetricSpec:
    """Name, type, help and label names of a metric family made at scrape time by a collector."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...] = ()

    def gauge(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)

    def counter(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.help, labels=self.labels)


PROBE_SUCCESS = MetricSpec("gatewatch_probe_success", "gauge", "1 if the probe's last run succeeded, else 0.",
                           ("probe", "kind"))
PROBE_DURATION = MetricSpec("gatewatch_probe_duration_seconds", "gauge", "Duration of the probe's last run.",
                            ("probe", "kind"))
PROBE_LAST_RUN = MetricSpec("gatewatch_probe_last_run_timestamp_seconds", "gauge",
                            "Unix time the probe last finished.", ("probe", "kind"))
PROBE_RUNS = MetricSpec("gatewatch_probe_runs", "counter", "Probe runs by result (success or failure).",
                        ("probe", "kind", "result"))
SCRAPE_TIME_SPECS: tuple[MetricSpec, ...] = (PROBE_SUCCESS, PROBE_DURATION, PROBE_LAST_RUN, PROBE_RUNS)
"""Families made by collectors at scrape time (the rest are prometheus-client objects below)."""


class ProbeOutcomeCollector(Collector):
    """The blackbox-style probe families from the probes' recorders, made at scrape time."""

    def __init__(self, outcomes: ProbeOutcomes) -> None:
        self.outcomes = outcomes

    def collect(self) -> Iterator[Metric]:
        success, duration, last_run, runs = (PROBE_SUCCESS.gauge(), PROBE_DURATION.gauge(),
                                             PROBE_LAST_RUN.gauge(), PROBE_RUNS.counter())
        for rec in self.outcomes:
            labels = [rec.probe, rec.kind]
            status = rec.status
            if status.last_run is not None:
                success.add_metric(labels, 1.0 if status.success else 0.0)
                duration.add_metric(labels, rec.duration)
                last_run.add_metric(labels, status.last_run)
            runs.add_metric([*labels, "success"], rec.successes)
            runs.add_metric([*labels, "failure"], rec.failures)
        yield from (success, duration, last_run, runs)

    def describe(self) -> Iterator[Metric]:
        return iter(())


class Metrics:
    """The exporter's metric objects, registered in their own registry (no global state)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry

        # exporter itself
        self.exporter_info = Gauge(
            "gatewatch_exporter_info", "gatewatch exporter build and target information.",
            ["version", "gateway"], registry=r)

        # blackbox-style probe results (passive and active probes alike), made at scrape time
        self.outcomes = ProbeOutcomes()
        r.register(ProbeOutcomeCollector(self.outcomes))

        # connection
        self.gateway_connected = Gauge(
            "gatewatch_gateway_connected", "1 while the API connection to the Gateway is up and synced.",
            registry=r)
        self.gateway_connected_since = Gauge(
            "gatewatch_gateway_connected_since_timestamp_seconds",
            "Unix time the current connection was established (0 while disconnected).", registry=r)
        self.gateway_connects = Counter(
            "gatewatch_gateway_connects_total", "Successful connections to the Gateway.", registry=r)
        self.gateway_disconnects = Counter(
            "gatewatch_gateway_disconnects_total", "Losses of the Gateway connection.", registry=r)
        self.gateway_reconnect_attempts = Counter(
            "gatewatch_gateway_reconnect_attempts_total", "Connection attempts after a loss or a failed start.",
            registry=r)
        self.gateway_server_version = Gauge(
            "gatewatch_gateway_server_version", "API server version the Gateway negotiated.", registry=r)
        self.api_errors = Counter(
            "gatewatch_api_errors_total", "API error/notice messages from the Gateway by code and class.",
            ["code", "class"], registry=r)
        self.data_farm_connected = Gauge(
            "gatewatch_data_farm_connected",
            "1 if the data farm is connected or inactive-but-available (2104/2106/2158/2107/2108), 0 if broken.",
            ["farm", "type"], registry=r)
        self.competing_session = Gauge(
            "gatewatch_gateway_competing_session",
            "1 while a competing live session holds the market data (error 10197).", registry=r)
        self.connectivity_lost = Gauge(
            "gatewatch_gateway_connectivity_lost",
            "1 between error 1100 (IB servers lost) and 1101/1102 (restored).", registry=r)

        # account
        self.account_info = Gauge(
            "gatewatch_account_info", "Account the Gateway manages; account_type is paper or live.",
            ["account", "account_type"], registry=r)
        self.account_net_liquidation = Gauge(
            "gatewatch_account_net_liquidation", "Net liquidation value.", ["currency"], registry=r)
        self.account_cash = Gauge(
            "gatewatch_account_cash", "Total cash value.", ["currency"], registry=r)
        self.account_buying_power = Gauge(
            "gatewatch_account_buying_power", "Buying power.", ["currency"], registry=r)
        self.account_day_trades_remaining = Gauge(
            "gatewatch_account_day_trades_remaining",
            "Day trades left under the pattern-day-trader rule (-1: unlimited).", registry=r)
        self.account_positions = Gauge(
            "gatewatch_account_positions", "Number of non-zero positions the Gateway reports.", registry=r)

        # heartbeat and clock
        self.heartbeat_rtt = Histogram(
            "gatewatch_heartbeat_rtt_seconds", "Round trip of a current-time request to the Gateway.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.clock_skew = Gauge(
            "gatewatch_clock_skew_seconds", "Estimated host clock minus IB server clock.", registry=r)
        self.clock_skew_uncertainty = Gauge(
            "gatewatch_clock_skew_uncertainty_seconds", "Half-width of the skew estimate's interval.",
            registry=r)
        self.host_ntp_synchronized = Gauge(
            "gatewatch_host_ntp_synchronized", "1 if the host reports its clock NTP-synchronised, 0 if not.",
            registry=r)

        # quotes (gatewatch_quote_age_seconds is computed at scrape time by exporter.collectors)
        self.quote_bid = Gauge("gatewatch_quote_bid", "Latest bid price.", ["symbol"], registry=r)
        self.quote_ask = Gauge("gatewatch_quote_ask", "Latest ask price.", ["symbol"], registry=r)
        self.quote_last = Gauge("gatewatch_quote_last", "Latest trade price.", ["symbol"], registry=r)
        self.quote_spread = Gauge("gatewatch_quote_spread", "Ask minus bid.", ["symbol"], registry=r)
        self.quote_field_present = Gauge(
            "gatewatch_quote_field_present", "1 if the field (bid, ask, last) holds a valid price.",
            ["symbol", "field"], registry=r)
        self.quote_sane = Gauge(
            "gatewatch_quote_sane", "1 if bid > 0, ask > 0 and ask > bid.", ["symbol"], registry=r)
        self.quote_ticks = Counter(
            "gatewatch_quote_ticks_total", "Quote updates received on the stream.", ["symbol"], registry=r)
        self.quote_last_update = Gauge(
            "gatewatch_quote_last_update_timestamp_seconds",
            "Unix time of the newest quote (Gateway timestamp where sent, else arrival).", ["symbol"], registry=r)
        self.market_open = Gauge(
            "gatewatch_market_open", "1 while the exchange's regular session is open (holidays, early closes).",
            ["exchange"], registry=r)
        self.market_data_lines = Gauge(
            "gatewatch_market_data_lines", "Market data lines this exporter holds.", registry=r)

        # historical
        self.historical_bars = Gauge(
            "gatewatch_historical_bars", "Bars returned by the last historical request.", ["symbol"], registry=r)
        self.historical_request_duration = Histogram(
            "gatewatch_historical_request_duration_seconds", "Latency of historical-bar requests.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.historical_timeouts = Counter(
            "gatewatch_historical_timeouts_total", "Historical requests that timed out.", registry=r)

        # reconciliation and risk
        self.gateway_position = Gauge(
            "gatewatch_gateway_position", "Position quantity the Gateway reports.",
            ["symbol", "sec_type", "con_id"], registry=r)
        self.position_drift = Gauge(
            "gatewatch_position_drift", "Gateway position minus the compared source's, per symbol.",
            ["symbol", "source"], registry=r)
        self.reconciliation_discrepancies = Counter(
            "gatewatch_reconciliation_discrepancies_total", "Reconciliations that found a difference.",
            ["source"], registry=r)
        self.position_exposure_ratio = Gauge(
            "gatewatch_position_exposure_ratio", "Absolute position value / net liquidation, per symbol.",
            ["symbol"], registry=r)
        self.risk_max_position_ratio = Gauge(
            "gatewatch_risk_max_position_ratio", "Configured limit on position value / net liquidation.",
            registry=r)

        # processes and host
        self.process_resident_memory = Gauge(
            "gatewatch_process_resident_memory_bytes", "Resident memory of a watched process.",
            ["process"], registry=r)
        self.process_cpu_seconds = CounterFromSource(
            "gatewatch_process_cpu_seconds_total", "CPU time (user+system) of a watched process.",
            ["process"], registry=r)
        self.process_open_fds = Gauge(
            "gatewatch_process_open_fds", "Open file descriptors of a watched process.", ["process"], registry=r)
        self.process_up = Gauge(
            "gatewatch_process_up", "1 if the watched process was found.", ["process"], registry=r)
        self.exporter_asyncio_tasks = Gauge(
            "gatewatch_exporter_asyncio_tasks", "asyncio tasks alive in the exporter; steady growth is a task leak.",
            registry=r)
        self.host_cpu_usage_ratio = Gauge(
            "gatewatch_host_cpu_usage_ratio", "Host CPU use, 0-1, over the last sampling interval.", registry=r)
        self.host_memory_usage_ratio = Gauge(
            "gatewatch_host_memory_usage_ratio", "Host memory in use (not available), 0-1.", registry=r)

        # active order probes
        self.order_fill_latency = Histogram(
            "gatewatch_order_fill_latency_seconds", "Submit-to-execution latency of probe orders.",
            buckets=FILL_LATENCY_BUCKETS, registry=r)
        self.probe_orders = Counter(
            "gatewatch_probe_orders_total", "Orders the active probes sent, by action.", ["action"], registry=r)
        self.probe_orders_refused = Counter(
            "gatewatch_probe_orders_refused_total", "Probe orders refused by a safety guard, by reason.",
            ["reason"], registry=r)
        self.close_escalations = Counter(
            "gatewatch_order_close_escalations_total",
            "Closes that did not fill after every re-price, by the probe (or clean-up) that closed; "
            "the close_retry probe escalates on purpose.", ["probe"], registry=r)
        self.probe_open_orders = Gauge(
            "gatewatch_probe_open_orders", "Probe orders still open according to the journal.", registry=r)
        self.probe_positions = Gauge(
            "gatewatch_probe_positions", "Probe positions still held according to the journal.", registry=r)
        self.probe_position_disagreements = Gauge(
            "gatewatch_probe_position_disagreements",
            "Contracts where the probes' journal and the Gateway disagree on what the probes hold.", registry=r)
        self.pacing_backoffs = Counter(
            "gatewatch_pacing_backoffs_total", "Back-offs after a pacing error (100 or 162).", ["code"],
            registry=r)

    def init_close_escalations(self, probes: Iterable[str]) -> None:
        """Create ``gatewatch_order_close_escalations_total`` at 0 for every probe that may close.

        Why: the CloseEscalation alert uses ``increase()``, which needs a sample before the change it
        measures: a series whose first sample is already 1 shows no increase, so the first escalation
        would pass unseen.
        """
        for probe in probes:
            self.close_escalations.labels(probe=probe)
