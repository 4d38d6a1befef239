"""Demo: blue (Saiga's engine, llama.cpp on GGUF) and green (Vistral's engine, transformers) behind
the router's one shared endpoint.

Starts both backends and the router as local processes on free loopback ports, moves 30 % of the
sessions to green through the admin API, sends Russian legal questions from many sessions
through the router, prints what each colour served, and stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import track
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_backends.launcher import BackendProcess, RouterProcess  # noqa: E402
from model_backends.tiny.build import TinyModels  # noqa: E402
from model_backends.tiny.corpus import demo_questions  # noqa: E402

console = Console()


def ask(client: httpx.Client, url: str, session: str, question: str) -> tuple[str, str, int]:
    response = client.post(f"{url}/api/v1/chat/legal", headers={"X-Session-ID": session},
                           json={"question": question, "temperature": 0, "max_tokens": 48})
    response.raise_for_status()
    return session, response.headers["x-backend"], response.json()["usage"]["completion_tokens"]


def stream(url: str, session: str, question: str) -> str:
    colour = "?"
    with httpx.stream("POST", f"{url}/api/v1/chat/legal", headers={"X-Session-ID": session}, timeout=60,
                      json={"question": question, "stream": True, "max_tokens": 60}) as response:
        colour = response.headers["x-backend"]
        console.print(f"[bold]{colour}, streamed through the router:[/] ", end="")
        for line in response.iter_lines():
            if line.startswith('data: {"delta"'):
                console.print(json.loads(line[6:])["delta"], end="", style=colour)
    console.print()
    return colour


def wait_until_both_ready(url: str, timeout_s: float = 30.0) -> None:
    """The router probes each second; wait until it has seen both colours ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        backends = httpx.get(f"{url}/ready").json()["backends"]
        if all(b["ready"] for b in backends.values()):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the router does not see both colours ready: {backends}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path(".cache/tiny-models"))
    parser.add_argument("--sessions", type=int, default=40, help="distinct user sessions sending questions")
    parser.add_argument("--green", type=float, default=30.0, help="green's share of sessions, percent")
    parser.add_argument("--logs", type=Path, default=Path("runs/demo"))
    args = parser.parse_args()
    models = TinyModels(args.models)
    if not models.gguf_path.exists():
        console.print(f"[red]no tiny models in {models.root}[/]: run `make models` first")
        return 1
    token = secrets.token_urlsafe(16)
    blue = BackendProcess(["--engine", "llama_cpp", "--model", str(models.gguf_path), "--model-name", "saiga-tiny"],
                          args.logs / "blue.log")
    green = BackendProcess(["--engine", "transformers", "--model", str(models.hf_dir), "--model-name", "vistral-tiny"],
                           args.logs / "green.log")
    router = RouterProcess(["--blue", blue.url, "--green", green.url, "--state", str(Path(tempfile.mkdtemp()) / "demo.db")],
                           args.logs / "router.log", env={"BLUEGREEN_ADMIN_TOKEN": token})
    started = time.perf_counter()
    try:
        with console.status("starting blue (llama.cpp), green (transformers) and the router…"):
            blue.start(), green.start(), router.start()
            blue.wait_ready(), green.wait_ready(), router.wait_ready()
            wait_until_both_ready(router.url)
        console.print(f"blue {blue.url} · green {green.url} · router (the shared endpoint) [bold]{router.url}[/]")
        changed = httpx.put(f"{router.url}/admin/weights", json={"green": args.green, "reason": "demo"},
                            headers={"Authorization": f"Bearer {token}"}).json()
        console.print(f"admin API: {changed['event']['message']}")
        questions = demo_questions()
        jobs = [(f"user-{i}", questions[i % len(questions)]) for i in range(args.sessions)]
        with httpx.Client(timeout=120) as client, ThreadPoolExecutor(4) as pool:
            answers = list(track(pool.map(lambda job: ask(client, router.url, *job), jobs), total=len(jobs),
                                 description="asking through the router", console=console))
        stream(router.url, "user-0", questions[0])
        status = httpx.get(f"{router.url}/admin/status", headers={"Authorization": f"Bearer {token}"}).json()
        served = Counter(colour for _, colour, _ in answers)
        table = Table(title=f"{len(answers)} questions from {args.sessions} sessions, green at {args.green:g} %")
        for column in ("colour", "engine", "sessions", "requests", "errors", "p50 s", "p95 s", "tokens"):
            table.add_column(column, justify="right")
        for colour, engine in (("blue", "llama_cpp"), ("green", "transformers")):
            window = status["backends"][colour]["window"]
            sessions = len({s for s, c, _ in answers if c == colour})
            tokens = sum(t for _, c, t in answers if c == colour)
            table.add_row(colour, engine, str(sessions), str(window["requests"]), str(window["errors"]),
                          f"{window['latency_p50_s'] or 0:.3f}", f"{window['latency_p95_s'] or 0:.3f}", str(tokens))
        console.print(table)
        console.print(f"sessions on green: {served['green']}/{len(answers)}; every answer came back through one endpoint")
    finally:
        router.stop(), blue.stop(), green.stop()
    console.print(f"[green]demo finished in {time.perf_counter() - started:.1f} s; router and both backends stopped[/]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
