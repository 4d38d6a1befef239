"""What green says, judged on real backends. The shadow phase: live requests mirrored to green, its
answers judged before any user reaches it; greens that answer HTTP 200 with bad text are rejected
while shadowing (the cutover exits 2), no client ever gets a green answer, and nobody sees an
error; a healthy green passes. The live answer checks: a green that goes bad once users reach it is
rolled back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from model_backends.tiny.build import TinyModels
from testkit.services import BackendProcess
from testkit.traffic import LoadDriver
from tests.e2e.helpers import ADMIN_TOKEN, AUTH, FAST, events, metric_total

SHADOW = {**FAST, "BLUEGREEN_ROLLOUT__SHADOW__ENABLED": "true", "BLUEGREEN_ROLLOUT__SHADOW__MIN_PAIRS": "8",
          "BLUEGREEN_ROLLOUT__SHADOW__MAX_DURATION_S": "60"}
BREACHES = {"latin": "non-Russian answers", "empty": "empty answers", "repeat": "looping answers"}


@pytest.fixture(params=["healthy", *sorted(BREACHES)])
def green(request: pytest.FixtureRequest, tiny_models: TinyModels, logs_dir: Path) -> Iterator[tuple[str, BackendProcess]]:
    fault = request.param
    # After the warm-up's three golden questions (which would catch an empty answer on their own).
    drill = [] if fault == "healthy" else ["--fault-answer", fault, "--fault-after", "3"]
    args = ["--engine", "llama_cpp", "--model", str(tiny_models.gguf_path), "--model-name", "green", *drill]
    with BackendProcess(args, logs_dir / f"shadow-green-{fault}.log") as backend:
        yield fault, backend


def cutover(router_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "router.admin.cli", "cutover", "--router", router_url, "--yes",
                           "--steps", "50,100", "--interval", "1"], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"})


def test_green_is_judged_on_mirrored_live_traffic_before_any_user_reaches_it(
        start_router, llama_backend: BackendProcess, green: tuple[str, BackendProcess]) -> None:
    fault, backend = green
    router = start_router(llama_backend.url, backend.url, env=SHADOW)
    # Greedy answers: a healthy green (the same model) answers each question exactly as blue does, so the
    # pair figures (length ratio, chrF) cannot fail it by the luck of sampling over a handful of pairs.
    with LoadDriver(router.url, workers=4, max_tokens=16, stream_every=2, temperature=0) as load:
        done = cutover(router.url)
    assert load.failures == [], load.failures[:3]
    shadowed = [e for e in events(router.url) if "shadowing" in e["message"]]
    assert shadowed, "the rollout never shadowed"
    status = httpx.get(f"{router.url}/admin/status", headers=AUTH).json()
    if fault == "healthy":
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert any("shadow passed" in e["message"] for e in events(router.url))
        shadow = status["shadow"]  # the pair figures: similarity, length ratio, and the streams' gaps
        assert (shadow["canary"], shadow["stable"]) == ("green", "blue") and shadow["chrf_p50"] is not None
        assert 0.8 <= shadow["length_ratio_p50"] <= 1.25
        # (The gaps are not asserted: a tiny model's stream often reaches the router in one piece, leaving no
        # gap to measure; tests/unit/test_shadow_tally.py covers them.)
        return
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-2000:]
    assert status["rollout"]["phase"] == "failed" and BREACHES[fault] in status["rollout"]["reason"]
    assert load.colours["green"] == 0 and load.colours["blue"] == load.answered  # no user got a green answer
    assert status["shadow"]["pairs"] >= 8 and status["weights"]["green"] == 0
    assert metric_total(router.url, "bluegreen_shadow_requests_total", outcome="paired") >= 8


def test_a_green_whose_live_answers_go_bad_during_the_steps_is_rolled_back(
        start_router, llama_backend: BackendProcess, tiny_models: TinyModels, logs_dir: Path) -> None:
    # Russian through the warm-up and well past it, then English: the live checks must see it.
    args = ["--engine", "llama_cpp", "--model", str(tiny_models.gguf_path), "--fault-answer", "latin", "--fault-after", "3"]
    env = {**FAST, "BLUEGREEN_ROLLOUT__ANSWER_CHECKS__ENABLED": "true", "BLUEGREEN_ROLLOUT__ANSWER_CHECKS__PERCENT": "100",
           "BLUEGREEN_ROLLOUT__ANSWER_CHECKS__MIN_ANSWERS": "5"}
    with BackendProcess(args, logs_dir / "live-green-latin.log") as green:
        router = start_router(llama_backend.url, green.url, env=env)
        with LoadDriver(router.url, workers=4, max_tokens=16, max_requests=2000) as load:
            done = cutover(router.url)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-2000:]
    status = httpx.get(f"{router.url}/admin/status", headers=AUTH).json()
    assert status["rollout"]["phase"] == "rolled_back" and "non-Russian answers" in status["rollout"]["reason"]
    assert load.failures == [] and load.colours["green"] > 0  # users did meet green: that is what live checks are for
    assert metric_total(router.url, "bluegreen_answer_checks_total", colour="green", check="wrong_language",
                        result="fail") >= 5
