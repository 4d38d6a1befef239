"""The router's Prometheus metrics (seconds, `_total` counters, buckets fine enough for sub-ms overhead)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from router.analytics.names import CATEGORIES

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)


KNOWN_ROUTES = frozenset({"/api/v1/chat/legal", "/v1/chat/completions", "/v1/models"})
FAILURE_KINDS = ("connect", "status", "first_byte_timeout", "idle_timeout", "broken")
RETRY_DENIALS = ("budget", "blue_not_ready", "blue_failing", "disabled")
REFUSALS = ("body_too_large", "rate_limited", "client_disconnected", "pin_refused")
EJECTION_KINDS = ("consecutive", "rate", "nginx")  # nginx: its passive health check, seen in its access log
ANSWER_CHECKS = ("empty", "wrong_language", "repetitive", "truncated", "refusal")
SHADOW_OUTCOMES = ("mirrored", "skipped", "over_rate", "paired", "canary_failed", "unpaired")
ANALYTICS_OUTCOMES = ("written", "dropped")


COLOURS = ("blue", "green")


class _Observed:
    """One histogram series: counts per bucket (not cumulative) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, value)] += 1  # `le`: a value on a bound counts in it
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        bounds = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
        cumulative, seen = [], 0
        for bound, count in zip(bounds, self.counts, strict=True):
            seen += count
            cumulative.append((bound, float(seen)))
        return cumulative


class AttemptSeries:
    """The series every proxied attempt moves, as plain numbers, made into Prometheus families only
    when scraped. prometheus_client's labelled children take a lock on each inc() and observe(),
    several times per request; here the proxy and the scrape share the event loop's thread."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.durations = {colour: _Observed() for colour in COLOURS}
        self.ttfts = {colour: _Observed() for colour in COLOURS}
        self.in_flight = dict.fromkeys(COLOURS, 0)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("bluegreen_requests_total",
                                       "Proxied requests by colour that answered, route and status",
                                       labels=["colour", "route", "code"])
        for (colour, route, status), count in sorted(self.requests.items()):
            requests.add_metric([colour, route, str(status)], count)
        yield requests
        for name, documentation, series in (
            ("bluegreen_request_duration_seconds", "Backend attempt duration to the last byte", self.durations),
            ("bluegreen_time_to_first_token_seconds",
             "Time to the first body chunk from the backend (the first token of a stream)", self.ttfts),
        ):
            family = HistogramMetricFamily(name, documentation, labels=["colour"])
            for colour, observed in list(series.items()):
                family.add_metric([colour], observed.buckets(), observed.total)
            yield family
        in_flight = GaugeMetricFamily("bluegreen_in_flight_requests", "Requests being served by colour",
                                      labels=["colour"])
        for colour, count in list(self.in_flight.items()):
            in_flight.add_metric([colour], count)
        yield in_flight


class RouterMetrics:
    """One registry per router instance, so several routers in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.attempts = AttemptSeries()  # requests, durations, time to first token, in flight
        r.register(self.attempts)
        self.upstream_errors = Counter(
            "bluegreen_upstream_errors_total",
            "Failed backend attempts: connect, status (5xx), first_byte_timeout, idle_timeout, broken",
            ["colour", "kind"], registry=r)
        self.retries = Counter("bluegreen_retries_total", "Green failures retried on blue, by failure kind",
                               ["kind"], registry=r)
        self.retries_denied = Counter("bluegreen_retries_denied_total",
                                      "Green failures not retried (budget spent or blue not ready)", ["reason"], registry=r)
        self.rejected = Counter("bluegreen_rejected_total", "Requests refused by the router itself",
                                ["reason"], registry=r)
        self.weight = Gauge("bluegreen_weight_percent", "Share of new sessions sent to each colour", ["colour"], registry=r)
        self.ready = Gauge("bluegreen_backend_ready", "1 when the colour's /ready probe passes", ["colour"], registry=r)
        self.rollout_phase = Gauge("bluegreen_rollout_phase", "1 for the rollout's current phase, 0 for the others",
                                   ["phase"], registry=r)
        self.stable = Gauge("bluegreen_stable_colour", "1 for the colour that is the stable one", ["colour"], registry=r)
        self.ejections = Counter("bluegreen_ejections_total",
                                 "Colours ejected from new traffic by outlier detection (consecutive failures, rate, or nginx's own)",
                                 ["colour", "reason"], registry=r)
        self.ejected = Gauge("bluegreen_backend_ejected", "1 while the colour is ejected from new traffic", ["colour"],
                             registry=r)
        self.answer_checks = Counter(
            "bluegreen_answer_checks_total", "Sampled live answers through each answer check, by colour and result",
            ["colour", "check", "result"], registry=r)
        self.shadow_requests = Counter(
            "bluegreen_shadow_requests_total",
            "Shadow phase: requests mirrored to the canary, skipped (too many in flight), over_rate (over max_per_s), "
            "paired, canary_failed, unpaired",
            ["outcome"], registry=r)
        self.streams_broken = Counter("bluegreen_streams_broken_total",
                                      "Answers cut after their first byte (cannot be retried on the other colour)",
                                      ["colour"], registry=r)
        self.requests_by_category = Counter(
            "bluegreen_requests_by_category_total",
            "Public requests by the colour that answered and the question's category (counted by the analytics writer)",
            ["colour", "category"], registry=r)
        self.analytics_records = Counter(
            "bluegreen_analytics_records_total",
            "Analytics lines written, or dropped (the writer's queue was full or the file could not be written)",
            ["outcome"], registry=r)
        self._answer_checks_by: dict[tuple[str, str, str], Counter] = {}
        self._by_category: dict[tuple[str, str], Counter] = {}
        self._initialise_known_series()

    def observe_attempt(self, colour: str, path: str, status: int, latency_s: float, ttft_s: float | None) -> None:
        """One backend attempt, whichever data plane made it (the router itself, or nginx by its access log)."""
        attempts = self.attempts
        key = (colour, path if path in KNOWN_ROUTES else "other", status)  # bounded: a client picks the path
        attempts.requests[key] = attempts.requests.get(key, 0) + 1
        durations = attempts.durations.get(colour) or attempts.durations.setdefault(colour, _Observed())
        durations.observe(latency_s)
        if ttft_s is not None:
            ttfts = attempts.ttfts.get(colour) or attempts.ttfts.setdefault(colour, _Observed())
            ttfts.observe(ttft_s)

    def attempt_started(self, colour: str) -> None:
        self.attempts.in_flight[colour] = self.attempts.in_flight.get(colour, 0) + 1

    def attempt_finished(self, colour: str) -> None:
        self.attempts.in_flight[colour] -= 1

    def answer_checked(self, colour: str, check: str, failed: bool) -> None:
        """One sampled live answer through one check (children looked up once: `labels()` is not free)."""
        key = (colour, check, "fail" if failed else "pass")
        child = self._answer_checks_by.get(key)
        if child is None:
            child = self._answer_checks_by[key] = self.answer_checks.labels(*key)
        child.inc()

    def categorised(self, colour: str, category: str) -> None:
        """One classified request (children looked up once, as answer_checked)."""
        key = (colour, category)
        child = self._by_category.get(key)
        if child is None:
            child = self._by_category[key] = self.requests_by_category.labels(*key)
        child.inc()

    def _initialise_known_series(self) -> None:
        """Export every known failure series at 0 from the start, so rate() and dashboards see them
        before the first failure instead of a missing series."""
        for kind in FAILURE_KINDS:
            self.retries.labels(kind)
            for colour in ("blue", "green"):
                self.upstream_errors.labels(colour, kind)
        for reason in RETRY_DENIALS:
            self.retries_denied.labels(reason)
        for reason in REFUSALS:
            self.rejected.labels(reason)
        for outcome in SHADOW_OUTCOMES:
            self.shadow_requests.labels(outcome)
        for outcome in ANALYTICS_OUTCOMES:
            self.analytics_records.labels(outcome)
        for colour in COLOURS:
            for category in CATEGORIES:
                self.requests_by_category.labels(colour, category)
        for colour in ("blue", "green"):
            for check in ANSWER_CHECKS:
                for result in ("pass", "fail"):
                    self.answer_checks.labels(colour, check, result)
        for colour in ("blue", "green"):
            self.ejected.labels(colour)
            self.streams_broken.labels(colour)
            for kind in EJECTION_KINDS:
                self.ejections.labels(colour, kind)
