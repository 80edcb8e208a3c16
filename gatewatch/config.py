"""gatewatch's configuration: one YAML file, validated strictly.

A monitoring tool that silently ignores a misspelt key is worse than none: the operator believes a
threshold is in force when it is not. Every model therefore forbids unknown keys, and
:func:`load_config` turns any validation problem into a :class:`ConfigError` that names the file and
the dotted path of the field, so the command line can print it and exit with status 2.

No secret lives in this file: SMTP passwords and Grafana credentials come from the environment or
from files (see docs/runbook.md).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from gatewatch import safe_yaml
from gatewatch.durations import parse_duration as parse_duration  # re-exported: config's callers use it

DEFAULT_CONFIG_PATH = Path("config/gatewatch.yaml")
GATEWAY_ENV = "GATEWATCH_GATEWAY"
DEFAULT_EXPORTER_PORT = 14002
"""Gateway paper port + 10000: outside the 9100-9999 range Prometheus allocates to exporters."""

PAPER_GATEWAY_PORTS = (4002, 7497)
"""IB Gateway paper 4002, TWS paper 7497 (live: 4001 and 7496)."""

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class Strict(BaseModel):
    """Base model: unknown keys are errors, values are checked on assignment too, and no number may
    be infinite or NaN (``.inf`` as a notional limit would be no limit at all)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class GatewayConfig(Strict):
    """Where the IB Gateway (or the simulator) listens, and how gatewatch talks to it."""

    host: str = "127.0.0.1"
    port: int = Field(default=4002, ge=1, le=65535)
    client_id: int = Field(default=901, ge=0, description="client id of the exporter's read-only connection")
    probe_client_id: int = Field(default=902, ge=0, description="client id of the active order probes")
    paper: bool = Field(default=True, description="the operator's statement that this is a paper Gateway")
    paper_ports: list[int] = Field(default_factory=lambda: list(PAPER_GATEWAY_PORTS))
    account: str | None = Field(default=None, description="expected account id; None: the first managed account")
    connect_timeout: PositiveSeconds = 10.0
    request_timeout: PositiveSeconds = 10.0
    reconnect_initial: PositiveSeconds = 1.0
    reconnect_max: PositiveSeconds = 60.0
    reconnect_jitter: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _distinct_client_ids(self) -> GatewayConfig:
        if self.client_id == self.probe_client_id:
            raise ValueError("client_id and probe_client_id must differ (the Gateway refuses a duplicate, error 326)")
        return self


class ExporterConfig(Strict):
    """The exporter's own HTTP endpoint and logging."""

    listen: str = f"127.0.0.1:{DEFAULT_EXPORTER_PORT}"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False


class HistoricalConfig(Strict):
    """The historical-bars probe. IBKR forbids identical requests within 15 s and >60 per 10 min."""

    enabled: bool = True
    interval: PositiveSeconds = 60.0
    symbol: str = "SPY"
    duration: str = "1 D"
    bar_size: str = "1 hour"
    what_to_show: Literal["TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"] = "TRADES"
    use_rth: bool = False
    timeout: PositiveSeconds = 20.0

    @model_validator(mode="after")
    def _respect_pacing(self) -> HistoricalConfig:
        if self.interval < 15:
            raise ValueError(
                "interval must be at least 15s: IBKR treats identical requests within 15 s as pacing violations"
            )
        return self


class ProcessWatch(Strict):
    """A process to watch besides the exporter, found by a regular expression over its command line."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    cmdline_regex: str

    @model_validator(mode="after")
    def _regex_compiles(self) -> ProcessWatch:
        try:
            re.compile(self.cmdline_regex)
        except re.error as exc:
            raise ValueError(f"cmdline_regex does not compile: {exc}") from exc
        return self


class ProbesConfig(Strict):
    """The passive probes the exporter runs continuously."""

    symbols: list[Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9.]{0,9}$")]] = Field(
        default_factory=lambda: ["SPY", "QQQ", "IWM"], min_length=1
    )
    market_data_type: Literal[1, 2, 3, 4] = 1
    quote_stale_after: PositiveSeconds = 5.0
    heartbeat_interval: PositiveSeconds = 5.0
    clock_interval: PositiveSeconds = 5.0
    account_interval: PositiveSeconds = 10.0
    reconciliation_interval: PositiveSeconds = 60.0
    bot_positions_file: str | None = Field(default=None, description="JSON positions file the trading bot writes")
    max_position_ratio: float = Field(
        default=0.20, gt=0, le=1, description="bot's limit: position value / net liquidation"
    )
    process_interval: PositiveSeconds = 15.0  # leaks and memory limits show over minutes, not seconds
    processes: list[ProcessWatch] = Field(default_factory=list)
    historical: HistoricalConfig = Field(default_factory=HistoricalConfig)


class InstrumentConfig(Strict):
    """What the active probes trade: 1 share of a stock, or a cheap OTM option found at run time."""

    kind: Literal["stock", "option"] = "stock"
    symbol: str = "SPY"
    right: Literal["C", "P"] = "C"
    max_option_price: float = Field(default=0.50, gt=0, description="cheapest OTM strike at or below this premium")
    min_days_to_expiry: int = Field(default=0, ge=0)


class ActiveConfig(Strict):
    """Active order probes: real paper orders, bounded by hard limits."""

    enabled: bool = Field(default=False, description="run the active probes on a schedule inside the exporter")
    interval: PositiveSeconds = 600.0
    market_hours_only: bool = True
    instrument: InstrumentConfig = Field(default_factory=InstrumentConfig)
    max_quantity: int = Field(default=1, ge=1, le=1, description="at most 1 contract/share per probe order")
    max_notional: float = Field(default=2000.0, gt=0, description="USD, per probe order")
    max_orders_per_hour: int = Field(default=120, ge=1, description="a full probe run sends about 12 orders")
    order_ref_prefix: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{2,15}$")] = "gatewatch"
    journal_path: str = "var/probe-journal.sqlite"
    fill_timeout: PositiveSeconds = 15.0
    cancel_timeout: PositiveSeconds = 10.0
    close_retry_attempts: int = Field(default=3, ge=1, le=5)
    close_retry_wait: PositiveSeconds = 3.0
    stream_test_duration: PositiveSeconds = 60.0


class RiskLimitsFailConfig(Strict):
    """Which risk-limit gates fail the session (true) or are only reported (false)."""

    position_limit: bool = True
    day_trades: bool = True
    risk_per_trade: bool = True


class SessionConfig(Strict):
    """What a validation session must show."""

    required_duration: PositiveSeconds = 7200.0
    """Market-open time the session must cover with data (the market_open_covered gate)."""
    quote_stale_after: PositiveSeconds = 5.0
    risk_limits_fail: RiskLimitsFailConfig = Field(default_factory=RiskLimitsFailConfig)


class PreflightConfig(Strict):
    """Thresholds the pre-validation checklist applies."""

    min_net_liquidation: float = Field(default=100_000.0, ge=0)
    max_host_cpu_ratio: float = Field(default=0.5, gt=0, le=1)
    max_host_memory_ratio: float = Field(default=0.7, gt=0, le=1)
    min_disk_free_bytes: int = Field(default=2 * 1024**3, ge=0)
    prometheus_data_path: str = "."
    max_clock_skew: PositiveSeconds = 0.5
    require_market_open: bool = True


def _host_port(value: str) -> str:
    """``host:port`` with a port in 0..65535 (0: any free port; IPv6 hosts in brackets)."""
    _, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]


class ProxyConfig(Strict):
    """``gatewatch proxy``: the TWS API relay between the bot and the Gateway (docs/runbook.md)."""

    listen: HostPort = "127.0.0.1:4012"
    upstream: HostPort | None = Field(default=None, description="None: gateway.host:gateway.port")
    metrics_listen: HostPort = "127.0.0.1:14012"
    control_port: int | None = Field(default=4081, ge=0, le=65535, description="None: no control API")
    paper_only: bool = Field(default=True, description="refuse every placeOrder unless the paper rule holds")
    unanswered_after: PositiveSeconds = 30.0
    message_rate_limit: int = Field(default=50, gt=0, description="the Gateway's messages per second limit")
    client_names: dict[int, str] = Field(default_factory=dict, description="client id -> name in metrics")
    scenario: str | None = Field(default=None, description="fault timeline file for the bot's path")


class GatewatchConfig(Strict):
    """The whole configuration file."""

    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    exporter: ExporterConfig = Field(default_factory=ExporterConfig)
    probes: ProbesConfig = Field(default_factory=ProbesConfig)
    active: ActiveConfig = Field(default_factory=ActiveConfig)
    session: SessionConfig = Field(default_factory=SessionConfig)
    preflight: PreflightConfig = Field(default_factory=PreflightConfig)
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)

    @property
    def exporter_host_port(self) -> tuple[str, int]:
        """The exporter's listen address split into host and port."""
        return split_host_port(self.exporter.listen, field="exporter.listen")


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator (file and field named)."""


def split_host_port(text: str, *, field: str) -> tuple[str, int]:
    """Parse ``host:port`` (IPv6 in brackets) or raise :class:`ConfigError` naming ``field``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{field}: expected host:port, got {text!r}")
    return (host.strip("[]") or "127.0.0.1"), int(port_text)


def _format_validation_error(path: Path | str, error: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (misspelt?)"
        lines.append(f"  {field}: {message}")
    return "\n".join(lines)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` as every command reading gatewatch's YAML takes it (default: :func:`load_config`'s)."""
    parser.add_argument("--config", default=None, metavar="FILE",
                        help=f"gatewatch configuration file (default: {DEFAULT_CONFIG_PATH} if present)")


def load_config(path: Path | str | None = None, *, environ: dict[str, str] | None = None) -> GatewatchConfig:
    """Read, validate and return the configuration.

    ``path`` None means ``config/gatewatch.yaml`` if it exists, else built-in defaults (the
    simulator on 127.0.0.1:4002). ``GATEWATCH_GATEWAY=host:port`` overrides the Gateway address,
    so the same file serves the simulator and a real paper Gateway.
    """
    env = os.environ if environ is None else environ
    raw: Any = {}
    source: Path | str = "(defaults)"
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        source = Path(path)
        try:
            raw = safe_yaml.load_file(source)
        except safe_yaml.YamlFileError as exc:
            raise ConfigError(str(exc)) from None
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    try:
        config = GatewatchConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from exc
    override = env.get(GATEWAY_ENV)
    if override:
        host, port = split_host_port(override, field=GATEWAY_ENV)
        config.gateway.host, config.gateway.port = host, port
    return config
