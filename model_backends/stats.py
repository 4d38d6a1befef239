"""The running totals `/stats` reports (the figures operators compared Saiga and Vistral by)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from model_backends.engines.base import Engine

MIB = 2**20


@dataclass
class RequestStats:
    total_requests: int = 0
    successful_requests: int = 0
    failed_requests: int = 0
    total_response_time_s: float = 0.0

    def record(self, ok: bool, seconds: float) -> None:
        self.total_requests += 1
        if ok:
            self.successful_requests += 1
        else:
            self.failed_requests += 1
        self.total_response_time_s += seconds

    @property
    def average_response_time_s(self) -> float:
        return self.total_response_time_s / self.total_requests if self.total_requests else 0.0


@dataclass(frozen=True)
class GpuMemory:
    """One CUDA device as torch's caching allocator sees it (this process's share only)."""

    device: int
    name: str
    allocated_bytes: int  # held by live tensors now
    max_allocated_bytes: int  # the peak since the process started: loading and the longest generation
    reserved_bytes: int  # held by the allocator (what nvidia-smi shows for this process, less the context)
    total_bytes: int  # the device's memory

    def as_mib(self) -> dict[str, object]:
        return {"device": self.device, "name": self.name, "allocated_mb": round(self.allocated_bytes / MIB, 1),
                "max_allocated_mb": round(self.max_allocated_bytes / MIB, 1),
                "reserved_mb": round(self.reserved_bytes / MIB, 1), "total_mb": round(self.total_bytes / MIB, 1)}


def gpu_memory() -> list[GpuMemory] | None:
    """Each CUDA device's memory, or None without CUDA, or where no engine imported torch (llama.cpp)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    cuda = torch.cuda
    return [GpuMemory(i, cuda.get_device_name(i), cuda.memory_allocated(i), cuda.max_memory_allocated(i),
                      cuda.memory_reserved(i), cuda.get_device_properties(i).total_memory)
            for i in range(cuda.device_count())]


def memory_usage(engine: Engine | None = None) -> dict[str, object]:
    """Resident memory of this process, the serving engine's weights, and per-device GPU memory
    (`gpu` is null on a machine without CUDA)."""
    weights = engine.weights_bytes() if engine is not None else None
    gpus = gpu_memory()
    return {
        "rss_mb": round(psutil.Process(os.getpid()).memory_info().rss / MIB, 1),
        "weights_mb": None if weights is None else round(weights / MIB, 1),
        "gpu": None if gpus is None else [gpu.as_mib() for gpu in gpus],
    }
