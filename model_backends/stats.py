"""The running totals `/stats` reports (the figures operators compared Saiga and Vistral by)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import psutil


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


def memory_usage() -> dict[str, float]:
    """Resident memory of this process, and GPU memory where torch has CUDA loaded."""
    usage = {"rss_mb": round(psutil.Process(os.getpid()).memory_info().rss / 2**20, 1)}
    torch = sys.modules.get("torch")  # only report GPU memory when the engine already imported torch
    if torch is not None and torch.cuda.is_available():
        usage["cuda_allocated_mb"] = round(torch.cuda.memory_allocated() / 2**20, 1)
    return usage
