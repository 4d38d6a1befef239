"""How the CLI draws the status: an ejected colour and the shadow phase's figures are shown, not hidden."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from router.admin.views import dashboard

WINDOW = {"span_s": 60, "requests": 10, "errors": 0, "error_rate": 0.0, "latency_p50_s": 0.1, "latency_p95_s": 0.2,
          "ttft_p95_s": 0.05}
RATES = {"answers": 20, "empty": 0.0, "wrong_language": 0.0, "repetitive": 0.0, "truncated": 0.1, "refusal": 0.0}


def status(phase: str, ejection: str | None = None) -> dict[str, Any]:
    backend = {"url": "http://127.0.0.1:8001", "ready": True, "reason": "ready", "ejection": None, "window": WINDOW}
    return {
        "weights": {"blue": 100.0, "green": 0.0}, "stable": "blue", "phase": phase,
        "rollout": {"phase": phase, "steps": [500, 10000], "step": -1, "interval_s": 30, "step_since": 0.0,
                    "canary": "green", "reason": "warm-up passed"},
        "backends": {"blue": backend, "green": {**backend, "ejection": ejection}},
        "shadow": {"pairs": 20, "skipped": 3, "canary": "green", "stable": "blue", "canary_errors": 1,
                   "length_ratio_p50": 0.93, "chrf_p50": 41.5,
                   "blue": {**RATES, "gap_p95_s": 0.02}, "green": {**RATES, "wrong_language": 0.85, "gap_p95_s": 0.09}},
    }


def drawn(state: dict[str, Any]) -> str:
    console = Console(record=True, width=160)
    console.print(dashboard(state, []))
    return console.export_text()


def test_the_shadow_phase_shows_its_pairs_and_green_against_blue() -> None:
    text = drawn(status("shadowing"))
    assert "shadow: 20 mirrored pairs, 3 skipped (busy), 1 failed on green" in text
    assert "wrong language: green 85 % · blue 0 %" in text and "green/blue: 0.93" in text
    assert "median chrF green vs blue: 41.5" in text and "stream gap p95: green 90 ms · blue 20 ms" in text
    assert "mirrored pairs" not in drawn(status("progressing"))


def test_with_green_stable_the_shadow_figures_name_blue_as_the_canary() -> None:
    state = status("shadowing")
    shadow = state["shadow"]
    state["shadow"] = {**shadow, "canary": "blue", "stable": "green", "blue": shadow["green"], "green": shadow["blue"]}
    text = drawn(state)
    assert "1 failed on blue" in text and "wrong language: blue 85 % · green 0 %" in text
    assert "blue/green: 0.93" in text


def test_an_ejected_colour_says_so_in_the_table() -> None:
    assert "ejected: green ejected for 5 s" in drawn(status("progressing", ejection="green ejected for 5 s: 5 failures"))


def test_mirrors_dropped_over_max_per_s_are_shown_beside_the_busy_ones() -> None:
    state = status("shadowing")
    state["shadow"] = {**state["shadow"], "over_rate": 7}
    assert "20 mirrored pairs, 3 skipped (busy), 7 skipped (over max_per_s), 1 failed on green" in drawn(state)
