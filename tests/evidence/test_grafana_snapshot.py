"""Grafana snapshots through grafana-client, against a local HTTP stand-in for Grafana's API.

No Grafana server is installable here, so pytest-httpserver plays Grafana: it accepts only the
request Grafana's HTTP API expects for POST /api/snapshots (JSON body with ``dashboard`` holding
the window as ``time`` and every query panel carrying ``snapshotData`` frames, an ``expires`` and a
``name``; the Authorization header), and answers like Grafana does ({"url": ..., "key": ...}).
Prometheus is a second stand-in serving a canned query_range answer in Prometheus's own format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from gatewatch.evidence.grafana_snapshot import grafana_credential, make_snapshots, snapshot_model, substitute
from gatewatch.evidence.model import Window
from gatewatch.evidence.prometheus_api import PrometheusClient

ROOT = Path(__file__).resolve().parents[2]
WINDOW = Window(1_790_000_000.0, 1_790_007_200.0)


def dashboard() -> dict[str, Any]:
    return {
        "uid": "gw-session",
        "id": 7,
        "title": "gatewatch session",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "symbol", "current": {"value": "SPY"}}]},
        "panels": [
            {"id": 1, "type": "row", "title": "row", "panels": []},
            {
                "id": 2,
                "type": "timeseries",
                "title": "Quote age",
                "targets": [
                    {
                        "refId": "A",
                        "expr": 'gatewatch_quote_age_seconds{symbol="$symbol"}',
                        "legendFormat": "{{symbol}}",
                    }
                ],
            },
            {
                "id": 3,
                "type": "stat",
                "title": "Connected",
                "targets": [
                    {"refId": "A", "expr": "min_over_time(gatewatch_gateway_connected[$__range])", "instant": True}
                ],
            },
            {"id": 4, "type": "text", "title": "notes"},
        ],
    }


def prometheus_stand_in(server: HTTPServer) -> None:
    def handle(request: Request) -> Response:
        if request.path.endswith("query_range"):
            result = [
                {
                    "metric": {"__name__": "gatewatch_quote_age_seconds", "symbol": "SPY"},
                    "values": [[WINDOW.start, "0.5"], [WINDOW.start + 16, "0.7"]],
                }
            ]
            body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        else:
            assert "[7200s]" in request.args["query"], request.args["query"]
            body = {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [WINDOW.end, "1"]}]},
            }
        return Response(json.dumps(body), content_type="application/json")

    server.expect_request("/api/v1/query_range").respond_with_handler(handle)
    server.expect_request("/api/v1/query").respond_with_handler(handle)


def test_substitute_replaces_grafana_variables() -> None:
    assert (
        substitute('x[$__range] y{s="${symbol}"} $unknown', {"__range": "60s", "symbol": "SPY"})
        == 'x[60s] y{s="SPY"} $unknown'
    )


def test_snapshot_model_embeds_frames_per_query_panel(httpserver: HTTPServer) -> None:
    prometheus_stand_in(httpserver)
    model = snapshot_model(dashboard(), PrometheusClient(httpserver.url_for("/")), WINDOW)
    assert "uid" not in model and "id" not in model
    assert model["time"] == {"from": "2026-09-21T14:13:20Z", "to": "2026-09-21T16:13:20Z"}
    quote = model["panels"][1]["snapshotData"]
    assert len(quote) == 1
    frame = quote[0]
    assert frame["schema"]["refId"] == "A" and frame["schema"]["name"] == "SPY"
    assert [f["type"] for f in frame["schema"]["fields"]] == ["time", "number"]
    assert frame["schema"]["fields"][1]["labels"] == {"symbol": "SPY"}
    assert frame["data"]["values"] == [[int(WINDOW.start * 1000), int((WINDOW.start + 16) * 1000)], [0.5, 0.7]]
    stat = model["panels"][2]["snapshotData"][0]
    assert stat["data"]["values"] == [[int(WINDOW.end * 1000)], [1.0]]
    assert "snapshotData" not in model["panels"][3]


def test_snapshot_request_matches_grafana_api(httpserver: HTTPServer, tmp_path: Path) -> None:
    prometheus_stand_in(httpserver)
    folder = tmp_path / "dashboards"
    folder.mkdir()
    (folder / "session.json").write_text(json.dumps(dashboard()))
    seen: list[dict[str, Any]] = []

    def grafana(request: Request) -> Response:
        assert request.headers.get("Authorization") == "Bearer glsa_test_token"
        body = request.get_json()
        seen.append(body)
        assert set(body) >= {"dashboard", "name", "expires"}
        assert body["dashboard"]["time"]["from"] == "2026-09-21T14:13:20Z"
        query_panels = [p for p in body["dashboard"]["panels"] if p.get("targets")]
        assert query_panels and all(p["snapshotData"] for p in query_panels)
        return Response(
            json.dumps(
                {"key": "abc", "deleteKey": "def", "id": 1, "url": "http://grafana.example/dashboard/snapshot/abc"}
            ),
            content_type="application/json",
        )

    httpserver.expect_request("/api/snapshots", method="POST").respond_with_handler(grafana)
    snapshots = make_snapshots(
        httpserver.url_for("/"),
        PrometheusClient(httpserver.url_for("/")),
        WINDOW,
        folder,
        environ={"GRAFANA_TOKEN": "glsa_test_token"},
    )
    assert [(s.dashboard, s.url, s.error) for s in snapshots] == [
        ("session", "http://grafana.example/dashboard/snapshot/abc", "")
    ]
    assert seen[0]["name"].startswith("gatewatch session 2026-09-21T14:13:20Z")


def test_unreachable_grafana_is_recorded_not_raised(tmp_path: Path, httpserver: HTTPServer) -> None:
    prometheus_stand_in(httpserver)
    folder = tmp_path / "dashboards"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.json").write_text(json.dumps(dashboard()))
    snapshots = make_snapshots(
        "http://127.0.0.1:9", PrometheusClient(httpserver.url_for("/")), WINDOW, folder, environ={}, timeout=2
    )
    assert [s.dashboard for s in snapshots] == ["a", "b"]
    assert all(s.error and not s.url for s in snapshots)


def test_credentials_from_environment() -> None:
    assert grafana_credential({"GRAFANA_TOKEN": "t"}) == "t"
    assert grafana_credential({"GRAFANA_USER": "u", "GRAFANA_PASSWORD": "p"}) == ("u", "p")
    assert grafana_credential({}) is None


def test_project_dashboards_all_get_data(httpserver: HTTPServer) -> None:
    """Every query panel of the project's own dashboards gets snapshotData from its queries."""
    prometheus_stand_in(httpserver)
    client = PrometheusClient(httpserver.url_for("/"))
    files = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
    for path in files:
        model = snapshot_model(json.loads(path.read_text()), client, WINDOW)
        from gatewatch.evidence.grafana_snapshot import iter_panels

        for panel in iter_panels(model.get("panels", [])):
            if any(t.get("expr") for t in panel.get("targets", [])):
                assert "snapshotData" in panel, (path.name, panel.get("title"))
