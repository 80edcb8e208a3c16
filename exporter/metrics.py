"""Every metric gatewatch exports, defined in one place: the contract, and how a family is written.

Why one module: the Prometheus rules, the Grafana dashboards, the evidence command and the metrics
reference in docs/ all depend on these names. Keeping the definitions together (and pinned by a
golden-file test) means a rename cannot slip through unnoticed.

Conventions: the ``gatewatch_`` prefix, base units (seconds, bytes, ratios 0-1), ``_total`` on
counters, ``_info`` for constant-1 metadata, blackbox_exporter-style ``gatewatch_probe_success`` and
``gatewatch_probe_duration_seconds`` with a ``probe`` label (and ``kind``: passive or active).
Money is in the account's currency, named by a ``currency`` label.

The probes keep plain state; ``exporter.collectors`` turns it into these families at scrape time.
A :class:`MetricSpec` writes its own family in the text format with its header rendered once and
each label set's text rendered once, so a scrape formats little more than the values (the same
text prometheus-client's ``generate_latest`` writes, checked by a test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from probes.state import Distribution, ProbeState

LabelValues = tuple[str, ...]
Rows = Iterable[tuple[LabelValues, float]]
LABEL_CACHE_LIMIT = 10_000
"""Label sets remembered per family; past it the cache starts again (a label explosion stays bounded)."""


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


@dataclass(frozen=True)
class MetricSpec:
    """Name (without ``_total``), type, help and label names of one exported family."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...] = ()
    _cache: dict[LabelValues, str] = field(default_factory=dict, compare=False, repr=False)
    _memo: list[tuple[object, str]] = field(default_factory=lambda: [(None, "")], compare=False, repr=False)

    @property
    def sample_name(self) -> str:
        """The name the samples carry (counters add ``_total``)."""
        return self.name + "_total" if self.type == "counter" else self.name

    @cached_property
    def header(self) -> str:
        name = self.sample_name
        help_text = self.help.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {name} {help_text}\n# TYPE {name} {self.type}\n"

    def prefix(self, values: LabelValues) -> str:
        """``name{a="x",b="y"}`` for one label set (labels sorted by name, as prometheus-client writes)."""
        found = self._cache.get(values)
        if found is None:
            if len(self._cache) >= LABEL_CACHE_LIMIT:
                self._cache.clear()
            pairs = sorted(zip(self.labels, values, strict=True))
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
            found = self._cache[values] = f"{self.sample_name}{{{inner}}}" if inner else self.sample_name
        return found

    def render(self, rows: Rows) -> str:
        """The family in the text exposition format.

        Most families hold the same rows scrape after scrape (counters that did not move, account
        values, farm states): rows equal to the previous scrape's reuse its text, so a scrape
        formats only what changed. (One tuple holds rows and text: a reader never sees a mix.)
        """
        if isinstance(rows, list):
            last_rows, text = self._memo[0]
            if rows == last_rows:
                return text
        prefix = self.prefix
        text = self.header + "".join(f"{prefix(labels)} {floatToGoString(value)}\n" for labels, value in rows)
        if isinstance(rows, list):
            self._memo[0] = (rows, text)
        return text

    def family(self, rows: Rows) -> Metric:
        """The same family as a prometheus-client object (for registry readers such as tests)."""
        family: GaugeMetricFamily | CounterMetricFamily
        if self.type == "counter":
            family = CounterMetricFamily(self.name, self.help, labels=self.labels)
        else:
            family = GaugeMetricFamily(self.name, self.help, labels=self.labels)
        for labels, value in rows:
            family.add_metric(list(labels), value)
        return family


@dataclass(frozen=True)
class HistogramSpec:
    """An unlabelled histogram; its buckets are those of the :class:`Distribution` it shows."""

    name: str
    help: str
    type: str = "histogram"
    labels: tuple[str, ...] = ()
    _memo: list[tuple[object, str]] = field(default_factory=lambda: [(None, "")], compare=False, repr=False)

    @cached_property
    def header(self) -> str:
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} histogram\n"

    def _buckets(self, dist: Distribution) -> list[tuple[str, float]]:
        total, result = 0, []
        for bound, count in zip((*dist.bounds, float("inf")), list(dist.counts), strict=True):
            total += count
            result.append((floatToGoString(bound), float(total)))
        return result

    def render(self, dist: Distribution | None) -> str:
        """The histogram's text; unchanged counts since the previous scrape reuse its text."""
        if dist is None:
            return self.header
        key = (dist.bounds, tuple(dist.counts), dist.total)
        last_key, text = self._memo[0]
        if key == last_key:
            return text
        buckets = self._buckets(dist)
        lines = [f'{self.name}_bucket{{le="{le}"}} {floatToGoString(count)}\n' for le, count in buckets]
        lines.append(f"{self.name}_count {floatToGoString(buckets[-1][1])}\n")
        lines.append(f"{self.name}_sum {floatToGoString(dist.total)}\n")
        text = self.header + "".join(lines)
        self._memo[0] = (key, text)
        return text

    def family(self, dist: Distribution | None) -> Metric:
        family = HistogramMetricFamily(self.name, self.help)
        if dist is not None:
            family.add_metric([], self._buckets(dist), dist.total)
        return family


EXPORTER_INFO = MetricSpec('gatewatch_exporter_info', 'gauge',
    'gatewatch exporter build and target information.',
    ('version', 'gateway'))
GATEWAY_CONNECTED = MetricSpec('gatewatch_gateway_connected', 'gauge',
    '1 while the API connection to the Gateway is up and synced.',
    ())
GATEWAY_CONNECTED_SINCE = MetricSpec('gatewatch_gateway_connected_since_timestamp_seconds', 'gauge',
    'Unix time the current connection was established (0 while disconnected).',
    ())
GATEWAY_STATE = MetricSpec('gatewatch_gateway_state', 'gauge',
    '1 for what the latest connection attempt or the live connection found: connected, refused, '
    'not_answering (port open, API silent or frozen), not_logged_in (API up without a session).',
    ('state',))
GATEWAY_CONNECTS = MetricSpec('gatewatch_gateway_connects', 'counter',
    'Successful connections to the Gateway.',
    ())
GATEWAY_DISCONNECTS = MetricSpec('gatewatch_gateway_disconnects', 'counter',
    'Losses of the Gateway connection.',
    ())
GATEWAY_RECONNECT_ATTEMPTS = MetricSpec('gatewatch_gateway_reconnect_attempts', 'counter',
    'Connection attempts after a loss or a failed start.',
    ())
GATEWAY_SERVER_VERSION = MetricSpec('gatewatch_gateway_server_version', 'gauge',
    'API server version the Gateway negotiated.',
    ())
API_ERRORS = MetricSpec('gatewatch_api_errors', 'counter',
    'API error/notice messages from the Gateway by code and class.',
    ('code', 'class'))
DATA_FARM_CONNECTED = MetricSpec('gatewatch_data_farm_connected', 'gauge',
    '1 if the data farm is connected or inactive-but-available (2104/2106/2158/2107/2108), 0 if broken.',
    ('farm', 'type'))
COMPETING_SESSION = MetricSpec('gatewatch_gateway_competing_session', 'gauge',
    '1 while a competing live session holds the market data (error 10197).',
    ())
CONNECTIVITY_LOST = MetricSpec('gatewatch_gateway_connectivity_lost', 'gauge',
    '1 between error 1100 (IB servers lost) and 1101/1102 (restored).',
    ())
CONNECTIVITY_LOSSES = MetricSpec('gatewatch_gateway_connectivity_losses', 'counter',
    "Losses of the Gateway's link to IB's servers (error 1100 or 2110 while linked), however short.",
    ())
GATEWAY_LINKED_SINCE = MetricSpec('gatewatch_gateway_linked_since_timestamp_seconds', 'gauge',
    "Unix time data could flow again: the later of the current connection and the latest 1101/1102 "
    "ending a 1100 (0 while disconnected or while the Gateway has lost IB's servers).",
    ())
ACCOUNT_INFO = MetricSpec('gatewatch_account_info', 'gauge',
    'Account the Gateway manages; account_type is paper or live.',
    ('account', 'account_type'))
ACCOUNT_NET_LIQUIDATION = MetricSpec('gatewatch_account_net_liquidation', 'gauge',
    'Net liquidation value.',
    ('currency',))
ACCOUNT_CASH = MetricSpec('gatewatch_account_cash', 'gauge',
    'Total cash value.',
    ('currency',))
ACCOUNT_BUYING_POWER = MetricSpec('gatewatch_account_buying_power', 'gauge',
    'Buying power.',
    ('currency',))
ACCOUNT_DAY_TRADES_REMAINING = MetricSpec('gatewatch_account_day_trades_remaining', 'gauge',
    'Day trades left under the pattern-day-trader rule (-1: unlimited).',
    ())
ACCOUNT_POSITIONS = MetricSpec('gatewatch_account_positions', 'gauge',
    'Number of non-zero positions the Gateway reports.',
    ())
HEARTBEAT_RTT = HistogramSpec('gatewatch_heartbeat_rtt_seconds',
    'Round trip of a current-time request to the Gateway.')
CLOCK_SKEW = MetricSpec('gatewatch_clock_skew_seconds', 'gauge',
    'Estimated host clock minus IB server clock.',
    ())
CLOCK_SKEW_UNCERTAINTY = MetricSpec('gatewatch_clock_skew_uncertainty_seconds', 'gauge',
    "Half-width of the skew estimate's interval.",
    ())
HOST_NTP_SYNCHRONIZED = MetricSpec('gatewatch_host_ntp_synchronized', 'gauge',
    '1 if the host reports its clock NTP-synchronised, 0 if not.',
    ())
QUOTE_BID = MetricSpec('gatewatch_quote_bid', 'gauge',
    'Latest bid price.',
    ('symbol',))
QUOTE_ASK = MetricSpec('gatewatch_quote_ask', 'gauge',
    'Latest ask price.',
    ('symbol',))
QUOTE_LAST = MetricSpec('gatewatch_quote_last', 'gauge',
    'Latest trade price.',
    ('symbol',))
QUOTE_SPREAD = MetricSpec('gatewatch_quote_spread', 'gauge',
    'Ask minus bid.',
    ('symbol',))
QUOTE_FIELD_PRESENT = MetricSpec('gatewatch_quote_field_present', 'gauge',
    '1 if the field (bid, ask, last) holds a valid price.',
    ('symbol', 'field'))
QUOTE_SANE = MetricSpec('gatewatch_quote_sane', 'gauge',
    '1 if bid > 0, ask > 0 and ask > bid.',
    ('symbol',))
QUOTE_TICKS = MetricSpec('gatewatch_quote_ticks', 'counter',
    'Quote updates received on the stream.',
    ('symbol',))
QUOTE_LAST_UPDATE = MetricSpec('gatewatch_quote_last_update_timestamp_seconds', 'gauge',
    'Unix time of the newest quote (Gateway timestamp where sent, else arrival).',
    ('symbol',))
MARKET_OPEN = MetricSpec('gatewatch_market_open', 'gauge',
    "1 while the exchange's regular session is open (holidays, early closes).",
    ('exchange',))
MARKET_DATA_LINES = MetricSpec('gatewatch_market_data_lines', 'gauge',
    'Market data lines this exporter holds.',
    ())
HISTORICAL_BARS = MetricSpec('gatewatch_historical_bars', 'gauge',
    'Bars returned by the last historical request.',
    ('symbol',))
HISTORICAL_REQUEST_DURATION = HistogramSpec('gatewatch_historical_request_duration_seconds',
    'Latency of historical-bar requests.')
HISTORICAL_TIMEOUTS = MetricSpec('gatewatch_historical_timeouts', 'counter',
    'Historical requests that timed out.',
    ())
GATEWAY_POSITION = MetricSpec('gatewatch_gateway_position', 'gauge',
    'Position quantity the Gateway reports.',
    ('symbol', 'sec_type', 'con_id'))
POSITION_DRIFT = MetricSpec('gatewatch_position_drift', 'gauge',
    "Gateway position minus the compared source's, per symbol.",
    ('symbol', 'source'))
RECONCILIATION_DISCREPANCIES = MetricSpec('gatewatch_reconciliation_discrepancies', 'counter',
    'Reconciliations that found a difference.',
    ('source',))
EXECUTIONS = MetricSpec('gatewatch_executions', 'counter',
    'Executions the Gateway reported for the account, by who placed the order: probe (gatewatch), '
    'api (another API client, the bot), manual (client id 0, by hand in TWS; kept out of the ledger).',
    ('origin',))
POSITION_EXPOSURE_RATIO = MetricSpec('gatewatch_position_exposure_ratio', 'gauge',
    'Absolute position value / net liquidation, per symbol.',
    ('symbol',))
RISK_MAX_POSITION_RATIO = MetricSpec('gatewatch_risk_max_position_ratio', 'gauge',
    'Configured limit on position value / net liquidation.',
    ())
TRADE_RISK_RATIO = MetricSpec('gatewatch_trade_risk_ratio', 'gauge',
    'Largest single order of the day (shares x price x multiplier, all its executions) / net '
    'liquidation, per symbol: what one trade put at risk.',
    ('symbol',))
RISK_LIMIT_FAILS_SESSION = MetricSpec('gatewatch_risk_limit_fails_session', 'gauge',
    '1 when a breach of this risk limit fails the session, 0 when it is only reported '
    '(session.risk_limits_fail): the risk alerts are critical or warnings by it.',
    ('limit',))
PROCESS_RESIDENT_MEMORY = MetricSpec('gatewatch_process_resident_memory_bytes', 'gauge',
    'Resident memory of a watched process.',
    ('process',))
PROCESS_CPU_SECONDS = MetricSpec('gatewatch_process_cpu_seconds', 'counter',
    'CPU time (user+system) of a watched process.',
    ('process',))
PROCESS_OPEN_FDS = MetricSpec('gatewatch_process_open_fds', 'gauge',
    'Open file descriptors of a watched process.',
    ('process',))
PROCESS_UP = MetricSpec('gatewatch_process_up', 'gauge',
    '1 if the watched process was found.',
    ('process',))
EXPORTER_ASYNCIO_TASKS = MetricSpec('gatewatch_exporter_asyncio_tasks', 'gauge',
    'asyncio tasks alive in the exporter; steady growth is a task leak.',
    ())
HOST_CPU_USAGE_RATIO = MetricSpec('gatewatch_host_cpu_usage_ratio', 'gauge',
    'Host CPU use, 0-1, over the last sampling interval.',
    ())
HOST_MEMORY_USAGE_RATIO = MetricSpec('gatewatch_host_memory_usage_ratio', 'gauge',
    'Host memory in use (not available), 0-1.',
    ())
ORDER_FILL_LATENCY = HistogramSpec('gatewatch_order_fill_latency_seconds',
    'placeOrder-to-first-execution latency of marketable probe orders (resting ones left out).')
PROBE_ORDERS = MetricSpec('gatewatch_probe_orders', 'counter',
    'Orders the active probes sent, by action.',
    ('action',))
PROBE_ORDERS_REFUSED = MetricSpec('gatewatch_probe_orders_refused', 'counter',
    'Probe orders refused by a safety guard, by reason.',
    ('reason',))
CLOSE_ESCALATIONS = MetricSpec('gatewatch_order_close_escalations', 'counter',
    'Closes that did not fill after every re-price, by the probe (or clean-up) that closed; '
    'the close_retry probe escalates on purpose.',
    ('probe',))
PROBE_OPEN_ORDERS = MetricSpec('gatewatch_probe_open_orders', 'gauge',
    'Probe orders still open according to the journal.',
    ())
PROBE_POSITIONS = MetricSpec('gatewatch_probe_positions', 'gauge',
    'Probe positions still held according to the journal.',
    ())
PROBE_POSITION_DISAGREEMENTS = MetricSpec('gatewatch_probe_position_disagreements', 'gauge',
    "Contracts where the probes' journal and the Gateway disagree on what the probes hold.",
    ())
PACING_BACKOFFS = MetricSpec('gatewatch_pacing_backoffs', 'counter',
    'Back-offs after a pacing error (100 or 162).',
    ('code',))

PROBE_SUCCESS = MetricSpec('gatewatch_probe_success', 'gauge',
    "1 if the probe's last run succeeded, else 0.",
    ('probe', 'kind'))
PROBE_DURATION = MetricSpec('gatewatch_probe_duration_seconds', 'gauge',
    "Duration of the probe's last run.",
    ('probe', 'kind'))
PROBE_LAST_RUN = MetricSpec('gatewatch_probe_last_run_timestamp_seconds', 'gauge',
    'Unix time the probe last finished.',
    ('probe', 'kind'))
PROBE_RUNS = MetricSpec('gatewatch_probe_runs', 'counter',
    'Probe runs by result (success or failure).',
    ('probe', 'kind', 'result'))
QUOTE_AGE = MetricSpec('gatewatch_quote_age_seconds', 'gauge',
    'Seconds since the newest quote (Gateway timestamp where sent, else arrival), at scrape time.',
    ('symbol',))

CONTRACT: tuple[MetricSpec | HistogramSpec, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, MetricSpec | HistogramSpec))
"""Every exported family, in the order above."""

Family = tuple[MetricSpec, Rows] | tuple[HistogramSpec, Distribution | None]
FamilySource = Callable[[], Iterator[Family]]


class Metrics(ProbeState):
    """The probes' shared state, and the registry that shows it and every attached source.

    ``render()`` is what /metrics serves; ``registry`` is the same data for prometheus-client
    readers (``get_sample_value`` in tests). Every family of the contract appears in both, empty
    until a source fills it, as prometheus-client's own metric objects did.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[FamilySource] = [self._shared_families]
        self.on_scrape: list[Callable[[], None]] = []  # readings taken when scraped, before any family
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_RegistryView(self))

    def add_source(self, source: FamilySource) -> None:
        self.sources.append(source)

    def families(self) -> Iterator[Family]:
        for read in self.on_scrape:  # first, so the outcomes shown include this scrape's readings
            read()
        seen: set[str] = set()
        for source in self.sources:
            for family in source():
                seen.add(family[0].name)
                yield family
        for spec in CONTRACT:
            if spec.name not in seen:
                yield (spec, ()) if isinstance(spec, MetricSpec) else (spec, None)

    def render(self) -> bytes:
        """/metrics in the text exposition format."""
        parts = []
        for spec, data in self.families():
            parts.append(spec.render(data))  # type: ignore[arg-type]  # spec and data come in pairs
        return "".join(parts).encode()

    def _shared_families(self) -> Iterator[Family]:
        success: list[tuple[LabelValues, float]] = []
        duration: list[tuple[LabelValues, float]] = []
        last_run: list[tuple[LabelValues, float]] = []
        runs: list[tuple[LabelValues, float]] = []
        for rec in self.outcomes:
            labels = (rec.probe, rec.kind)
            status = rec.status
            if status.last_run is not None:
                success.append((labels, 1.0 if status.success else 0.0))
                duration.append((labels, rec.duration))
                last_run.append((labels, status.last_run))
            runs.append(((*labels, "success"), rec.successes))
            runs.append(((*labels, "failure"), rec.failures))
        yield PROBE_SUCCESS, success
        yield PROBE_DURATION, duration
        yield PROBE_LAST_RUN, last_run
        yield PROBE_RUNS, runs
        yield ORDER_FILL_LATENCY, self.fill_latency
        yield PROBE_ORDERS, _by_label(self.orders)
        yield PROBE_ORDERS_REFUSED, _by_label(self.orders_refused)
        yield CLOSE_ESCALATIONS, _by_label(self.close_escalations)
        yield PACING_BACKOFFS, _by_label(self.pacing_backoffs)
        yield PROBE_OPEN_ORDERS, [((), self.open_orders)]
        yield PROBE_POSITIONS, [((), self.positions)]
        yield PROBE_POSITION_DISAGREEMENTS, [((), self.position_disagreements)]


def _by_label(counts: Mapping[str, int]) -> list[tuple[LabelValues, float]]:
    return [((key,), value) for key, value in list(counts.items())]  # list(): one step under the GIL


class _RegistryView(Collector):
    """The families as prometheus-client objects."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        for spec, data in self.metrics.families():
            yield spec.family(data)  # type: ignore[arg-type]
