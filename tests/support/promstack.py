"""Real Prometheus, Alertmanager and a local SMTP server for tests, on free loopback ports.

Why a shared helper: the rule tests, the end-to-end alert test, the dashboard and evidence tests
all need the same real binaries started the same careful way (fresh data folders, loopback only,
Alertmanager clustering off, readiness waited for). Import it with ``from support import promstack``
(pyproject's pytest ``pythonpath`` puts tests/ on the path).

The *test overlay* is generated from the production files (prometheus/prometheus.yml,
prometheus/rules/*.yml, alertmanager/alertmanager.yml.tmpl via alertmanager/render.sh) with
1-second intervals and shortened ``for:`` / ``group_wait``, so the tests exercise exactly the shipped
expressions, routes, inhibitions and e-mail templates, only faster.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gatewatch.localstack.net import free_port

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
ALERTMANAGER_DIR = ROOT / "alertmanager"
ALERTMANAGER_RENDER = ALERTMANAGER_DIR / "render.sh"

EXPORTER_TARGET = "exporter:14002"
ALERTMANAGER_TARGET = "alertmanager:9093"
PROMETHEUS_SELF_TARGET = "localhost:9090"

PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"


class StackError(RuntimeError):
    """A binary did not start or a condition was not reached in time (message says which)."""


def binaries_missing() -> list[str]:
    """Names of the needed binaries that are not on PATH (for pytest skip reasons)."""
    names = ["prometheus", "promtool", "prometheus-alertmanager", "amtool"]
    return [n for n in names if shutil.which(n) is None]


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; StackError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError, KeyError) as exc:
            last_error = exc
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}" +
                     (f" (last error: {last_error})" if last_error else ""))


def _http_json(url: str, data: bytes | None = None, method: str | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# --------------------------------------------------------------------------- overlay generation

def overlay_rules(dst: Path, *, interval: str = "1s", max_for: str = "0s") -> list[Path]:
    """Copy prometheus/rules/*.yml into ``dst`` with every group's interval and every ``for`` shortened.

    ``for`` values longer than ``max_for`` are replaced by it; shorter ones stay. Expressions and
    annotations are untouched: the overlay tests the shipped rules, only faster.
    """
    dst.mkdir(parents=True, exist_ok=True)
    limit = _seconds(max_for)
    written = []
    for source in sorted(RULES_DIR.glob("*.yml")):
        doc = yaml.safe_load(source.read_text())
        for group in doc.get("groups", []):
            group["interval"] = interval
            for rule in group.get("rules", []):
                if "for" in rule and _seconds(rule["for"]) > limit:
                    rule["for"] = max_for
        target = dst / source.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(target)
    return written


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * units[suffix]
    raise ValueError(f"unsupported duration {text!r}")


def overlay_prometheus_config(dst: Path, *, exporter_target: str, alertmanager_target: str | None,
                              prometheus_target: str | None = None, interval: str = "1s",
                              max_for: str = "0s") -> Path:
    """Write ``dst/prometheus.yml``: the production config with 1 s intervals and loopback targets.

    Targets are substituted by their compose names (exporter:14002, alertmanager:9093,
    localhost:9090); a job whose target has no substitute is dropped.
    """
    dst.mkdir(parents=True, exist_ok=True)
    rules = overlay_rules(dst / "rules", interval=interval, max_for=max_for)
    doc = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    doc["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    doc["rule_files"] = [str(p) for p in rules]
    mapping = {EXPORTER_TARGET: exporter_target, ALERTMANAGER_TARGET: alertmanager_target,
               PROMETHEUS_SELF_TARGET: prometheus_target}
    if alertmanager_target is None:
        doc.pop("alerting", None)
    else:
        for am in doc["alerting"]["alertmanagers"]:
            for sc in am["static_configs"]:
                sc["targets"] = [mapping.get(t) or t for t in sc["targets"]]
    jobs = []
    for job in doc["scrape_configs"]:
        targets = [mapping.get(t) for sc in job["static_configs"] for t in sc["targets"]]
        if all(targets):
            job["static_configs"] = [{"targets": targets}]
            job["scrape_interval"] = interval
            job["scrape_timeout"] = interval
            jobs.append(job)
    doc["scrape_configs"] = jobs
    path = dst / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def render_alertmanager_config(dst: Path, *, smtp_port: int, smtp_host: str = "127.0.0.1",
                               sender: str = "gatewatch@example.org", recipient: str = "operator@example.org",
                               fast: bool = True, extra_env: dict[str, str] | None = None) -> Path:
    """Render alertmanager.yml with alertmanager/render.sh (the production step) for a local SMTP sink.

    ``fast`` shortens grouping for tests: group_wait 0s, group_interval 1s, repeat_interval 1h (one
    firing e-mail per alert, a resolved notice about a second after recovery).
    """
    dst.mkdir(parents=True, exist_ok=True)
    path = dst / "alertmanager.yml"
    env = {
        **os.environ,
        "GATEWATCH_SMTP_SMARTHOST": f"{smtp_host}:{smtp_port}",
        "GATEWATCH_ALERT_EMAIL_FROM": sender,
        "GATEWATCH_ALERT_EMAIL_TO": recipient,
        "GATEWATCH_SMTP_REQUIRE_TLS": "false",
        "GATEWATCH_SMTP_PASSWORD_FILE": str(dst / "smtp_password"),
        **(extra_env or {}),
    }
    subprocess.run(["sh", str(ALERTMANAGER_RENDER), str(path)], env=env, check=True,
                   capture_output=True, text=True)
    if fast:
        doc = yaml.safe_load(path.read_text())
        routes = [doc["route"]]
        while routes:
            route = routes.pop()
            route.update(group_wait="0s", group_interval="1s", repeat_interval="1h")
            routes.extend(route.get("routes", []))
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# --------------------------------------------------------------------------- processes

@dataclass
class _Binary:
    """A started binary with its port, data folder and log file."""

    name: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise StackError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            return _http_ok(f"{self.url}/-/ready")
        wait_until(ready, timeout, f"{self.name} /-/ready on {self.address}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Prometheus(_Binary):
    """A running Prometheus with query helpers."""

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector as returned by the HTTP API."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = _http_json(url)
        if body.get("status") != "success":
            raise StackError(f"query {expr!r} failed: {body}")
        return list(body["data"]["result"])

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, None when it returns nothing."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts as Prometheus sees them."""
        return list(_http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"])

    def active_alertmanagers(self) -> list[str]:
        return [a["url"] for a in _http_json(f"{self.url}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]]

    def wait_for_target_up(self, job: str, timeout: float = 15.0) -> None:
        wait_until(lambda: self.value(f'up{{job="{job}"}}') == 1.0, timeout, f"target up{{job={job!r}}} == 1")

    def wait_for_alertmanager(self, timeout: float = 15.0) -> None:
        wait_until(self.active_alertmanagers, timeout, "an active Alertmanager in Prometheus")


@dataclass
class Alertmanager(_Binary):
    """A running Alertmanager with API helpers."""

    def alerts(self, active: bool = True, inhibited: bool = True, silenced: bool = True) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"active": str(active).lower(), "inhibited": str(inhibited).lower(),
                                         "silenced": str(silenced).lower()})
        return list(_http_json(f"{self.url}/api/v2/alerts?{params}"))

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus would (labels, annotations, startsAt/endsAt optional)."""
        _http_json(f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST")


def _start(kind: type[_Binary], name: str, argv_for: Callable[[int, Path], list[str]], work_dir: Path,
           timeout: float, fixed_port: int | None = None, attempts: int = 3) -> _Binary:
    """Start a binary on a free port; retry with another port if someone took it meanwhile."""
    last: StackError | None = None
    for attempt in range(1 if fixed_port else attempts):
        port = fixed_port or free_port()
        data_dir = work_dir / f"{name}-data-{attempt}"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = work_dir / f"{name}-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv_for(port, data_dir), stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        binary = kind(name=name, port=port, data_dir=data_dir, process=process, log_path=log_path)
        try:
            binary.wait_ready(timeout)
            return binary
        except StackError as exc:
            binary.stop()
            last = exc
            if "address already in use" not in binary.log_tail().lower():
                break
    raise last or StackError(f"{name} did not start")


@contextmanager
def running_prometheus(config: Path, work_dir: Path, *, port: int | None = None,
                       timeout: float = 20.0) -> Iterator[Prometheus]:
    """Prometheus with ``config`` on 127.0.0.1 (free port unless given), fresh TSDB; stopped on exit."""

    def argv(chosen: int, data: Path) -> list[str]:
        return [PROMETHEUS_BIN, f"--config.file={config}", f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{chosen}", "--log.level=warn"]

    binary = _start(Prometheus, "prometheus", argv, work_dir, timeout, fixed_port=port)
    assert isinstance(binary, Prometheus)
    try:
        yield binary
    finally:
        binary.stop()


@contextmanager
def running_alertmanager(config: Path, work_dir: Path, *, timeout: float = 20.0) -> Iterator[Alertmanager]:
    """Alertmanager with ``config`` on a free loopback port, clustering off (no 10 s settle wait)."""

    def argv(port: int, data: Path) -> list[str]:
        return [ALERTMANAGER_BIN, f"--config.file={config}", f"--storage.path={data}",
                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"]

    binary = _start(Alertmanager, "alertmanager", argv, work_dir, timeout)
    assert isinstance(binary, Alertmanager)
    try:
        yield binary
    finally:
        binary.stop()


# --------------------------------------------------------------------------- SMTP sink

@dataclass
class ReceivedMail:
    """One delivered message with the time it arrived (time.time())."""

    received_at: float
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        """The plain-text part (Alertmanager sends text and HTML alternatives)."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


@dataclass
class SmtpSink:
    """Collects every message a local SMTP server receives."""

    host: str
    port: int
    messages: list[ReceivedMail] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        mail = ReceivedMail(time.time(), str(envelope.mail_from), list(envelope.rcpt_tos), parsed)
        with self._cond:
            self.messages.append(mail)
            self._cond.notify_all()
        return "250 OK"

    def wait_for(self, match: Callable[[ReceivedMail], bool], timeout: float, what: str,
                 since: float = 0.0) -> ReceivedMail:
        """The first message received at or after ``since`` that ``match`` accepts."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for mail in self.messages:
                    if mail.received_at >= since and match(mail):
                        return mail
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    subjects = [m.subject for m in self.messages]
                    raise StackError(f"no e-mail {what} within {timeout:.0f} s; received: {subjects}")
                self._cond.wait(remaining)

    def matching(self, match: Callable[[ReceivedMail], bool], since: float = 0.0) -> list[ReceivedMail]:
        with self._cond:
            return [m for m in self.messages if m.received_at >= since and match(m)]


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    """A local aiosmtpd server on 127.0.0.1 (no TLS, no auth) collecting messages."""
    sink = SmtpSink(host="127.0.0.1", port=free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
