"""What the shadow phase's mirror costs the users: blue's latency through the router with mirroring
off and on, at concurrency 1 and 16, and the router's memory over many mirrored requests.

Two fast fixed-answer upstreams stand in for blue and green, so only the router is measured. The
shadow phase is held open (a verdict needs more pairs than the run makes) while the load runs.
Prints a table and ratios against the same run's mirror-off figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.echo_upstream import EchoUpstream  # noqa: E402
from testkit.loadgen import Result, run_load  # noqa: E402
from testkit.services import RouterProcess  # noqa: E402

console = Console(width=140)
TOKEN = "bench-shadow"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = json.dumps({"question": "Что такое договор?"}, ensure_ascii=False).encode()
HELD_OPEN = {  # shadowing until the run ends: no verdict before 10 million pairs, no deadline within it
    "BLUEGREEN_ADMIN_TOKEN": TOKEN, "BLUEGREEN_ROLLOUT__WARMUP__QUESTIONS": "[]",
    "BLUEGREEN_ROLLOUT__SHADOW__MIN_PAIRS": "10000000", "BLUEGREEN_ROLLOUT__SHADOW__MAX_DURATION_S": "86400",
    "BLUEGREEN_RATE_LIMIT__ENABLED": "false",
}


def measure(port: int, concurrency: int, seconds: float, max_requests: int | None = None) -> Result:
    return asyncio.run(run_load(port, "/api/v1/chat/legal", BODY, concurrency, seconds, max_requests))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def start_shadowing(url: str) -> None:
    httpx.post(f"{url}/admin/rollout", json={"steps": [50, 100], "interval_s": 600}, headers=AUTH).raise_for_status()
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/admin/status", headers=AUTH).json()["phase"] != "shadowing":
        if time.monotonic() > deadline:
            raise TimeoutError("the rollout did not reach the shadow phase")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--mirrored", type=int, default=10_000, help="requests for the memory measurement")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    blue, green = EchoUpstream([], logs / "blue.log"), EchoUpstream([], logs / "green.log")
    router = RouterProcess(["--blue", blue.url, "--green", green.url, "--state", str(logs / "state.db"),
                            "--log-level", "warning"], logs / "router.log", env=HELD_OPEN)
    results: dict[tuple[str, int], Result] = {}
    try:
        for process in (blue, green, router):
            process.start()
        for process in (blue, green, router):
            process.wait_ready(timeout_s=30)
        time.sleep(1.5)  # the probes have seen both colours
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("measuring", total=5)
            for concurrency in (1, 16):
                results[("off", concurrency)] = measure(router.port, concurrency, args.seconds)
                progress.advance(task)
            start_shadowing(router.url)
            for concurrency in (1, 16):
                results[("on", concurrency)] = measure(router.port, concurrency, args.seconds)
                progress.advance(task)
            router_process = psutil.Process(router.pid)
            rss_before = router_process.memory_info().rss
            measure(router.port, 16, 600, max_requests=args.mirrored)
            time.sleep(1.0)  # the last mirrors finish
            rss_after = router_process.memory_info().rss
            progress.advance(task)
        shadow = httpx.get(f"{router.url}/admin/status", headers=AUTH).json()["shadow"]
    finally:
        for service in (router, blue, green):
            service.stop()
    table = Table(title="blue's latency through the router, mirror off vs on (the shadow phase)")
    for column in ("concurrency", "mirror", "requests/s", "p50 ms", "p99 ms", "added p50 ms", "p99 ratio"):
        table.add_column(column, justify="right")
    for concurrency in (1, 16):
        off, on = results[("off", concurrency)], results[("on", concurrency)]
        table.add_row(str(concurrency), "off", f"{off.rps:.0f}", ms(off.quantile(0.5)), ms(off.quantile(0.99)), "", "")
        table.add_row(str(concurrency), "on", f"{on.rps:.0f}", ms(on.quantile(0.5)), ms(on.quantile(0.99)),
                      ms(on.quantile(0.5) - off.quantile(0.5)), f"{on.quantile(0.99) / off.quantile(0.99):.2f}")
    console.print(table)
    console.print(f"memory over {args.mirrored} more requests in the shadow phase: router RSS "
                  f"{rss_before / 2**20:.1f} → {rss_after / 2**20:.1f} MiB ({(rss_after - rss_before) / 2**20:+.1f} MiB); "
                  f"mirror tally: {shadow['pairs']} pairs, {shadow['skipped']} skipped (max in flight)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
