"""The operator's documents cannot drift from the code and the rule files.

docs/metrics_reference.md holds three generated tables (metrics from exporter/metrics.py,
recording rules and alerts from prometheus/rules/*.yml) between marker comments; this test
renders them again and compares. To refresh after a change:
``GATEWATCH_REGEN_DOCS=1 pytest tests/evidence/test_operator_docs.py``.
Every alert must also have a section in docs/runbook.md whose anchor is its name in lower case.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from exporter.metrics import CONTRACT

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RULES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
SUFFIX = {"counter": "_total", "histogram": "_bucket, _sum, _count"}


def metrics_table() -> str:
    """Every family of the contract, in the order exporter/metrics.py defines them."""
    rows = ["| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    for spec in CONTRACT:
        name = spec.name + ("_total" if spec.type == "counter" else "")
        shown = f"`{name}`" + (" (`_bucket`, `_sum`, `_count`)" if spec.type == "histogram" else "")
        rows.append(f"| {shown} | {spec.type} | {', '.join(spec.labels) or '-'} | {spec.help} |")
    return "\n".join(rows)


def rules() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += group["rules"]
    return found


def recording_table() -> str:
    rows = ["| Recording rule | Expression |", "|---|---|"]
    for rule in rules():
        if "record" in rule:
            expr = " ".join(str(rule["expr"]).split()).replace("|", "\\|")
            rows.append(f"| `{rule['record']}` | `{expr}` |")
    return "\n".join(rows)


def alert_table() -> str:
    rows = ["| Alert | Severity | For | Summary | Runbook |", "|---|---|---|---|---|"]
    for rule in rules():
        if "alert" in rule:
            name = rule["alert"]
            rows.append(
                f"| {name} | {rule['labels']['severity']} | {rule.get('for', '0s')} | "
                f"{rule['annotations']['summary']} | [runbook](runbook.md#{name.lower()}) |"
            )
    return "\n".join(rows)


def proxy_metrics_table() -> str:
    """`gatewatch proxy`'s families, from the collector itself (client labels left out: every bot series has them)."""
    from gatewatch.config import GatewatchConfig
    from proxy.app import ProxyApp
    from proxy.collector import CLIENT

    rows = ["| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    for family in ProxyApp(GatewatchConfig()).registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = [n for n in getattr(family, "_labelnames", ()) if n not in CLIENT]
        shown = f"`{name}`" + (" (`_bucket`, `_sum`, `_count`)" if family.type == "histogram" else "")
        rows.append(f"| {shown} | {family.type} | {', '.join(labels) or '-'} | {family.documentation} |")
    return "\n".join(rows)


GENERATED = {"metrics": metrics_table, "proxy-metrics": proxy_metrics_table, "recording-rules": recording_table,
             "alerts": alert_table}


def gates_table() -> str:
    """docs/gates.md: every gate, what it measures, its threshold and what no data means."""
    from gatewatch.evidence.gates import load_gates

    rows = ["| Gate | What it measures | Passes when | No data means | Evidence checked |", "|---|---|---|---|---|"]
    for gate in load_gates():
        evidence = f"`{gate.evidence}`" + (" (market-open time)" if gate.during == "market_open" else "")
        rows.append(
            f"| `{gate.id}`: {gate.title} | {gate.measures} | {gate.threshold_text} | "
            f"{gate.no_data.upper()}: {gate.no_data_means} | {evidence if gate.evidence else '-'} |"
        )
    return "\n".join(rows)


def test_gates_document_matches_gates_yml() -> None:
    path = DOCS / "gates.md"
    text = path.read_text()
    if os.environ.get("GATEWATCH_REGEN_DOCS"):
        text = re.sub(r"(<!-- generated:gates:begin -->\n).*?(<!-- generated:gates:end -->)",
                      lambda m: m.group(1) + gates_table() + "\n" + m.group(2), text, flags=re.S)
        path.write_text(text)
    assert section(text, "gates") == gates_table(), (
        f"docs/gates.md is stale: GATEWATCH_REGEN_DOCS=1 pytest {__file__}")


def section(text: str, name: str) -> str:
    match = re.search(rf"<!-- generated:{name}:begin -->\n(.*?)\n<!-- generated:{name}:end -->", text, re.S)
    assert match, f"the document lacks the generated:{name} markers"
    return match.group(1)


def test_metrics_reference_matches_code_and_rules() -> None:
    path = DOCS / "metrics_reference.md"
    text = path.read_text()
    if os.environ.get("GATEWATCH_REGEN_DOCS"):
        for name, render in GENERATED.items():
            text = text.replace(section(text, name), render())
        path.write_text(text)
    for name, render in GENERATED.items():
        assert section(text, name) == render(), (
            f"docs/metrics_reference.md section {name} is stale: GATEWATCH_REGEN_DOCS=1 pytest {__file__}"
        )


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (DOCS / "runbook.md").read_text()
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', runbook))
    headings = {m.lower() for m in re.findall(r"^### (\w+)", runbook, re.M)}
    for name in {rule["alert"] for rule in rules() if "alert" in rule}:
        assert name.lower() in anchors and name.lower() in headings, f"docs/runbook.md has no section #{name.lower()}"
    for rule in rules():
        if "alert" in rule:
            assert rule["annotations"]["runbook_url"].endswith(f"runbook.md#{rule['alert'].lower()}")


def test_port_table_is_right_everywhere() -> None:
    """IB Gateway 4001 live / 4002 paper; TWS 7496 live / 7497 paper: never '7497 ... live'."""
    truth = {"4001": "live", "4002": "paper", "7496": "live", "7497": "paper"}
    pattern = re.compile(r"\b(4001|4002|7496|7497)\b\**\s*(?:is\s+|=\s*|\(|:\s*)?\s*(live|paper)\b", re.I)
    for path in DOCS.glob("*.md"):
        for port, word in pattern.findall(path.read_text()):
            assert truth[port] == word.lower(), f"{path.name}: port {port} called {word}"
    runbook = (DOCS / "runbook.md").read_text()
    assert "4002" in runbook and "7497" in runbook and "4001" in runbook and "7496" in runbook
