"""Prometheus metrics of one backend (one registry per app, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Fine at the low end (sub-millisecond overheads), long at the high end (CPU generations).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)
RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class BackendMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "model_backend_requests_total", "HTTP requests by route and status code", ["route", "status"], registry=r
        )
        self.request_duration = Histogram(
            "model_backend_request_duration_seconds", "Time from request to the last byte of the response",
            ["route"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.time_to_first_token = Histogram(
            "model_backend_time_to_first_token_seconds", "Time from request to the first generated text",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.prompt_tokens = Counter("model_backend_prompt_tokens_total", "Prompt tokens read", registry=r)
        self.generated_tokens = Counter("model_backend_generated_tokens_total", "Tokens generated", registry=r)
        self.tokens_per_second = Histogram(
            "model_backend_tokens_per_second", "Generation speed per request", buckets=RATE_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("model_backend_queue_depth", "Requests waiting for the model", registry=r)
        self.generating = Gauge("model_backend_generation_in_progress", "1 while the model generates", registry=r)
        self.model_loaded = Gauge("model_backend_model_loaded", "1 once the model is loaded and warmed up", registry=r)
        self.injected_faults = Counter(
            "model_backend_injected_faults_total", "Faults injected for drills", ["kind"], registry=r
        )
        self.info = Gauge("model_backend_info", "The serving engine and model", ["engine", "model"], registry=r)
