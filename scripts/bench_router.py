"""Router overhead: the same fast upstream called directly and through `bluegreen serve`.

At concurrency 1 it reports the latency the router adds (p50, p99); at concurrency 64 the
throughput through the router as a share of direct. Non-streamed JSON and streamed SSE (8 events).
Every process runs on this machine, so client, router and upstream share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_backends.launcher import RouterProcess, ServiceProcess  # noqa: E402
from router.dataplanes.nginx_process import NginxProcess, local_nginx_options  # noqa: E402
from scripts.benchlib.echo_upstream import EchoUpstream  # noqa: E402
from scripts.benchlib.loadgen import Result, run_load  # noqa: E402

console = Console(width=150)  # the tables are wide; keep them readable when piped
PATH = "/api/v1/chat/legal"
BODIES = {"json": json.dumps({"question": "Что такое договор?"}).encode(),
          "stream": json.dumps({"question": "Что такое договор?", "stream": True, "events": 8}).encode()}


def measure(port: int, body: bytes, concurrency: int, seconds: float) -> Result:
    asyncio.run(run_load(port, PATH, body, concurrency, 0.5))  # warm connections and caches
    return asyncio.run(run_load(port, PATH, body, concurrency, seconds))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each measurement")
    parser.add_argument("--clients", default="http1,httpx", help="router upstream clients to compare")
    parser.add_argument("--no-nginx", action="store_true", help="leave out the nginx column")
    parser.add_argument("--logs", type=Path, default=Path("runs/bench-router"))
    args = parser.parse_args()
    upstream = EchoUpstream([], args.logs / "upstream.log")
    targets: dict[str, ServiceProcess | NginxProcess] = {"direct": upstream}
    for client in args.clients.split(","):
        state = Path(tempfile.mkdtemp()) / "bench.db"
        targets[f"router/{client}"] = RouterProcess(
            ["--blue", upstream.url, "--green", upstream.url, "--state", str(state), "--log-level", "warning"],
            args.logs / f"router-{client}.log",
            env={"BLUEGREEN_INITIAL_GREEN_WEIGHT": "50", "BLUEGREEN_UPSTREAM_CLIENT": client})
    results: dict[tuple[str, str, int], Result] = {}
    nginx: NginxProcess | None = None
    try:
        for process in targets.values():
            process.start()
        for process in targets.values():
            process.wait_ready(timeout_s=30)
        if not args.no_nginx:  # the same split at 50 %, keep-alive on so the load generator can reuse connections
            options = local_nginx_options(Path(tempfile.mkdtemp()), keepalive_timeout_s=65)
            nginx = NginxProcess(options, upstream.url, upstream.url, green_bp=5000).__enter__()
            targets["nginx"] = nginx
        plan = [(t, mode, c) for mode in BODIES for c in (1, 64) for t in targets]
        with Progress(console=console) as progress:
            task = progress.add_task("measuring", total=len(plan))
            for target, mode, concurrency in plan:
                progress.update(task, description=f"{mode} c={concurrency} {target}")
                results[target, mode, concurrency] = measure(targets[target].port, BODIES[mode], concurrency, args.seconds)
                progress.advance(task)
    finally:
        for name, process in targets.items():
            if name != "nginx":
                process.stop()
        if nginx is not None:
            nginx.__exit__()
    console.print(report(results, [t for t in targets if t != "direct"]))
    console.print("nginx: one worker process, client keep-alive on (the router's default config turns it off; see README)")
    return 0


def report(results: dict[tuple[str, str, int], Result], via: list[str]) -> Table:
    table = Table(title="Through the router vs direct (same upstream; client, router and upstream share this machine)")
    for column in ("mode", "conc.", "path", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "req/s",
                   "throughput vs direct", "errors"):
        table.add_column(column, justify="right")
    for mode in BODIES:
        for concurrency in (1, 64):
            d = results["direct", mode, concurrency]
            table.add_row(mode, str(concurrency), "direct", ms(d.quantile(0.5)), ms(d.quantile(0.99)), "", "",
                          f"{d.rps:.0f}", "1.00", str(d.errors))
            for target in via:
                r = results[target, mode, concurrency]
                table.add_row("", "", target, ms(r.quantile(0.5)), ms(r.quantile(0.99)),
                              ms(r.quantile(0.5) - d.quantile(0.5)), ms(r.quantile(0.99) - d.quantile(0.99)),
                              f"{r.rps:.0f}", f"{r.rps / d.rps:.2f}", str(r.errors))
        table.add_section()
    return table


if __name__ == "__main__":
    raise SystemExit(main())
