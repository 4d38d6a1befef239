"""Benchmark: what the HTTP service costs over calling the engine in-process, and memory growth.

For each engine on the tiny model: tokens/s of fixed-length generations (ignore_eos) called
directly in this process, then the same requests through `POST /api/v1/chat/legal` on a real
backend process (measured at the client), alternating rounds so both see the same machine state.
Then 200 short requests and the backend's RSS growth across them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_backends.chat_format import ChatFormat  # noqa: E402
from model_backends.config import LlamaCppOptions, TransformersOptions  # noqa: E402
from model_backends.engines.base import Engine, SamplingParams  # noqa: E402
from model_backends.engines.hf_transformers import HFTransformersEngine  # noqa: E402
from model_backends.engines.llama_cpp import LlamaCppEngine  # noqa: E402
from model_backends.launcher import BackendProcess  # noqa: E402
from model_backends.prompts import legal_messages  # noqa: E402
from model_backends.tiny.build import build_tiny_models  # noqa: E402

console = Console(width=max(120, Console().width))
QUESTION = "Что такое договор аренды?"


def direct_tokens_per_s(engine: Engine, tokens: int) -> float:
    params = SamplingParams(max_tokens=tokens, temperature=0.8, top_p=0.9, ignore_eos=True)
    started = time.perf_counter()
    produced = sum(p.tokens for p in engine.stream(legal_messages(QUESTION), params, threading.Event()))
    return produced / (time.perf_counter() - started)


def api_tokens_per_s(client: httpx.Client, tokens: int) -> float:
    started = time.perf_counter()
    body = client.post("/api/v1/chat/legal", json={"question": QUESTION, "max_tokens": tokens, "temperature": 0.8,
                                                   "top_p": 0.9, "ignore_eos": True}).json()
    return body["usage"]["completion_tokens"] / (time.perf_counter() - started)


def rss_mb(client: httpx.Client) -> float:
    return client.get("/stats").json()["memory"]["rss_mb"]


def bench(name: str, engine: Engine, args: list[str], rounds: int, tokens: int, leak_requests: int, logs: Path) -> dict:
    engine.load()
    with BackendProcess(args, logs / f"bench-{name}.log") as backend, httpx.Client(base_url=backend.url, timeout=120) as client:
        direct_tokens_per_s(engine, 8), api_tokens_per_s(client, 8)  # warm both
        direct, api = [], []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{name}: tokens/s, direct vs API", total=rounds)
            for _ in range(rounds):
                direct.append(direct_tokens_per_s(engine, tokens))
                api.append(api_tokens_per_s(client, tokens))
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
    d, a = statistics.median(direct), statistics.median(api)
    return {"engine": name, "direct": d, "api": a, "overhead": 1 - a / d, "rss_before": rss_before, "rss_after": rss_after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path(".cache/tiny-models"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--leak-requests", type=int, default=200)
    parser.add_argument("--logs", type=Path, default=Path("runs/bench"))
    args = parser.parse_args()
    models = build_tiny_models(args.models)
    results = [
        bench("llama_cpp", LlamaCppEngine(str(models.gguf_path), LlamaCppOptions(), ChatFormat.auto, "direct"),
              ["--engine", "llama_cpp", "--model", str(models.gguf_path)], args.rounds, args.tokens, args.leak_requests, args.logs),
        bench("transformers", HFTransformersEngine(str(models.hf_dir), TransformersOptions(), ChatFormat.auto, "direct"),
              ["--engine", "transformers", "--model", str(models.hf_dir)], args.rounds, args.tokens, args.leak_requests, args.logs),
    ]
    table = Table(title=f"Service overhead ({args.tokens} tokens per request, median of {args.rounds}) "
                        f"and RSS over {args.leak_requests} requests")
    for column in ("engine", "direct tok/s", "API tok/s", "API/direct", "overhead", "RSS before, MB", "RSS after, MB", "growth, MB"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r["engine"], f"{r['direct']:.0f}", f"{r['api']:.0f}", f"{r['api'] / r['direct']:.3f}",
                      f"{r['overhead'] * 100:.1f} %", f"{r['rss_before']:.1f}", f"{r['rss_after']:.1f}",
                      f"{r['rss_after'] - r['rss_before']:+.1f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
