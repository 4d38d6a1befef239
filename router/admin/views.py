"""How the CLI draws the router's state: weights bar, per-colour figures, rollout and verdicts."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

BAR_WIDTH = 50


def weights_bar(weights: dict[str, float]) -> Text:
    green_cells = round(weights["green"] / 100 * BAR_WIDTH)
    bar = Text()
    bar.append("█" * (BAR_WIDTH - green_cells), style="blue")
    bar.append("█" * green_cells, style="green")
    bar.append(f"  blue {weights['blue']:g} % · green {weights['green']:g} %")
    return bar


def _seconds(value: float | None) -> str:
    return "–" if value is None else (f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s")


def colours_table(status: dict[str, Any]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("colour", "ready", "requests", "errors", "error rate", "p50", "p95", "TTFT p95"):
        table.add_column(column, justify="right")
    for colour, backend in status["backends"].items():
        w = backend["window"]
        stable = " (stable)" if status["stable"] == colour else ""
        ready = "yes" if backend["ready"] else f"no: {backend['reason'][:40]}"
        if backend.get("ejection"):
            ready = f"ejected: {backend['ejection'][:40]}"
        table.add_row(Text(colour + stable, style=colour), ready,
                      str(w["requests"]), str(w["errors"]), f"{w['error_rate'] * 100:.1f} %",
                      _seconds(w["latency_p50_s"]), _seconds(w["latency_p95_s"]), _seconds(w["ttft_p95_s"]))
    return table


def rollout_lines(rollout: dict[str, Any]) -> Text:
    text = Text()
    phase = rollout["phase"]
    text.append(f"phase: {phase}", style="bold")
    if phase == "idle":
        return text
    steps = [s / 100 for s in rollout["steps"]]
    step = rollout["step"]
    if step >= 0:
        remaining = max(0.0, rollout["interval_s"] - (time.time() - rollout["step_since"]))
        text.append(f"  ·  step {step + 1}/{len(steps)} ({rollout['canary']} {steps[step]:g} %)")
        if phase == "progressing":
            text.append(f", judged in {remaining:.0f} s")
    if rollout.get("failures"):
        text.append(f"  ·  failed checks in a row: {rollout['failures']}", style="yellow")
    verdict = rollout.get("last_verdict")
    if verdict:
        style = {"passed": "green", "failed": "red"}.get(verdict["outcome"], "yellow")
        text.append(f"\nlast verdict: {verdict['outcome']}", style=style)
        for reason in verdict["reasons"]:
            text.append(f"\n  · {reason}")
    if rollout.get("reason"):
        text.append(f"\nreason: {rollout['reason']}")
    return text


CHECKS = ("empty", "wrong_language", "repetitive", "truncated", "refusal")


def shadow_lines(shadow: dict[str, Any]) -> Text:
    """The shadow phase so far: mirrored pairs, and each answer check's share for the canary against the
    stable colour."""
    canary, stable = shadow["canary"], shadow["stable"]
    over_rate = shadow.get("over_rate", 0)  # absent from a router older than the figure
    text = Text(f"shadow: {shadow['pairs']} mirrored pairs, {shadow['skipped']} skipped (busy), "
                + (f"{over_rate} skipped (over max_per_s), " if over_rate else "")
                + f"{shadow['canary_errors']} failed on {canary}", style="bold")
    for check in CHECKS:
        mirrored, served = shadow[canary][check], shadow[stable][check]
        text.append(f"\n  {check.replace('_', ' ')}: {canary} {mirrored * 100:.0f} % · {stable} {served * 100:.0f} %",
                    style="red" if mirrored > served else "")
    ratio, similarity = shadow.get("length_ratio_p50"), shadow.get("chrf_p50")
    if ratio is not None:
        text.append(f"\n  median answer length {canary}/{stable}: {ratio:.2f}")
    if similarity is not None:
        text.append(f"\n  median chrF {canary} vs {stable}: {similarity:.1f}")
    gaps = shadow[canary].get("gap_p95_s"), shadow[stable].get("gap_p95_s")
    if None not in gaps:
        text.append(f"\n  stream gap p95: {canary} {gaps[0] * 1000:.0f} ms · {stable} {gaps[1] * 1000:.0f} ms")
    return text


def events_table(events: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column("time", style="dim")
    table.add_column("who", style="dim")
    table.add_column("what")
    for event in events:
        table.add_row(time.strftime("%H:%M:%S", time.localtime(event["at"])), event["actor"], event["message"])
    return table


def dashboard(status: dict[str, Any], recent: list[dict[str, Any]]) -> Panel:
    parts: list[RenderableType] = [weights_bar(status["weights"]), Text(), colours_table(status), Text(),
                                   rollout_lines(status["rollout"])]
    if status["phase"] == "shadowing" and "shadow" in status:
        parts += [Text(), shadow_lines(status["shadow"])]
    if recent:
        parts += [Text(), events_table(recent)]
    return Panel(Group(*parts), title="bluegreen", subtitle=f"window {status['backends']['green']['window']['span_s']:g} s")
