"""Rollback speed: from the moment green starts to fail to green's weight reaching 0, and how many
client requests failed meanwhile.

A rollout is walked to its first step (50 % green) under steady client traffic, then green
breaks: either it starts answering 503 (judged by the hard error-rate limit) or its process is
killed (noticed by the readiness probe, woken by the refused connection). Router settings are the
defaults; only the step interval is long, so the rollback is the controller's fast path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.echo_upstream import EchoUpstream  # noqa: E402
from testkit.services import RouterProcess  # noqa: E402
from testkit.traffic import LoadDriver  # noqa: E402

console = Console(width=150)  # the tables are wide; keep them readable when piped
TOKEN = "bench-rollback"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.005) -> float:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(poll_s)
    return time.time()


def one_run(scenario: str, step: float, logs: Path) -> dict[str, Any]:
    switch = Path(tempfile.mkdtemp()) / "fail"
    blue = EchoUpstream([], logs / "blue.log")
    green = EchoUpstream(["--fail-when", str(switch)], logs / "green.log")
    router = RouterProcess(["--blue", blue.url, "--green", green.url, "--state", str(switch.parent / "state.db"),
                            "--log-level", "warning"], logs / f"router-{scenario}.log",
                           env={"BLUEGREEN_ADMIN_TOKEN": TOKEN, "BLUEGREEN_ROLLOUT__WARMUP__QUESTIONS": "[]"})
    try:
        for process in (blue, green, router):
            process.start()
        for process in (blue, green, router):
            process.wait_ready(timeout_s=30)
        with LoadDriver(router.url, workers=8, sessions=400) as load:
            time.sleep(1.5)  # probes have seen both colours
            httpx.post(f"{router.url}/admin/rollout", json={"steps": [step, 100], "interval_s": 600}, headers=AUTH).raise_for_status()
            wait_for(lambda: httpx.get(f"{router.url}/admin/status", headers=AUTH).json()["weights"]["green"] == step, 30)
            time.sleep(1.0)
            answered_before, failures_before = load.answered, len(load.failures)
            broke_at = time.time()
            if scenario == "green answers 503":
                switch.touch()
            else:
                green.kill()
            zero_at = wait_for(lambda: httpx.get(f"{router.url}/admin/status", headers=AUTH).json()["weights"]["green"] == 0, 30)
            time.sleep(0.5)
            answered, failures = load.answered - answered_before, len(load.failures) - failures_before
            seen = sorted({f[:90] for f in load.failures[failures_before:]})
            denied = [line for line in httpx.get(f"{router.url}/metrics").text.splitlines()
                      if line.startswith("bluegreen_retries_denied_total{") and not line.endswith(" 0.0")]
        events = httpx.get(f"{router.url}/admin/events", params={"latest": 10}, headers=AUTH).json()["events"]
        committed = next(e["at"] for e in events if e["kind"] == "rollback_started")
        reason = next(e["message"] for e in events if e["kind"] == "rollback_started")
    finally:
        for process in (router, green, blue):
            process.stop()
    return {"scenario": scenario, "step": step, "committed_s": committed - broke_at, "observed_s": zero_at - broke_at,
            "answered": answered, "failures": failures, "reason": reason, "seen": seen, "denied": denied}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario")
    parser.add_argument("--steps", default="5,50", help="green's share when it breaks, percent (one run set each)")
    parser.add_argument("--logs", type=Path, default=Path("runs/bench-rollback"))
    args = parser.parse_args()
    results = []
    with console.status("measuring…") as status:
        for step in (float(s) for s in args.steps.split(",")):
            for scenario in ("green answers 503", "green process killed"):
                for run in range(args.runs):
                    status.update(f"green at {step:g} %, {scenario}: run {run + 1}/{args.runs}")
                    results.append(one_run(scenario, step, args.logs))
    table = Table(title="Time from green failing to green's weight at 0 (router defaults: tick 0.5 s, probe 1 s)")
    for column in ("green at", "scenario", "rollback committed, s", "seen at the admin API, s", "client requests meanwhile",
                   "client failures"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(f"{r['step']:g} %", r["scenario"], f"{r['committed_s']:.3f}", f"{r['observed_s']:.3f}", str(r["answered"]), str(r["failures"]))
    console.print(table)
    for scenario in ("green answers 503", "green process killed"):
        worst = max(r["committed_s"] for r in results if r["scenario"] == scenario)
        console.print(f"{scenario}: worst {worst:.3f} s; e.g. “{next(r['reason'] for r in results if r['scenario'] == scenario)}”")
    for r in results:
        if r["failures"]:
            console.print(f"green at {r['step']:g} %, {r['scenario']}: clients saw {'; '.join(r['seen'][:2])}; "
                          f"{', '.join(r['denied']) or 'no retries denied'} (the retry budget: 20 % of requests in flight)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
