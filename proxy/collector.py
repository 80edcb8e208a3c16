"""The proxy's metrics, built from :mod:`proxy.stats` at scrape time (a prometheus-client custom collector).

Ages (newest tick, session length) and "unanswered after" are computed here, at scrape time, so
they are right however long ago the last frame went through. Every bot series carries
``client_id`` and ``client_name`` (from ``proxy.client_names``; empty when not configured).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.measure import UNKNOWN_CLIENT, ConnState
from proxy.observer import Observer
from proxy.stats import ClientStats, Histogram

CLIENT = ["client_id", "client_name"]
#: The paper rule's refusal reasons (probes.active.guard.paper_verdict), exported at 0 from the
#: first connect on so that a first refusal is an increase Prometheus can see.
UNDECODED_KINDS = [(d, r) for d in ("to_gateway", "to_bot") for r in ("protobuf", "malformed", "bad_prefix",
                                                                     "oversized_frame")]
"""(direction, reason) pairs exported at 0 from the start, so a first undecoded frame is an increase."""
REFUSAL_REASONS = ("paper_false", "port_not_paper", "account_unknown", "account_not_paper")


class ProxyCollector(Collector):
    """Yields the bot's-eye metrics; ``extra`` adds families owned elsewhere (guard, faults)."""

    def __init__(
        self,
        observer: Observer,
        *,
        unanswered_after: float,
        rate_limit: int,
        extra: Callable[[], Iterable[Metric]] | None = None,
    ) -> None:
        self.observer = observer
        self.unanswered_after = unanswered_after
        self.rate_limit = rate_limit
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        obs = self.observer
        clients = [c for cid, c in list(obs.clients.items()) if cid != UNKNOWN_CLIENT or c.errors]
        states: list[ConnState] = [c.state["obs"] for c in list(obs.connections.values()) if "obs" in c.state]

        def g(name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=CLIENT + (extra or []))

        def c(name: str, doc: str, extra: list[str] | None = None) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=CLIENT + (extra or []))

        connected = g("gatewatch_bot_connected", "1 while the bot has an API session through the proxy.")
        session = g("gatewatch_bot_session_seconds", "Length of the bot's current API session (0 when disconnected).")
        version = g("gatewatch_bot_server_version", "Server version negotiated by the bot's last session.")
        connects = c("gatewatch_bot_connects", "API sessions the bot started (startApi).")
        disconnects = c("gatewatch_bot_disconnects", "Bot connections ended, by the side that closed.", ["closed_by"])
        collisions = c("gatewatch_bot_client_id_collisions", "Connections refused: client id already in use (326).")
        errors = c("gatewatch_bot_errors", "Error and notice messages the bot received.", ["code", "class"])
        sent = c("gatewatch_bot_messages_sent", "Messages the bot sent to the Gateway.")
        received = c("gatewatch_bot_messages_received", "Messages the Gateway sent to the bot.")
        peak = g("gatewatch_bot_message_rate_peak", "Most messages the bot sent in one second, over the last 60 s.")
        limit = g("gatewatch_bot_message_rate_limit", "The Gateway's message-rate limit (messages per second).")
        requests = c("gatewatch_bot_requests", "Requests the bot sent, by kind.", ["kind"])
        latency = HistogramMetricFamily(
            "gatewatch_bot_request_first_answer_seconds",
            "Time from a bot's request to the Gateway's first answer, by kind.",
            labels=[*CLIENT, "kind"],
        )
        unanswered = g(
            "gatewatch_bot_requests_unanswered",
            "Requests of the bot still without any answer after proxy.unanswered_after.",
            ["kind"],
        )
        placed = c("gatewatch_bot_orders_placed", "New orders the bot placed (placeOrder with a new order id).")
        acked = c("gatewatch_bot_orders_acknowledged", "Bot orders the Gateway acknowledged (first status).")
        filled = c("gatewatch_bot_orders_filled", "Bot orders completely filled.")
        cancelled = c("gatewatch_bot_orders_cancelled", "Bot orders cancelled.")
        rejected = c("gatewatch_bot_orders_rejected", "Bot orders rejected by the Gateway.")
        rejected_by = c(
            "gatewatch_bot_orders_rejected_by_code", "Bot orders rejected by the Gateway, by error code.", ["code"]
        )
        pacing = c("gatewatch_bot_pacing_violations", "Pacing errors the bot received (100, 420, 162 pacing).")
        modified = c("gatewatch_bot_order_modifications", "placeOrder for an order id still working (a modify).")
        refused = c(
            "gatewatch_bot_orders_refused", "Orders the proxy's paper guard kept from the Gateway.", ["reason"]
        )
        working = g("gatewatch_bot_orders_working", "Bot orders still working (not filled, cancelled or rejected).")
        ack_lat = HistogramMetricFamily(
            "gatewatch_bot_order_ack_seconds", "Time from placeOrder to the first order status.", labels=CLIENT
        )
        fill_lat = HistogramMetricFamily(
            "gatewatch_bot_order_first_fill_seconds", "Time from placeOrder to the first fill.", labels=CLIENT
        )
        ticks = c("gatewatch_bot_ticks", "Market-data ticks the bot received, by symbol.", ["symbol"])
        age = g(
            "gatewatch_bot_tick_age_seconds",
            "Age of the newest tick the bot received, per symbol it is subscribed to.",
            ["symbol"],
        )
        subs = g("gatewatch_bot_subscriptions", "Live market-data subscriptions of the bot, by symbol.", ["symbol"])

        working_by: dict[str, int] = {}
        pending_by: dict[tuple[str, str], int] = {}
        horizon = now - self.unanswered_after
        for st in states:
            cid = st.stats.client_id
            working_by[cid] = working_by.get(cid, 0) + sum(1 for o in list(st.orders.values()) if o.working)
            for kind, since in list(st.pending.values()):
                if since <= horizon:
                    pending_by[(cid, kind)] = pending_by.get((cid, kind), 0) + 1

        for stats in clients:
            lab = [stats.client_id, self._name(stats)]
            connected.add_metric(lab, 1.0 if stats.live > 0 else 0.0)
            session.add_metric(lab, stats.session_seconds(now))
            version.add_metric(lab, float(stats.server_version))
            connects.add_metric(lab, stats.connects)
            for side in ("bot", "gateway", "proxy"):
                disconnects.add_metric([*lab, side], stats.disconnects.get(side, 0))
            collisions.add_metric(lab, stats.collisions)
            for (code, klass), n in list(stats.errors.items()):
                errors.add_metric([*lab, code, klass], n)
            sent.add_metric(lab, stats.sent)
            received.add_metric(lab, stats.received)
            peak.add_metric(lab, stats.rate.peak(now))
            limit.add_metric(lab, self.rate_limit)
            for kind in ("contract_details", "market_data", "historical_data", "account", "positions", "executions"):
                requests.add_metric([*lab, kind], stats.requests.get(kind, 0))
                unanswered.add_metric([*lab, kind], pending_by.get((stats.client_id, kind), 0))
                hist = stats.latency.get(kind)
                if hist is not None:
                    latency.add_metric([*lab, kind], hist.cumulative(), hist.total)
            placed.add_metric(lab, stats.placed)
            acked.add_metric(lab, stats.acknowledged)
            filled.add_metric(lab, stats.filled)
            cancelled.add_metric(lab, stats.cancelled)
            modified.add_metric(lab, stats.modified)
            rejected.add_metric(lab, sum(stats.rejected.values()))
            for code, n in list(stats.rejected.items()):
                rejected_by.add_metric([*lab, code], n)
            pacing.add_metric(lab, sum(n for (_, klass), n in list(stats.errors.items()) if klass == "pacing"))
            for reason in sorted(set(REFUSAL_REASONS) | set(stats.refused)):
                refused.add_metric([*lab, reason], stats.refused.get(reason, 0))
            working.add_metric(lab, working_by.get(stats.client_id, 0))
            _hist(ack_lat, lab, stats.ack_latency)
            _hist(fill_lat, lab, stats.fill_latency)
            for symbol, sym in list(stats.symbols.items()):
                ticks.add_metric([*lab, symbol], sym.ticks)
                subs.add_metric([*lab, symbol], max(sym.subscriptions, 0))
                if sym.subscriptions > 0 and sym.last_tick:
                    age.add_metric([*lab, symbol], now - sym.last_tick)

        yield from (connected, session, version, connects, disconnects, collisions, errors, sent, received)
        yield from (peak, limit, pacing, requests, latency, unanswered)
        yield from (placed, acked, filled, cancelled, rejected, rejected_by, modified, refused, working)
        yield from (ack_lat, fill_lat)
        yield from (ticks, age, subs)
        yield from self._proxy_families(obs)
        if self.extra is not None:
            yield from self.extra()

    def _name(self, stats: ClientStats) -> str:
        try:
            return self.observer.names.get(int(stats.client_id), "")
        except ValueError:
            return ""

    def _proxy_families(self, obs: Observer) -> Iterator[Metric]:
        frames = CounterMetricFamily("gatewatch_proxy_frames", "Frames relayed, by direction.", labels=["direction"])
        for direction in ("to_gateway", "to_bot"):
            frames.add_metric([direction], obs.totals.frames.get(direction, 0))
        undecoded = CounterMetricFamily(
            "gatewatch_proxy_frames_undecoded",
            "Frames (or opaque chunks) relayed unchanged that the proxy could not decode, by reason.",
            labels=["direction", "reason"],
        )
        seen = dict.fromkeys(UNDECODED_KINDS, 0) | dict(obs.totals.undecoded)
        for (direction, reason), n in seen.items():
            undecoded.add_metric([direction, reason], n)
        failures = CounterMetricFamily(
            "gatewatch_proxy_upstream_failures", "Bot connections closed because the Gateway was unreachable."
        )
        failures.add_metric([], obs.totals.upstream_failures)
        open_ = GaugeMetricFamily("gatewatch_proxy_connections", "Bot connections open through the proxy.")
        open_.add_metric([], len(obs.connections))
        yield from (frames, undecoded, failures, open_)


def _hist(family: HistogramMetricFamily, labels: list[str], hist: Histogram) -> None:
    family.add_metric(labels, hist.cumulative(), hist.total)
