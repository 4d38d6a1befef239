"""What analytics costs the router: the same fast upstream through a router with analytics on and one
with it off, in one run, interleaved (JSON and SSE, concurrency 1 and 16): p50, p99, req/s and ratios.
Then, in this process, the proxy's own share per request (building the hand-over and queueing it)
and the writer task's per record (parse, hash, classify, serialise), and the lines written.

Client, routers and upstream share this machine's cores: compare figures within one run.

    .venv/bin/python scripts/bench_analytics.py [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router.analytics.categories import classify  # noqa: E402
from router.analytics.options import AnalyticsOptions  # noqa: E402
from router.analytics.record import RecordContext, Seen, build_record  # noqa: E402
from router.analytics.summary import read_records  # noqa: E402
from router.analytics.writer import AnalyticsWriter  # noqa: E402
from router.metrics import RouterMetrics  # noqa: E402
from testkit.echo_upstream import EchoUpstream  # noqa: E402
from testkit.loadgen import Measurement, median_of, run_load  # noqa: E402
from testkit.services import RouterProcess  # noqa: E402

console = Console(width=140)
PATH = "/api/v1/chat/legal"
QUESTION = "Меня уволили без предупреждения и не выплатили зарплату, куда обращаться?"
BODIES = {"json": json.dumps({"question": QUESTION}).encode(),
          "stream": json.dumps({"question": QUESTION, "stream": True, "events": 8}).encode()}
CONCURRENCY = (1, 16)
TARGETS = ("analytics on", "analytics off")


def measure(port: int, body: bytes, concurrency: int, seconds: float) -> Measurement:
    asyncio.run(run_load(port, PATH, body, concurrency, 0.3))  # warm connections
    return Measurement.of(asyncio.run(run_load(port, PATH, body, concurrency, seconds)))


def in_process_costs(count: int = 20000) -> tuple[float, float]:
    """µs per request on the proxy's side (Seen + submit) and per record on the writer's thread."""
    metrics = RouterMetrics()
    writer = AnalyticsWriter(AnalyticsOptions(queue_size=count + 1), metrics, "X-User-ID", "X-User-Tier",
                             lambda user, tier: tier)
    headers = [(b"host", b"x"), (b"content-type", b"application/json"), (b"x-user-id", b"u-1")]
    answer = [b'{"answer": "' + "Обратитесь в трудовую инспекцию. ".encode() * 8 + b'", "usage": {"prompt_tokens": 30, '
              b'"completion_tokens": 60}, "model": "m"}']
    started = time.perf_counter()
    for number in range(count):
        writer.submit(Seen(time.time(), f"r{number}", PATH, "blue", 200, headers, BODIES["json"], answer, 0.1, 0.05))
    proxy_us = (time.perf_counter() - started) / count * 1e6
    context = RecordContext(b"salt", False, classify, b"x-user-id", b"x-user-tier", lambda user, tier: tier)
    seen = Seen(time.time(), "r", PATH, "blue", 200, headers, BODIES["json"], answer, 0.1, 0.05)
    build_record(seen, context)  # warm the stem cache, as a running router's is
    started = time.perf_counter()
    for _ in range(2000):
        build_record(seen, context).to_json()
    writer_us = (time.perf_counter() - started) / 2000 * 1e6
    return proxy_us, writer_us


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=2, help="repeat the plan; figures are medians over rounds")
    parser.add_argument("--logs", type=Path, default=Path("runs/bench-analytics"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    analytics_path = work / "analytics.jsonl"
    upstream = EchoUpstream([], args.logs / "upstream.log")
    base = ["--blue", upstream.url, "--green", upstream.url, "--log-level", "warning"]
    env = {"BLUEGREEN_INITIAL_GREEN_WEIGHT": "50", "BLUEGREEN_RATE_LIMIT__ENABLED": "false"}
    routers = {
        "analytics on": RouterProcess([*base, "--state", str(work / "on.db")], args.logs / "router-on.log",
                                      env={**env, "BLUEGREEN_ANALYTICS__PATH": str(analytics_path)}),
        "analytics off": RouterProcess([*base, "--state", str(work / "off.db")], args.logs / "router-off.log",
                                       env={**env, "BLUEGREEN_ANALYTICS__ENABLED": "false"}),
    }
    rounds: dict[tuple[str, str, int], list[Measurement]] = {}
    try:
        for process in [upstream, *routers.values()]:
            process.start()
        for process in [upstream, *routers.values()]:
            process.wait_ready(timeout_s=30)
        plan = [(t, mode, c) for _ in range(args.rounds) for mode in BODIES for c in CONCURRENCY for t in TARGETS]
        with Progress(console=console) as progress:
            task = progress.add_task("measuring", total=len(plan))
            for target, mode, concurrency in plan:  # interleaved: a burst of other work hits both alike
                progress.update(task, description=f"{mode} c={concurrency} {target}")
                rounds.setdefault((target, mode, concurrency), []).append(
                    measure(routers[target].port, BODIES[mode], concurrency, args.seconds))
                progress.advance(task)
    finally:
        for process in [*routers.values(), upstream]:
            process.stop()
    sent = sum(m.requests for (target, _, _), values in rounds.items() if target == "analytics on" for m in values)
    written = len(read_records(analytics_path))
    console.print(report(rounds))
    proxy_us, writer_us = in_process_costs()
    console.print(f"analytics on: {written} lines written for {sent} measured requests (+ warm-up requests); "
                  f"in process: {proxy_us:.2f} µs per request on the proxy's side (hand-over + queue), "
                  f"{writer_us:.0f} µs per record in the writer's background task (parse, hash, classify, JSON)")
    console.print(f"python load generator; {args.rounds} round(s) of {args.seconds:g} s, medians")
    return 0


def report(rounds: dict[tuple[str, str, int], list[Measurement]]) -> Table:
    table = Table(title="Router with analytics on vs off (same upstream, same run)")
    for column in ("mode", "conc.", "analytics", "p50 ms", "p99 ms", "req/s", "p50 on−off ms", "req/s on ÷ off", "errors"):
        table.add_column(column, justify="right")
    for mode in BODIES:
        for concurrency in CONCURRENCY:
            figures = {t: median_of(rounds[t, mode, concurrency]) for t in TARGETS}
            on, off = figures["analytics on"], figures["analytics off"]
            for target in TARGETS:
                m = figures[target]
                extra = ((f"{(on.p50_s - off.p50_s) * 1000:+.3f}", f"{on.rps / off.rps:.3f}")
                         if target == "analytics on" else ("", ""))
                table.add_row(mode if target == TARGETS[0] else "", str(concurrency) if target == TARGETS[0] else "",
                              target, f"{m.p50_s * 1000:.3f}", f"{m.p99_s * 1000:.3f}", f"{m.rps:.0f}", *extra,
                              str(m.errors))
        table.add_section()
    return table


if __name__ == "__main__":
    raise SystemExit(main())
