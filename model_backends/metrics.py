"""Prometheus metrics of one backend (one registry per app, so tests can run several)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from model_backends.stats import GpuMemory, gpu_memory

# Fine at the low end (sub-millisecond overheads), long at the high end (CPU generations).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)
RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def memory_families(gpus: list[GpuMemory] | None, weights_bytes: int | None) -> list[GaugeMetricFamily]:
    """The memory series: one sample per CUDA device, none without CUDA; the weights once known."""
    families = []
    if weights_bytes is not None:
        weights = GaugeMetricFamily("model_backend_weights_bytes", "Memory the loaded weights take (GPU when there)")
        weights.add_metric([], weights_bytes)
        families.append(weights)
    if gpus is not None:
        for field, help_text in (("allocated", "GPU memory held by live tensors"),
                                 ("max_allocated", "Peak GPU memory held by tensors since the start"),
                                 ("reserved", "GPU memory held by torch's caching allocator"),
                                 ("total", "The GPU's memory")):
            family = GaugeMetricFamily(f"model_backend_gpu_memory_{field}_bytes", help_text, labels=["device", "name"])
            for gpu in gpus:
                family.add_metric([str(gpu.device), gpu.name], getattr(gpu, f"{field}_bytes"))
            families.append(family)
    return families


class MemoryCollector(Collector):
    """Reads GPU memory at each scrape (it changes with every generation); absent on a CPU."""

    def __init__(self) -> None:
        self.weights_bytes: int | None = None  # set once the engine has loaded

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from memory_families(gpu_memory(), self.weights_bytes)


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
        self.memory = MemoryCollector()
        r.register(self.memory)
