"""No client error at any weight: a failing green is ejected at once and blue takes its share back.

Real `bluegreen serve` processes in front of small real HTTP servers (or, for the crash drill, real
upstream processes that are SIGKILLed); eight concurrent clients; bounded in requests and time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from router.weights import Colour
from testkit.echo_upstream import EchoUpstream
from testkit.traffic import LoadDriver
from tests.e2e.helpers import AUTH, FAST, events, metric_total, start, wait_for_phase, wait_until
from tests.e2e.http_upstream import HttpUpstream

CLIENTS = 8
HELD_AT_HALF = {**FAST, "BLUEGREEN_ROLLOUT__JUDGE__HARD_MIN_REQUESTS": "1000"}  # only the ejection can roll back


def _cutover_held_at_half(router_url: str) -> None:
    assert start(router_url, steps=[50, 100], interval_s=600).status_code == 201
    wait_for_phase(router_url, {"progressing"})


def _drill(router_url: str, break_green: Callable[[], None], reasons: tuple[str, ...] = ("ejected",)) -> LoadDriver:
    """Clients at 50 %, then green breaks; returns once the rollout rolled back and clients saw more."""
    with LoadDriver(router_url, workers=CLIENTS) as load:
        _cutover_held_at_half(router_url)
        wait_until(lambda: load.colours["green"] >= 20, timeout_s=20)
        break_green()
        done = wait_for_phase(router_url, {"rolled_back", "promoted", "failed"}, timeout_s=30)
        answered = load.answered
        wait_until(lambda: load.answered >= answered + 50, timeout_s=20)
    assert done["phase"] == "rolled_back" and any(r in done["reason"] for r in reasons), done["reason"]
    return load


def test_a_green_that_starts_answering_500_costs_clients_nothing(start_router, upstreams) -> None:
    green = upstreams[Colour.green]
    router = start_router(upstreams[Colour.blue].url, green.url, env=HELD_AT_HALF)

    def answer_500() -> None:
        green.behaviour.fail_status = 500

    load = _drill(router.url, answer_500)
    assert load.failures == [], load.failures[:5]
    assert metric_total(router.url, "bluegreen_ejections_total", colour="green") >= 1
    assert "backend_ejected" in {e["kind"] for e in events(router.url)}


def test_a_green_that_is_killed_costs_clients_nothing(start_router, tmp_path: Path) -> None:
    blue = EchoUpstream([], tmp_path / "blue.log")
    green = EchoUpstream([], tmp_path / "green.log")
    with blue, green:
        router = start_router(blue.url, green.url, env=HELD_AT_HALF)
        load = _drill(router.url, green.kill, reasons=("ejected", "not ready"))  # whichever sees it first
    assert load.failures == [], load.failures[:5]
    assert load.statuses[200] == load.answered


@pytest.mark.parametrize("ejection", [True, False])
def test_both_colours_failing_retry_at_most_once_and_blue_is_never_ejected_too(start_router, upstreams,
                                                                              ejection: bool) -> None:
    blue, green = upstreams[Colour.blue], upstreams[Colour.green]
    router = start_router(blue.url, green.url, env={**FAST, "BLUEGREEN_OUTLIERS__ENABLED": str(ejection).lower()})
    assert httpx.put(f"{router.url}/admin/weights", json={"green": 50}, headers=AUTH).status_code == 200
    blue.behaviour.fail_status = green.behaviour.fail_status = 500
    with LoadDriver(router.url, workers=CLIENTS, max_requests=400) as load:
        wait_until(lambda: load.answered >= 400, timeout_s=30)
    assert load.statuses[500] == load.answered  # the errors show: nothing could answer
    retries = metric_total(router.url, "bluegreen_retries_total")
    assert retries <= green.seen.requests  # one retry at most per request that went to green
    assert blue.seen.requests + green.seen.requests <= load.answered + retries
    backends = httpx.get(f"{router.url}/admin/status", headers=AUTH).json()["backends"]
    ejected = [colour for colour in ("blue", "green") if backends[colour]["ejection"]]
    if ejection:  # green went first; blue keeps serving, its errors showing
        assert ejected == ["green"], backends
    else:  # beyond the budget, a failing blue gets no more retries: no storm
        assert ejected == [] and metric_total(router.url, "bluegreen_retries_denied_total", reason="blue_failing") > 0


def test_a_flapping_green_is_ejected_then_readmitted_with_events(start_router, upstreams) -> None:
    green = upstreams[Colour.green]
    env = {**FAST, "BLUEGREEN_OUTLIERS__BASE_EJECTION_S": "1"}
    router = start_router(upstreams[Colour.blue].url, green.url, env=env)
    assert httpx.put(f"{router.url}/admin/weights", json={"green": 50}, headers=AUTH).status_code == 200

    def kinds() -> list[str]:
        return [e["kind"] for e in events(router.url) if e["kind"] in ("backend_ejected", "backend_readmitted")]

    # Enough requests for the whole drill on a fast machine: the test servers answer in well under a ms.
    with LoadDriver(router.url, workers=CLIENTS) as load:
        for flaps in (1, 2):
            green.behaviour.fail_status = 500
            wait_until(lambda n=flaps: kinds().count("backend_ejected") == n, timeout_s=10)
            green.behaviour.fail_status = None
            wait_until(lambda n=flaps: kinds().count("backend_readmitted") == n, timeout_s=15)
            served = load.colours["green"]
            wait_until(lambda before=served: load.colours["green"] > before + 10, timeout_s=10)  # green serves again
    assert load.failures == []
    ejections = [e for e in events(router.url) if e["kind"] == "backend_ejected"]
    assert [e["after"]["count"] for e in ejections] == [1, 2]  # the second ejection lasts longer
    assert "for 2 s" in ejections[1]["message"]


def test_the_status_shows_an_ejection(start_router, upstreams: dict[Colour, HttpUpstream]) -> None:
    green = upstreams[Colour.green]
    router = start_router(upstreams[Colour.blue].url, green.url, env=FAST)
    assert httpx.put(f"{router.url}/admin/weights", json={"green": 100}, headers=AUTH).status_code == 200
    green.behaviour.fail_status = 503
    with httpx.Client() as client:
        answers = [client.post(f"{router.url}/api/v1/chat/legal", json={"question": "?"}) for _ in range(6)]
    assert all(a.status_code == 200 and a.headers["x-backend"] == "blue" for a in answers)
    backends = httpx.get(f"{router.url}/admin/status", headers=AUTH).json()["backends"]
    assert "5 failures in a row" in backends["green"]["ejection"]
