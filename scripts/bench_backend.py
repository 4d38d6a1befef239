"""Benchmark: what the HTTP service costs over calling the engine in-process, and memory growth.

For each engine on the tiny model: tokens/s of fixed-length generations (ignore_eos) called
directly in this process, then the same requests through `POST /api/v1/chat/legal` on a real
backend process (measured at the client), alternating rounds so both see the same machine state.
"API/direct" divides the medians; "paired" is the median of each round's own ratio, which a
shared machine's drifting load disturbs less; "CPU" divides the CPU time per token spent by this
process on the direct calls by the backend process's on the API calls (all threads), a figure
that other programs' load hardly moves. Then 200 short requests and the backend's RSS growth.

Two torch processes share the cores here (the direct engine in this one, the backend), so OpenMP's
idle workers are told to sleep rather than spin (`OMP_WAIT_POLICY=PASSIVE`, for both unless set):
spinning, each process's idle workers steal the other's cores and the transformers figures measure
that (API/direct near 0.2) instead of the service. `--omp-spin` keeps OpenMP's default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_backends.chat_format import ChatFormat  # noqa: E402
from model_backends.config import LlamaCppOptions, TransformersOptions  # noqa: E402
from model_backends.engines.base import Engine, SamplingParams  # noqa: E402
from model_backends.engines.hf_transformers import HFTransformersEngine  # noqa: E402
from model_backends.engines.llama_cpp import LlamaCppEngine  # noqa: E402
from model_backends.prompts import legal_messages  # noqa: E402
from model_backends.tiny.build import build_tiny_models  # noqa: E402
from testkit.services import BackendProcess  # noqa: E402

console = Console(width=max(120, Console().width))
QUESTION = "Что такое договор аренды?"


@dataclass(frozen=True)
class Run:
    tokens: int
    wall_s: float
    cpu_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s


def process_cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def direct_run(engine: Engine, tokens: int) -> Run:
    params = SamplingParams(max_tokens=tokens, temperature=0.8, top_p=0.9, ignore_eos=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    prompt = engine.prepare(legal_messages(QUESTION))  # timed too: the API renders and tokenizes as well
    produced = sum(p.tokens for p in engine.stream(prompt, params, threading.Event()))
    return Run(produced, time.perf_counter() - started, time.process_time() - cpu_started)


def api_run(client: httpx.Client, backend: psutil.Process, tokens: int) -> Run:
    started, cpu_started = time.perf_counter(), process_cpu_s(backend)
    body = client.post("/api/v1/chat/legal", json={"question": QUESTION, "max_tokens": tokens, "temperature": 0.8,
                                                   "top_p": 0.9, "ignore_eos": True}).json()
    wall_s = time.perf_counter() - started
    return Run(body["usage"]["completion_tokens"], wall_s, process_cpu_s(backend) - cpu_started)


def rss_mb(client: httpx.Client) -> float:
    return float(client.get("/stats").json()["memory"]["rss_mb"])


def bench(name: str, engine: Engine, args: list[str], rounds: int, tokens: int, leak_requests: int, logs: Path) -> dict[str, Any]:
    engine.load()
    with BackendProcess(args, logs / f"bench-{name}.log") as backend, httpx.Client(base_url=backend.url, timeout=120) as client:
        assert backend.pid is not None
        process = psutil.Process(backend.pid)
        direct_run(engine, 8), api_run(client, process, 8)  # warm both
        direct: list[Run] = []
        api: list[Run] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{name}: tokens/s, direct vs API", total=rounds)
            for _ in range(rounds):
                direct.append(direct_run(engine, tokens))
                api.append(api_run(client, process, tokens))
                progress.advance(task)
            engine.close()
            for _ in range(20):
                client.post("/api/v1/chat/legal", json={"question": QUESTION, "max_tokens": 16})
            rss_before = rss_mb(client)
            task = progress.add_task(f"{name}: {leak_requests} requests for RSS", total=leak_requests)
            for i in range(leak_requests):
                client.post("/api/v1/chat/legal", json={"question": f"{QUESTION} ({i})", "max_tokens": 16,
                                                        "stream": i % 2 == 0})
                progress.advance(task)
            rss_after = rss_mb(client)
    d, a = statistics.median(r.tokens_per_s for r in direct), statistics.median(r.tokens_per_s for r in api)
    paired = statistics.median(x.tokens_per_s / y.tokens_per_s for x, y in zip(api, direct, strict=True))
    cpu = (sum(r.cpu_s for r in direct) / sum(r.tokens for r in direct)) / (
        sum(r.cpu_s for r in api) / sum(r.tokens for r in api))
    return {"engine": name, "direct": d, "api": a, "paired": paired, "cpu": cpu, "overhead": 1 - a / d,
            "rss_before": rss_before, "rss_after": rss_after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path(".cache/tiny-models"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--leak-requests", type=int, default=200)
    parser.add_argument("--logs", type=Path, default=Path("runs/bench"))
    parser.add_argument("--engines", default="llama_cpp,transformers", help="comma-separated engines to measure")
    parser.add_argument("--omp-spin", action="store_true", help="leave OMP_WAIT_POLICY unset (see above)")
    args = parser.parse_args()
    if not args.omp_spin:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts, here and in the backend
    models = build_tiny_models(args.models)
    engines: dict[str, Callable[[], Engine]] = {
        "llama_cpp": lambda: LlamaCppEngine(str(models.gguf_path), LlamaCppOptions(), ChatFormat.auto, "direct"),
        "transformers": lambda: HFTransformersEngine(str(models.hf_dir), TransformersOptions(), ChatFormat.auto, "direct"),
    }
    paths = {"llama_cpp": models.gguf_path, "transformers": models.hf_dir}
    results = [
        bench(name, engines[name](), ["--engine", name, "--model", str(paths[name])],
              args.rounds, args.tokens, args.leak_requests, args.logs)
        for name in args.engines.split(",")
    ]
    table = Table(title=f"Service overhead ({args.tokens} tokens per request, median of {args.rounds}) "
                        f"and RSS over {args.leak_requests} requests")
    for column in ("engine", "direct tok/s", "API tok/s", "API/direct", "paired", "CPU", "overhead",
                   "RSS before, MB", "RSS after, MB", "growth, MB"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r["engine"], f"{r['direct']:.0f}", f"{r['api']:.0f}", f"{r['api'] / r['direct']:.3f}",
                      f"{r['paired']:.3f}", f"{r['cpu']:.3f}", f"{r['overhead'] * 100:.1f} %", f"{r['rss_before']:.1f}", f"{r['rss_after']:.1f}",
                      f"{r['rss_after'] - r['rss_before']:+.1f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
