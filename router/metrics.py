"""The router's Prometheus metrics (seconds, `_total` counters, buckets fine enough for sub-ms overhead)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)


KNOWN_ROUTES = frozenset({"/api/v1/chat/legal", "/v1/chat/completions", "/v1/models"})
FAILURE_KINDS = ("connect", "status", "first_byte_timeout", "idle_timeout", "broken")
RETRY_DENIALS = ("budget", "blue_not_ready", "disabled")
REFUSALS = ("body_too_large", "rate_limited", "client_disconnected")


class RouterMetrics:
    """One registry per router instance, so several routers in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("bluegreen_requests_total", "Proxied requests by colour that answered, route and status",
                                ["colour", "route", "code"], registry=r)
        self.upstream_errors = Counter(
            "bluegreen_upstream_errors_total",
            "Failed backend attempts: connect, status (5xx), first_byte_timeout, idle_timeout, broken",
            ["colour", "kind"], registry=r)
        self.duration = Histogram("bluegreen_request_duration_seconds", "Backend attempt duration to the last byte",
                                  ["colour"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("bluegreen_time_to_first_token_seconds",
                              "Time to the first body chunk from the backend (the first token of a stream)",
                              ["colour"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("bluegreen_in_flight_requests", "Requests being served by colour", ["colour"], registry=r)
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
        self._initialise_known_series()

    def observe_attempt(self, colour: str, path: str, status: int, latency_s: float, ttft_s: float | None) -> None:
        """One backend attempt, whichever data plane made it (the router itself, or nginx by its access log)."""
        self.requests.labels(colour, path if path in KNOWN_ROUTES else "other", str(status)).inc()
        self.duration.labels(colour).observe(latency_s)
        if ttft_s is not None:
            self.ttft.labels(colour).observe(ttft_s)

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
