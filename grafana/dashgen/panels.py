"""Typed panel factories on Grafana's own builders (grafana-foundation-sdk for Grafana 11.3).

Why the SDK: its builders are generated from Grafana's schema, so a misspelt option or a value of the
wrong kind is a type error (mypy checks this package) instead of a panel Grafana silently ignores on
the Pi. These factories fix gatewatch's look (legends as tables, PASS/FAIL stats, up/DOWN timelines)
so the layout module only says what goes where, and the queries module only says what is asked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cog_builder
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash
from grafana_foundation_sdk.models import prometheus as prometheus_m

from .queries import Query, gate

DATASOURCE = dash.DataSourceRef(type_val="prometheus", uid="prometheus")
"""The provisioned Prometheus data source, always by uid (a name breaks when it is renamed)."""

Steps = Sequence[tuple[float | None, str]]
"""Threshold steps as (from value, colour); the first step's value is None (from minus infinity)."""

AnyPanel = timeseries.Panel | stat.Panel | statetimeline.Panel | table.Panel


def targets(queries: Sequence[Query]) -> list[cog_builder.Builder[variants.Dataquery]]:
    """Prometheus targets with refIds A, B, C... in order."""
    built: list[cog_builder.Builder[variants.Dataquery]] = []
    for index, query in enumerate(queries):
        target = (prometheus.Dataquery().ref_id(chr(ord("A") + index)).datasource(DATASOURCE).expr(query.expr)
                  .legend_format(query.legend).editor_mode(prometheus_m.QueryEditorMode.CODE))
        built.append(target.instant() if query.instant else target.range())
    return built


def thresholds(steps: Steps) -> dash_b.ThresholdsConfig:
    return dash_b.ThresholdsConfig().mode(dash.ThresholdsMode.ABSOLUTE).steps(
        [dash.Threshold(value=value, color=color) for value, color in steps])


def value_texts(texts: dict[str, tuple[str, str]]) -> list[dash.ValueMapping]:
    """Value -> (text, colour) mappings, e.g. {'1': ('PASS', 'green')}."""
    return [dash.ValueMap(options={value: dash.ValueMappingResult(text=text, color=color, index=index)
                                   for index, (value, (text, color)) in enumerate(texts.items())})]


def timeseries_panel(title: str, queries: Sequence[Query], *, unit: str = "short", description: str = "",
                     steps: Steps = (), draw: common.GraphDrawStyle = common.GraphDrawStyle.LINE,
                     min_value: float | None = None) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).targets(targets(queries)).unit(unit)
             .draw_style(draw).line_width(1).fill_opacity(10 if draw == common.GraphDrawStyle.LINE else 80)
             .show_points(common.VisibilityMode.NEVER).span_nulls(False)
             .legend(common_b.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["lastNotNull", "max"]))
             .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    if steps:
        modes = common.GraphThresholdsStyleMode
        style = modes.LINE_AND_AREA if len(steps) > 2 else modes.LINE
        panel = panel.thresholds(thresholds(steps)).thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(style))
    if min_value is not None:
        panel = panel.min(min_value)
    return panel


def state_timeline_panel(title: str, queries: Sequence[Query], *, ok_text: str, bad_text: str,
                         description: str = "") -> statetimeline.Panel:
    """A 1 = ok (green) / 0 = bad (red) timeline; any red stretch is visible at a glance."""
    return (statetimeline.Panel().title(title).description(description).targets(targets(queries))
            .mappings(value_texts({"1": (ok_text, "green"), "0": (bad_text, "red")}))
            .color_scheme(dash_b.FieldColor().mode(dash.FieldColorModeId.THRESHOLDS))
            .thresholds(thresholds(((None, "red"), (1, "green"))))
            .fill_opacity(80).line_width(0)
            .show_value(common.VisibilityMode.NEVER).merge_values(True).row_height(0.8)
            .legend(common_b.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                    .placement(common.LegendPlacement.BOTTOM).show_legend(True)))


def stat_panel(title: str, queries: Sequence[Query], *, unit: str = "short", description: str = "",
               steps: Steps = ((None, "blue"),), mappings: list[dash.ValueMapping] | None = None,
               no_value: str = "no data",
               text_mode: common.BigValueTextMode = common.BigValueTextMode.VALUE_AND_NAME) -> stat.Panel:
    return (stat.Panel().title(title).description(description).targets(targets(queries)).unit(unit)
            .no_value(no_value).mappings(mappings or [])
            .color_scheme(dash_b.FieldColor().mode(dash.FieldColorModeId.THRESHOLDS)).thresholds(thresholds(steps))
            .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
            .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
            .text_mode(text_mode).justify_mode(common.BigValueJustifyMode.AUTO)
            .orientation(common.VizOrientation.AUTO).wide_layout(True))


def table_panel(title: str, queries: Sequence[Query], *, description: str = "",
                hidden_columns: Sequence[str] = ()) -> table.Panel:
    return (table.Panel().title(title).description(description).targets(targets(queries)).show_header(True)
            .with_transformation(dash.DataTransformerConfig(
                id_val="organize", options={"excludeByName": {name: True for name in hidden_columns}})))


def gate_panel(gate_def: dict[str, Any]) -> stat.Panel:
    """PASS/FAIL of one session gate over the selected range; no series shows the gate's no_data verdict."""
    no_data = str(gate_def.get("no_data", "fail"))
    description = (f"Gate `{gate_def['id']}`{' (critical)' if gate_def.get('critical') else ''}: every series of "
                   f"`{gate_def['expr'].strip()}` over the selected range must be {gate_def['pass_if']}. "
                   f"No series at all counts as {no_data.upper()}. Defined in prometheus/gates.yml.")
    if gate_def.get("fail_hint"):
        description += f" A failure: {' '.join(gate_def['fail_hint'].split())}."
    return stat_panel(gate_def["title"], [gate(gate_def["expr"], gate_def["pass_if"])], description=description,
                      steps=((None, "red"), (1, "green")),
                      mappings=value_texts({"1": ("PASS", "green"), "0": ("FAIL", "red")}),
                      no_value=f"{no_data.upper()} (no data)", text_mode=common.BigValueTextMode.VALUE)


class Board:
    """One dashboard being laid out: rows, then panels left to right (the SDK wraps at 24 columns).

    Panel ids are given in order of addition, so the generated JSON is stable between runs.
    """

    def __init__(self, uid: str, title: str, description: str, *, links: Sequence[tuple[str, str]] = (),
                 variables: Sequence[dash_b.QueryVariable | dash_b.CustomVariable] = ()) -> None:
        self._next_id = 1
        self._dashboard = (
            dash_b.Dashboard(title).uid(uid).description(description).tags(["gatewatch", "ib-gateway"])
            .timezone("browser").editable().tooltip(dash.DashboardCursorSync.CROSSHAIR).refresh("10s")
            .time("now-2h", "now").version(1).fiscal_year_start_month(0).live_now(False)
            .annotation(dash_b.AnnotationQuery().name("Annotations & Alerts").built_in(1).type("dashboard")
                        .datasource(dash.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                        .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)"))
            .links([dash_b.DashboardLink(link_title).type(dash.DashboardLinkType.LINK).url(f"/d/{link_uid}")
                    .icon("dashboard").keep_time(True).target_blank(False).include_vars(False)
                    .as_dropdown(False).tags([]).tooltip("") for link_title, link_uid in links])
            .variables(list(variables)))

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def row(self, title: str) -> None:
        self._dashboard.with_row(dash_b.Row(title).id(self._take_id()))

    def add(self, panel: AnyPanel, w: int, h: int) -> None:
        self._dashboard.with_panel(panel.id(self._take_id()).datasource(DATASOURCE).span(w).height(h))

    def model(self) -> dict[str, Any]:
        """The dashboard JSON model as plain data, as the SDK serialises it."""
        return dict(json.loads(json.dumps(self._dashboard.build(), cls=JSONEncoder)))
