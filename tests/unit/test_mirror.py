"""The shadow mirror's limits: a sampled request dropped by `max_per_s` is counted (`over_rate`), apart
from one dropped by `max_in_flight` (`skipped`), in the metrics and in `/admin/status`'s shadow figures."""

from __future__ import annotations

import asyncio
from typing import Any

from router.errors import ProxyError
from router.metrics import RouterMetrics
from router.proxy.mirror import Capture, Mirror
from router.rollout.machine import ShadowOptions
from router.weights import Colour

ANSWER = ('{"answer": "Договор — это соглашение сторон.", "finish_reason": "stop"}', None)


def counted(metrics: RouterMetrics, outcome: str) -> float:
    return metrics.registry.get_sample_value("bluegreen_shadow_requests_total", {"outcome": outcome}) or 0.0


def capture(mirror: Mirror) -> Capture | None:
    return mirror.start("/api/v1/chat/legal", "POST", "/api/v1/chat/legal", [], b"{}", Colour.green)


def test_a_mirror_over_max_per_s_is_counted_as_over_rate_not_as_skipped() -> None:
    metrics = RouterMetrics()
    mirror = Mirror({}, ShadowOptions(max_per_s=0.001), metrics)  # one mirror per 1,000 s: the second is over
    mirror.set_active(True, Colour.green)
    assert capture(mirror) is not None
    assert capture(mirror) is None and capture(mirror) is None
    assert mirror.tally.over_rate == 2 and mirror.tally.skipped == 0
    assert counted(metrics, "over_rate") == 2 and counted(metrics, "skipped") == 0
    shadow = mirror.tally.as_dict()
    assert shadow["over_rate"] == 2 and shadow["skipped"] == 0 and shadow["canary"] == "green"


def test_a_mirror_over_max_in_flight_is_counted_as_skipped() -> None:
    started = asyncio.Event()

    class Hanging:
        async def open(self, *_args: Any) -> None:
            started.set()
            await asyncio.Event().wait()  # never answers: the mirror stays in flight

    async def run() -> Mirror:
        metrics = RouterMetrics()
        options = ShadowOptions(max_in_flight=1, max_per_s=1e12)  # no rate limit to speak of: not tested here
        mirror = Mirror({Colour.green: Hanging()}, options, metrics)  # type: ignore[dict-item]
        mirror.set_active(True, Colour.green)
        first, second = capture(mirror), capture(mirror)
        assert first is not None and second is not None
        mirror.stable_done(first, ANSWER)
        await asyncio.wait_for(started.wait(), 5)
        mirror.stable_done(second, ANSWER)
        assert counted(metrics, "mirrored") == 1 and counted(metrics, "skipped") == 1
        await mirror.stop()
        return mirror

    mirror = asyncio.run(run())
    assert mirror.tally.skipped == 1 and mirror.tally.over_rate == 0


def test_switching_mirroring_on_again_starts_both_counts_over() -> None:
    mirror = Mirror({}, ShadowOptions(max_per_s=0.001), RouterMetrics())
    mirror.set_active(True, Colour.green)
    capture(mirror), capture(mirror)
    assert mirror.tally.over_rate == 1
    mirror.set_active(False)
    mirror.set_active(True, Colour.blue)
    assert mirror.tally.as_dict()["over_rate"] == 0 and mirror.tally.as_dict()["canary"] == "blue"


def test_mirrors_waiting_longer_than_any_answer_the_canary_gave_are_overdue() -> None:
    class HangsOnSecond:
        calls = 0

        async def open(self, *_args: Any) -> None:
            type(self).calls += 1
            if type(self).calls == 1:
                raise ProxyError("refused")  # a quick failure: no answer, so it sets no answer time
            await asyncio.Event().wait()

    async def run() -> tuple[int, int]:
        mirror = Mirror({Colour.green: HangsOnSecond()}, ShadowOptions(max_per_s=1e12), RouterMetrics())  # type: ignore[dict-item]
        mirror.set_active(True, Colour.green)
        for _ in range(2):
            sent = capture(mirror)
            assert sent is not None
            mirror.stable_done(sent, ANSWER)
            await asyncio.sleep(0.05)
        mirror.tally.longest_s = 0.2  # as if the canary had answered others within 0.2 s
        early = mirror.overdue()
        await asyncio.sleep(0.3)
        late = mirror.overdue()
        await mirror.stop()
        return early, late

    assert asyncio.run(run()) == (0, 1)  # the failed one is not waiting; the hanging one is, once past 0.2 s
