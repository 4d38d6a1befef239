"""Helpers the end-to-end tests share: waiting, the admin token, and driving a rollout."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import httpx

ADMIN_TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FAST = {  # short steps so a whole rollout takes seconds
    "BLUEGREEN_ROLLOUT__JUDGE__MIN_REQUESTS": "5",
    "BLUEGREEN_ROLLOUT__TICK_S": "0.2",
    "BLUEGREEN_ROLLOUT__KEEP_OLD_S": "0",
    "BLUEGREEN_WINDOW_S": "10",
    # As many retries in flight as the load driver has clients, so the budget never leaks a green error
    # (the budget's own limit is tested in test_router.py).
    "BLUEGREEN_RETRY__MIN_CONCURRENCY": "4",
    # The small test servers answer a fixed line, not legal Russian: the shadow phase and the live
    # answer checks are tested on their own, on real backends (test_shadow.py).
    "BLUEGREEN_ROLLOUT__SHADOW__ENABLED": "false",
    "BLUEGREEN_ROLLOUT__ANSWER_CHECKS__ENABLED": "false",
}


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def start(url: str, steps: Sequence[float] = (20, 50, 100), interval_s: float = 1.0) -> httpx.Response:
    return httpx.post(f"{url}/admin/rollout", json={"steps": list(steps), "interval_s": interval_s}, headers=AUTH, timeout=30)


def rollout(url: str) -> dict:
    return httpx.get(f"{url}/admin/rollout", headers=AUTH).json()


def events(url: str) -> list[dict]:
    """The newest 1,000 events, oldest first (a long-lived test router may have more: `[-1]` is the newest)."""
    return httpx.get(f"{url}/admin/events", params={"latest": 1000}, headers=AUTH).json()["events"]


def admin_status(url: str) -> dict:
    return httpx.get(f"{url}/admin/status", headers=AUTH).json()


def event_kinds(url: str) -> list[str]:
    return [event["kind"] for event in events(url)]


def wait_for_phase(url: str, phases: set[str], timeout_s: float = 40.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while (current := rollout(url))["phase"] not in phases:
        assert time.monotonic() < deadline, f"still {current['phase']}: {current.get('reason')}"
        time.sleep(0.1)
    return current


def stream_arrivals(url: str, events: int = 4, delay_s: float = 0.4) -> tuple[str, list[tuple[float, str]]]:
    """Ask for a stream of `events` deltas `delay_s` apart: (X-Backend, [(arrival time, delta), ...])."""
    arrivals = []
    with httpx.stream("POST", f"{url}/api/v1/chat/legal", timeout=30,
                      json={"question": "Что такое договор?", "stream": True, "events": events, "delay_s": delay_s}) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                arrivals.append((time.monotonic(), json.loads(line[6:])["delta"]))
    return response.headers["x-backend"], arrivals


def metric_total(url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples at `url`/metrics whose labels include `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics").text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def assert_restarted(url: str, colour: str) -> None:
    """A runtime-managed backend that crashed is ready again, recorded, and counted as one restart."""
    wait_until(lambda: admin_status(url)["backends"][colour]["ready"], timeout_s=60)
    assert "backend_crashed" in event_kinds(url)
    assert admin_status(url)["runtime"][colour]["restarts"] == 1


def promote_under_load(url: str, steps: Sequence[float] = (50, 100)) -> None:
    """Run a rollout to the end under client load: promoted, green served, no client error."""
    from testkit.traffic import LoadDriver

    with LoadDriver(url) as load:
        assert start(url, steps=steps, interval_s=1).status_code == 201
        assert wait_for_phase(url, {"promoted", "rolled_back", "failed"}, timeout_s=90)["phase"] == "promoted"
    assert load.failures == [] and load.colours["green"] > 0
