"""Backend start and stop through each runtime: a process (local) against a container (docker).

For each run, one colour is started through the runtime the router uses, then timed: the launch
call, `/ready` passing, the first answer, and the stop. The docker runtime also shows its takeover:
a second runtime (a restarted router) adopting the running container instead of starting a new one.
The model is the tiny GGUF, so the figures are the runtimes' own overhead, not a model's load time.
Ratios are docker over local, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bluegreen_common.processes import free_port  # noqa: E402
from model_backends.tiny.build import build_tiny_models  # noqa: E402
from router.runtimes.docker import DockerRuntime  # noqa: E402
from router.runtimes.local import LocalRuntime  # noqa: E402
from router.runtimes.managed import ManagedRuntime  # noqa: E402
from router.runtimes.options import RuntimeOptions  # noqa: E402
from router.state import StateStore  # noqa: E402
from router.weights import Colour  # noqa: E402
from testkit.offline_image import offline_image  # noqa: E402

console = Console(width=120)
IMAGE = "bluegreen-llm:bench"
QUESTION = {"model": "any", "messages": [{"role": "user", "content": "Что такое иск?"}], "max_tokens": 8}


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{url} not ready after {timeout_s} s")


def options(kind: str, model: Path, logs: Path) -> RuntimeOptions:
    spec = {"engine": "llama_cpp", "model": str(model), "port": free_port()}
    return RuntimeOptions.model_validate({
        "kind": kind, "blue": spec, "green": spec, "logs_dir": str(logs), "stop_grace_s": 10,
        "docker": {"image": IMAGE, "build": "never", "instance": "bench"}})


def make(kind: str, runtime_options: RuntimeOptions, store: StateStore) -> ManagedRuntime:
    if kind == "local":
        return LocalRuntime(runtime_options, store)
    runtime = DockerRuntime(runtime_options, store)
    runtime.prepare()
    return runtime


async def one_run(kind: str, model: Path, workdir: Path) -> dict[str, float]:
    store = StateStore(workdir / f"{kind}.db")
    runtime_options = options(kind, model, workdir / "logs")
    assert runtime_options.blue is not None  # options() always sets both colours
    url = f"http://127.0.0.1:{runtime_options.blue.port}"
    runtime = make(kind, runtime_options, store)
    figures: dict[str, float] = {}
    began = time.perf_counter()
    await runtime.start_colour(Colour.blue)
    figures["launch"] = time.perf_counter() - began
    await asyncio.to_thread(wait_ready, url)
    figures["ready"] = time.perf_counter() - began
    answered = time.perf_counter()
    httpx.post(f"{url}/v1/chat/completions", json=QUESTION, timeout=30).raise_for_status()
    figures["first answer"] = time.perf_counter() - answered
    if kind == "docker":  # a restarted router: a second runtime takes the running container over
        successor = make(kind, runtime_options, store)
        took = time.perf_counter()
        await successor.start_colour(Colour.blue)
        await asyncio.to_thread(wait_ready, url)
        figures["takeover"] = time.perf_counter() - took
        runtime = successor
    stopping = time.perf_counter()
    await runtime.stop_colour(Colour.blue)
    figures["stop"] = time.perf_counter() - stopping
    store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", type=Path, default=REPO / ".cache" / "tiny-models")
    args = parser.parse_args()
    logging.getLogger("bluegreen.runtime").setLevel(logging.ERROR)  # one event line per start/stop otherwise
    model = build_tiny_models(args.models).gguf_path
    results: dict[str, list[dict[str, float]]] = {"local": [], "docker": []}
    took = time.perf_counter()
    with offline_image(IMAGE), tempfile.TemporaryDirectory() as tmp, Progress(console=console) as progress:
        progress.console.print(f"image {IMAGE} ready in {time.perf_counter() - took:.1f} s (layers cached after the first)")
        task = progress.add_task("start/stop", total=2 * args.runs)
        for _ in range(args.runs):
            for kind in results:  # interleaved, so drift on the machine hits both alike
                results[kind].append(asyncio.run(one_run(kind, model, Path(tmp))))
                progress.advance(task)

    table = Table(title=f"Runtime start/stop, tiny GGUF model, median of {args.runs} (seconds)")
    for column in ("", "local (process)", "docker (container)", "docker / local"):
        table.add_column(column, justify="right" if column else "left")
    for figure in ("launch", "ready", "first answer", "takeover", "stop"):
        medians = {kind: statistics.median(r[figure] for r in runs) if figure in runs[0] else None
                   for kind, runs in results.items()}
        local, docker = medians["local"], medians["docker"]
        table.add_row(figure, f"{local:.3f}" if local is not None else "—",
                      f"{docker:.3f}" if docker is not None else "—",
                      f"{docker / local:.2f}" if local and docker is not None else "—")
    console.print(table)
    console.print("launch: the runtime's start call; ready: start to /ready passing; takeover: a restarted "
                  "router adopting the running container until /ready (no model reload).")


if __name__ == "__main__":
    main()
