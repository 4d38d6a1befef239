"""Demo: blue (Saiga's engine, llama.cpp on GGUF) and green (Vistral's engine, transformers)
serve the same tiny legal model; each answers the same Russian legal questions.

Starts both backends as local processes on free loopback ports, asks, prints a summary and stops
every process it started.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_backends.launcher import BackendProcess  # noqa: E402
from model_backends.tiny.build import TinyModels  # noqa: E402
from model_backends.tiny.corpus import demo_questions  # noqa: E402

console = Console()


def ask(url: str, question: str) -> dict:
    response = httpx.post(f"{url}/api/v1/chat/legal", json={"question": question, "temperature": 0, "max_tokens": 80}, timeout=60)
    response.raise_for_status()
    return response.json()


def stream(url: str, question: str) -> None:
    with httpx.stream("POST", f"{url}/api/v1/chat/legal", json={"question": question, "stream": True, "max_tokens": 60}, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data: {\"delta\""):
                console.print(__import__("json").loads(line[6:])["delta"], end="", style="green")
    console.print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path(".cache/tiny-models"))
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--logs", type=Path, default=Path("runs/demo"))
    args = parser.parse_args()
    models = TinyModels(args.models)
    if not models.gguf_path.exists():
        console.print(f"[red]no tiny models in {models.root}[/]: run `make models` first")
        return 1
    blue = BackendProcess(["--engine", "llama_cpp", "--model", str(models.gguf_path), "--model-name", "saiga-tiny"],
                          args.logs / "blue.log")
    green = BackendProcess(["--engine", "transformers", "--model", str(models.hf_dir), "--model-name", "vistral-tiny"],
                           args.logs / "green.log")
    started = time.perf_counter()
    try:
        with console.status("starting blue (llama.cpp) and green (transformers)…"):
            blue.start(), green.start()
            ready = {"blue": blue.wait_ready(), "green": green.wait_ready()}
        for colour, info in ready.items():
            console.print(f"[bold]{colour}[/] ready: engine {info['engine']}, model {info['model']}, "
                          f"loaded in {info['load_time_s']} s ({blue.url if colour == 'blue' else green.url})")
        table = Table(title="Same question, both colours", show_lines=True)
        for column in ("question", "colour", "answer", "tokens", "time, s"):
            table.add_column(column)
        for question in demo_questions()[: args.questions]:
            for colour, backend in (("blue", blue), ("green", green)):
                answer = ask(backend.url, question)
                table.add_row(question, colour, answer["answer"], str(answer["usage"]["completion_tokens"]), f"{answer['time_s']:.3f}")
        console.print(table)
        console.print("[bold]green, streamed:[/] ", end="")
        stream(green.url, demo_questions()[0])
        for colour, backend in (("blue", blue), ("green", green)):
            stats = httpx.get(f"{backend.url}/stats").json()
            console.print(f"{colour}: {stats['successful_requests']}/{stats['total_requests']} ok, "
                          f"average {stats['average_response_time_s']} s, RSS {stats['memory']['rss_mb']} MB")
    finally:
        blue.stop()
        green.stop()
    console.print(f"[green]demo finished in {time.perf_counter() - started:.1f} s; both backends stopped[/]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
