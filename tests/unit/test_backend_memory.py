"""What `/stats` and `/metrics` say about memory: per-device GPU series where CUDA is, none elsewhere."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from model_backends.metrics import BackendMetrics, memory_families
from model_backends.stats import GpuMemory, gpu_memory, memory_usage

H200 = GpuMemory(device=0, name="NVIDIA H200", allocated_bytes=3 * 2**30, max_allocated_bytes=4 * 2**30,
                 reserved_bytes=5 * 2**30, total_bytes=140 * 2**30)


def exposition(gpus: list[GpuMemory] | None, weights: int | None) -> str:
    class Fixed(Collector):
        def collect(self) -> Iterable[Metric]:
            return memory_families(gpus, weights)

    registry = CollectorRegistry()
    registry.register(Fixed())
    return generate_latest(registry).decode()


def test_each_gpu_is_a_labelled_sample_of_each_series() -> None:
    second = GpuMemory(1, "NVIDIA H200", 0, 2**20, 2**21, 140 * 2**30)
    text = exposition([H200, second], weights=2_500_000_000)
    for line in ('model_backend_gpu_memory_allocated_bytes{device="0",name="NVIDIA H200"} 3.221225472e+09',
                 'model_backend_gpu_memory_max_allocated_bytes{device="0",name="NVIDIA H200"} 4.294967296e+09',
                 'model_backend_gpu_memory_reserved_bytes{device="0",name="NVIDIA H200"} 5.36870912e+09',
                 'model_backend_gpu_memory_total_bytes{device="0",name="NVIDIA H200"} 1.5032385536e+11',
                 'model_backend_gpu_memory_allocated_bytes{device="1",name="NVIDIA H200"} 0.0',
                 'model_backend_gpu_memory_reserved_bytes{device="1",name="NVIDIA H200"} 2.097152e+06',
                 "model_backend_weights_bytes 2.5e+09"):
        assert line in text, line


def test_without_cuda_or_weights_the_series_are_absent() -> None:
    assert "model_backend_gpu_memory" not in exposition(None, weights=1024)
    assert "model_backend_weights_bytes 1024.0" in exposition(None, weights=1024)
    assert exposition(None, weights=None) == ""


def test_gpu_memory_in_mib_for_stats() -> None:
    assert H200.as_mib() == {"device": 0, "name": "NVIDIA H200", "allocated_mb": 3072.0, "max_allocated_mb": 4096.0,
                             "reserved_mb": 5120.0, "total_mb": 143360.0}


def test_stats_memory_says_null_where_there_is_no_gpu_or_engine() -> None:
    usage = memory_usage(None)
    assert set(usage) == {"rss_mb", "weights_mb", "gpu"}
    assert isinstance(usage["rss_mb"], float) and usage["rss_mb"] > 10 and usage["weights_mb"] is None
    gpus = gpu_memory()
    assert usage["gpu"] == (None if gpus is None else [g.as_mib() for g in gpus])


def test_a_backend_registry_exports_no_gpu_series_before_an_engine_or_cuda() -> None:
    metrics = BackendMetrics()
    text = generate_latest(metrics.registry).decode()
    assert "model_backend_weights_bytes" not in text
    assert ("model_backend_gpu_memory_allocated_bytes" in text) == (gpu_memory() is not None)
    metrics.memory.weights_bytes = 123_456_789
    assert "model_backend_weights_bytes 1.23456789e+08" in generate_latest(metrics.registry).decode()
