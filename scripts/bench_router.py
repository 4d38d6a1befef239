"""Router overhead: the same fast upstream called directly, through `bluegreen serve` and through nginx.

At concurrency 1 it reports the latency the router adds (p50, p99); at concurrency 64 the
throughput and tail through the router, as shares of direct and of nginx with one worker (like
with like: one router process). Non-streamed JSON and streamed SSE (8 events). Every process runs
on this machine, so client, router, nginx and upstream share its cores: compare figures within one
run, not across runs.

The load comes from wrk when it is installed (`apt-get install wrk`), else from the Python load
generator, which at c=64 costs about as much CPU as the proxy it measures; `--driver` picks.
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

from bluegreen_common.processes import ServiceProcess  # noqa: E402
from router.dataplanes.nginx_process import NginxProcess, local_nginx_options  # noqa: E402
from testkit import wrk  # noqa: E402
from testkit.echo_upstream import EchoUpstream  # noqa: E402
from testkit.loadgen import Measurement, median_of, run_load  # noqa: E402
from testkit.services import RouterProcess  # noqa: E402

console = Console(width=150)  # the tables are wide; keep them readable when piped
PATH = "/api/v1/chat/legal"
BODIES = {"json": json.dumps({"question": "Что такое договор?"}).encode(),
          "stream": json.dumps({"question": "Что такое договор?", "stream": True, "events": 8}).encode()}
CONCURRENCY = (1, 64)
# The router's targets, as ratios within one run.
TARGET_P99_C64_S = 0.025
TARGET_SHARE_OF_NGINX = 0.25
TARGET_ADDED_P50_C1_S = 0.00015


def measure(driver: str, port: int, body: bytes, concurrency: int, seconds: float) -> Measurement:
    """Warm connections and caches for a moment, then measure."""
    if driver == "wrk":
        wrk.run_wrk(port, PATH, body, concurrency, 1)
        w = wrk.run_wrk(port, PATH, body, concurrency, seconds)
        return Measurement(w.p50_s, w.p99_s, w.rps, w.errors)
    asyncio.run(run_load(port, PATH, body, concurrency, 0.5))
    return Measurement.of(asyncio.run(run_load(port, PATH, body, concurrency, seconds)))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def checkout_program(root: Path) -> tuple[str, ...]:
    """`bluegreen` from another checkout's sources, with this interpreter and its packages."""
    boot = (f"import runpy, sys; sys.path.insert(0, {str(root.resolve())!r}); "
            "runpy.run_module('router.admin.cli', run_name='__main__', alter_sys=True)")
    return (sys.executable, "-c", boot)


def pick_driver(asked: str) -> str:
    if asked == "python" or (asked == "auto" and not wrk.available()):
        if asked == "auto":
            console.print("[yellow]wrk is not installed[/] (apt-get install wrk): measuring with the Python load "
                          "generator, which competes with the router for CPU at c=64")
        return "python"
    if not wrk.available():
        raise SystemExit("--driver wrk: wrk is not installed (apt-get install wrk)")
    return "wrk"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole plan; figures are medians over rounds")
    parser.add_argument("--driver", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk when installed (auto), or the Python one")
    parser.add_argument("--clients", default="http1,httpx", help="router upstream clients to compare")
    parser.add_argument("--modes", default=",".join(BODIES), help="json, stream or both")
    parser.add_argument("--no-nginx", action="store_true", help="leave out the nginx column")
    parser.add_argument("--baseline", type=Path, help="also measure the router (http1) of another checkout, e.g. a "
                        "`git worktree` of the last release, in the same run: before/after under the same load")
    parser.add_argument("--logs", type=Path, default=Path("runs/bench-router"))
    args = parser.parse_args()
    driver = pick_driver(args.driver)
    modes = args.modes.split(",")
    upstream = EchoUpstream([], args.logs / "upstream.log")
    targets: dict[str, ServiceProcess] = {"direct": upstream}
    ports: dict[str, int] = {}  # every target measured: the processes above, and nginx
    for client in args.clients.split(","):
        state = Path(tempfile.mkdtemp()) / "bench.db"
        targets[f"router/{client}"] = RouterProcess(
            ["--blue", upstream.url, "--green", upstream.url, "--state", str(state), "--log-level", "warning"],
            args.logs / f"router-{client}.log",
            env={"BLUEGREEN_INITIAL_GREEN_WEIGHT": "50", "BLUEGREEN_UPSTREAM_CLIENT": client})
    if args.baseline is not None:
        state = Path(tempfile.mkdtemp()) / "bench.db"
        targets["baseline/http1"] = RouterProcess(
            ["--blue", upstream.url, "--green", upstream.url, "--state", str(state), "--log-level", "warning"],
            args.logs / "router-baseline.log", program=checkout_program(args.baseline),
            env={"BLUEGREEN_INITIAL_GREEN_WEIGHT": "50", "BLUEGREEN_UPSTREAM_CLIENT": "http1"})
    rounds: dict[tuple[str, str, int], list[Measurement]] = {}
    nginx: NginxProcess | None = None
    try:
        for process in targets.values():
            process.start()
        for name, process in targets.items():
            process.wait_ready(timeout_s=30)
            ports[name] = process.port
        if not args.no_nginx:  # the same split at 50 %, keep-alive on so the load generator can reuse connections
            options = local_nginx_options(Path(tempfile.mkdtemp()), keepalive_timeout_s=65)
            nginx = NginxProcess(options, upstream.url, upstream.url, green_bp=5000).__enter__()
            ports["nginx"] = nginx.port
        # Interleaved, so that a burst of other work on the machine falls on every target alike.
        plan = [(t, mode, c) for _ in range(args.rounds) for mode in modes for c in CONCURRENCY for t in ports]
        with Progress(console=console) as progress:
            task = progress.add_task("measuring", total=len(plan))
            for target, mode, concurrency in plan:
                progress.update(task, description=f"{mode} c={concurrency} {target}")
                rounds.setdefault((target, mode, concurrency), []).append(
                    measure(driver, ports[target], BODIES[mode], concurrency, args.seconds))
                progress.advance(task)
    finally:
        for process in targets.values():
            process.stop()
        if nginx is not None:
            nginx.__exit__()
    results = {key: median_of(values) for key, values in rounds.items()}
    console.print(report(results, modes, [t for t in ports if t != "direct"]))
    console.print(f"driver: {driver} ({'wrk, one thread' if driver == 'wrk' else 'testkit/loadgen.py, asyncio'}); "
                  f"{args.rounds} round(s) of {args.seconds:g} s, medians; nginx: one worker process, client keep-alive "
                  "on (the router's default nginx config turns it off; see README)")
    if "nginx" in ports:
        console.print(targets_table(results, modes, [t for t in ports if t not in ("direct", "nginx")]))
    return 0


def report(results: dict[tuple[str, str, int], Measurement], modes: list[str], via: list[str]) -> Table:
    table = Table(title="Through the router vs direct (same upstream; client, router and upstream share this machine)")
    for column in ("mode", "conc.", "path", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "req/s",
                   "throughput vs direct", "vs nginx", "errors"):
        table.add_column(column, justify="right")
    for mode in modes:
        for concurrency in CONCURRENCY:
            d = results["direct", mode, concurrency]
            n = results.get(("nginx", mode, concurrency))
            table.add_row(mode, str(concurrency), "direct", ms(d.p50_s), ms(d.p99_s), "", "",
                          f"{d.rps:.0f}", "1.00", "", str(d.errors))
            for target in via:
                r = results[target, mode, concurrency]
                table.add_row("", "", target, ms(r.p50_s), ms(r.p99_s), ms(r.p50_s - d.p50_s), ms(r.p99_s - d.p99_s),
                              f"{r.rps:.0f}", f"{r.rps / d.rps:.2f}", f"{r.rps / n.rps:.2f}" if n else "",
                              str(r.errors))
        table.add_section()
    return table


def targets_table(results: dict[tuple[str, str, int], Measurement], modes: list[str], routers: list[str]) -> Table:
    """The router's three targets for each upstream client, from this run's figures."""
    table = Table(title="Targets (ratios within this run)")
    for column in ("mode", "router", "c=64 p99 ms (≤ 25)", "c=64 req/s ÷ nginx (≥ 0.25)", "c=1 added p50 ms (≤ 0.15)"):
        table.add_column(column, justify="right")

    def mark(value: str, ok: bool) -> str:
        return f"{value} {'[green]✓[/]' if ok else '[red]✗[/]'}"

    for mode in modes:
        for router in routers:
            r64, r1 = results[router, mode, 64], results[router, mode, 1]
            share = r64.rps / results["nginx", mode, 64].rps
            added = r1.p50_s - results["direct", mode, 1].p50_s
            table.add_row(mode, router, mark(ms(r64.p99_s), r64.p99_s <= TARGET_P99_C64_S),
                          mark(f"{share:.2f}", share >= TARGET_SHARE_OF_NGINX),
                          mark(ms(added), added <= TARGET_ADDED_P50_C1_S))
    return table


if __name__ == "__main__":
    raise SystemExit(main())
