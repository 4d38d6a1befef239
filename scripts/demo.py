"""Demo: the whole cutover, from Saiga's engine (blue: llama.cpp on GGUF) to Vistral's (green:
transformers on an HF checkpoint), behind the router's one shared endpoint.

Starts blue, green and the router as local processes on free loopback ports, sends Russian legal
questions from many sessions through the router, runs `bluegreen cutover` (warm-up, then 5 → 25
→ 50 → 100 %, each step judged), prints a summary and stops every process it started. With
`--faulty-green` green passes its warm-up, then answers half its requests with errors; the
controller rolls it back on its own while clients see none of them.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_backends.tiny.build import TinyModels  # noqa: E402
from model_backends.tiny.corpus import demo_questions  # noqa: E402
from testkit.services import BackendProcess, RouterProcess  # noqa: E402
from testkit.traffic import LoadDriver  # noqa: E402

console = Console()

# Tiny models on a CPU: transformers answers ~20× slower than llama.cpp, which says nothing about
# Vistral vs Saiga. The demo judges errors strictly and relaxes only the blue-relative latency ratios.
DEMO_JUDGE = {
    "BLUEGREEN_ROLLOUT__JUDGE__MIN_REQUESTS": "10",
    "BLUEGREEN_ROLLOUT__JUDGE__MAX_LATENCY_RATIO": "200",
    "BLUEGREEN_ROLLOUT__JUDGE__MAX_TTFT_RATIO": "200",
    "BLUEGREEN_ROLLOUT__KEEP_OLD_S": "0",
    "BLUEGREEN_WINDOW_S": "30",
}


def wait_until_both_ready(url: str, timeout_s: float = 30.0) -> None:
    """The router probes each second; wait until it has seen both colours ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        backends = httpx.get(f"{url}/ready").json()["backends"]
        if all(b["ready"] for b in backends.values()):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the router does not see both colours ready: {backends}")


# `bluegreen cutover`'s exit codes (README, docs/deployment.md).
CUTOVER_EXITS = {0: "promoted", 2: "rejected", 1: "could not run"}


def expected_exit(faulty: bool) -> int:
    """What the cutover should exit with: a faulty green is rejected (2), a healthy one promoted (0)."""
    return 2 if faulty else 0


def exit_row(outcome: int, faulty: bool) -> str:
    """The cutover's exit code, what it means, and whether this run expected it."""
    meaning = CUTOVER_EXITS.get(outcome, "killed by a signal" if outcome < 0 else "unexpected")
    expected = expected_exit(faulty)
    style = "green" if outcome == expected else "red"
    return f"[{style}]{outcome} ({meaning})[/], expected {expected} ({CUTOVER_EXITS[expected]})"


def summary(load: LoadDriver, status: dict[str, Any], outcome: int, seconds: float, faulty: bool) -> Table:
    result = {0: "[green]promoted[/]", 2: "[yellow]green rejected (shadow checks failed, or rolled back)[/]"}.get(
        outcome, f"[red]error (exit {outcome})[/]")
    table = Table(title=f"cutover {'with a faulty green ' if faulty else ''}→ {result} in {seconds:.0f} s")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("`bluegreen cutover` exit code", exit_row(outcome, faulty))
    table.add_row("client requests answered", str(load.answered))
    table.add_row("  by blue (llama.cpp, GGUF)", str(load.colours["blue"]))
    table.add_row("  by green (transformers)", str(load.colours["green"]))
    table.add_row("errors seen by clients", str(len(load.failures)))
    table.add_row("final weights", f"blue {status['weights']['blue']:g} % · green {status['weights']['green']:g} %")
    table.add_row("stable colour", status["stable"])
    green = status["backends"]["green"]["window"]
    table.add_row("green errors hidden by retry to blue (last window)", str(green["errors"]))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path(".cache/tiny-models"))
    parser.add_argument("--faulty-green", action="store_true", help="green answers half its requests with 500")
    parser.add_argument("--steps", default="5,25,50,100")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds per step")
    parser.add_argument("--logs", type=Path, default=Path("runs/demo"))
    args = parser.parse_args()
    models = TinyModels(args.models)
    if not models.gguf_path.exists():
        console.print(f"[red]no tiny models in {models.root}[/]: run `make models` first")
        return 1
    token = secrets.token_urlsafe(16)
    # Clean through the warm-up and the first few users, then half of green's answers fail.
    faults = ["--fault-error-rate", "0.5", "--fault-after", "10"] if args.faulty_green else []
    blue = BackendProcess(["--engine", "llama_cpp", "--model", str(models.gguf_path), "--model-name", "saiga-tiny"],
                          args.logs / "blue.log")
    green = BackendProcess(["--engine", "transformers", "--model", str(models.hf_dir), "--model-name", "vistral-tiny",
                            *faults], args.logs / "green.log")
    router = RouterProcess(["--blue", blue.url, "--green", green.url, "--state", str(Path(tempfile.mkdtemp()) / "demo.db")],
                           args.logs / "router.log", env={"BLUEGREEN_ADMIN_TOKEN": token, **DEMO_JUDGE})
    started = time.perf_counter()
    try:
        with console.status("starting blue (llama.cpp), green (transformers) and the router…"):
            blue.start(), green.start(), router.start()
            blue.wait_ready(), green.wait_ready(), router.wait_ready()
            wait_until_both_ready(router.url)
        console.print(f"blue {blue.url} · green {green.url} · shared endpoint [bold]{router.url}[/]"
                      + (" · [red]green drill: 50 % errors[/]" if args.faulty_green else ""))
        cutover = [sys.executable, "-m", "router.admin.cli", "cutover", "--router", router.url, "--yes",
                   "--steps", args.steps, "--interval", str(args.interval)]
        with LoadDriver(router.url, workers=4, sessions=200, questions=demo_questions(), max_tokens=24,
                        max_seconds=1800) as load:  # traffic for as long as the cutover runs
            outcome = subprocess.run(cutover, env={**os.environ, "BLUEGREEN_ADMIN_TOKEN": token}).returncode
        status = httpx.get(f"{router.url}/admin/status", headers={"Authorization": f"Bearer {token}"}).json()
        console.print(summary(load, status, outcome, time.perf_counter() - started, args.faulty_green))
        for failure in load.failures[:5]:
            console.print(f"[red]client saw:[/] {failure}")
    finally:
        for service in (router, blue, green):
            service.stop()
    console.print(f"[green]demo finished in {time.perf_counter() - started:.1f} s; router and both backends stopped[/]")
    expected = expected_exit(args.faulty_green)
    return 0 if outcome == expected and not load.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
