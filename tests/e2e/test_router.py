"""The router end to end: a real `bluegreen serve` process in front of real HTTP upstreams."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import psutil
import pytest

from router.proxy.routing import colour_for_key
from router.weights import Colour, percent_to_bp
from tests.e2e.helpers import ADMIN_TOKEN, stream_arrivals, wait_until
from tests.e2e.http_upstream import HttpUpstream

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
QUESTION = {"question": "Что такое договор?"}


@pytest.fixture
def router(start_router, upstreams: dict[Colour, HttpUpstream]):
    return start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url)


def set_green(url: str, percent: float) -> None:
    response = httpx.put(f"{url}/admin/weights", json={"green": percent}, headers=AUTH)
    assert response.status_code == 200, response.text


def status(url: str) -> dict:
    return httpx.get(f"{url}/admin/status", headers=AUTH).json()


def ask(client: httpx.Client, url: str, session: str | None = None, **body) -> httpx.Response:
    headers = {"X-Session-ID": session} if session else {}
    return client.post(f"{url}/api/v1/chat/legal", json={**QUESTION, **body}, headers=headers)


def test_sessions_follow_the_weights_key_for_key(router) -> None:
    async def colours(keys: list[str]) -> list[str]:
        async with httpx.AsyncClient(timeout=30) as client:
            semaphore = asyncio.Semaphore(16)

            async def one(key: str) -> str:
                async with semaphore:
                    r = await client.post(f"{router.url}/api/v1/chat/legal", json=QUESTION, headers={"X-Session-ID": key})
                    assert r.status_code == 200 and r.json()["colour"] == r.headers["x-backend"]
                    return r.headers["x-backend"]

            return await asyncio.gather(*(one(k) for k in keys))

    keys = [f"user-{i}" for i in range(300)]
    for percent in (1, 25, 50, 99):
        set_green(router.url, percent)
        got = asyncio.run(colours(keys))
        expected = [colour_for_key(k, percent_to_bp(percent)).value for k in keys]
        assert got == expected, f"router and the assignment rule disagree at {percent} %"


def test_cookie_sessions_are_sticky_and_keyless_requests_split(router) -> None:
    set_green(router.url, 50)
    with httpx.Client(timeout=10) as client:
        first = ask(client, router.url)
        assert first.cookies.get("bg_sid") and first.headers["x-request-id"]
        colour = first.headers["x-backend"]
        assert all(ask(client, router.url).headers["x-backend"] == colour for _ in range(10))  # the cookie holds
        assert "set-cookie" not in ask(client, router.url).headers
    greens = 0
    with httpx.Client(timeout=10) as forgetful:
        for _ in range(300):
            forgetful.cookies.clear()  # no cookie, no session header: a new random session each time
            greens += ask(forgetful, router.url).headers["x-backend"] == "green"
    assert 0.33 < greens / 300 < 0.67  # a fair split: sd 0.029, bounds 5.8 sd wide


def test_headers_to_and_from_the_backend(router, upstreams) -> None:
    set_green(router.url, 0)
    response = httpx.post(f"{router.url}/api/v1/chat/legal", json=QUESTION, headers={
        "X-Request-ID": "req-42", "X-Forwarded-For": "203.0.113.7", "Connection": "keep-alive, X-Secret",
        "Keep-Alive": "timeout=5", "X-Secret": "only for the router", "X-Session-ID": "s-1"})
    assert response.headers["x-request-id"] == "req-42" and response.headers["x-backend"] == "blue"
    assert len(response.headers.get_list("date")) == 1
    seen = upstreams[Colour.blue].seen.last_headers
    assert seen["x-request-id"] == "req-42"
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-session-id"] == "s-1"
    assert "keep-alive" not in seen and "x-secret" not in seen
    assert seen.get("connection", "keep-alive") == "keep-alive"  # the router's own pooled connection


def test_a_pooled_connection_the_backend_closed_is_replaced(router, upstreams) -> None:
    set_green(router.url, 0)
    with httpx.Client(timeout=10) as client:
        assert ask(client, router.url, session="p").status_code == 200
        time.sleep(2.5)  # the upstream closes idle keep-alive connections after 1 s
        assert [ask(client, router.url, session="p").status_code for _ in range(3)] == [200] * 3
    assert status(router.url)["backends"]["blue"]["window"]["errors"] == 0


def test_stream_passes_through_unbuffered(router, upstreams) -> None:
    set_green(router.url, 100)
    colour, arrivals = stream_arrivals(router.url)
    assert colour == "green"
    assert [d for _, d in arrivals] == ["green-0", "green-1", "green-2", "green-3"]
    # The first event reached the client before the upstream had even sent its last one.
    assert arrivals[0][0] < upstreams[Colour.green].seen.last_event_sent_at
    assert arrivals[-1][0] - arrivals[0][0] > 0.8


def _open_from_port(pid: int, local_port: int) -> bool:
    return any(c.laddr.port == local_port and c.status == psutil.CONN_ESTABLISHED
               for c in psutil.Process(pid).net_connections(kind="tcp"))


def test_client_disconnect_closes_the_upstream_stream(router, upstreams) -> None:
    set_green(router.url, 100)
    green = upstreams[Colour.green]
    with httpx.stream("POST", f"{router.url}/api/v1/chat/legal", timeout=30,
                      json={**QUESTION, "stream": True, "events": 200, "delay_s": 0.05}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        assert green.seen.streams_open == 1
        assert _open_from_port(router.pid, green.seen.stream_peer_port)
    wait_until(lambda: green.seen.streams_cut == 1 and green.seen.streams_open == 0)
    wait_until(lambda: not _open_from_port(router.pid, green.seen.stream_peer_port))  # closed, not pooled
    assert ask(httpx.Client(timeout=10), router.url).status_code == 200  # the router is fine afterwards


@pytest.mark.parametrize("failure", ["status_503", "first_byte_timeout"])
def test_green_failure_before_the_first_byte_is_retried_on_blue(start_router, upstreams, failure: str) -> None:
    green = upstreams[Colour.green]
    router = start_router(upstreams[Colour.blue].url, green.url, env={"BLUEGREEN_TIMEOUTS__FIRST_BYTE_S": "0.5"})
    set_green(router.url, 100)
    if failure == "status_503":
        green.behaviour.fail_status = 503
    else:
        green.behaviour.first_byte_delay_s = 2.0
    with httpx.Client(timeout=10) as client:
        for i in range(3):
            response = ask(client, router.url, session=f"s{i}")
            assert response.status_code == 200, response.text
            assert response.headers["x-backend"] == "blue" and response.headers["x-retried-from"] == "green"
    window = status(router.url)["backends"]["green"]["window"]
    assert window["errors"] == 3  # hidden from the clients, still counted against green
    kind = "status" if failure == "status_503" else "first_byte_timeout"
    metrics = httpx.get(f"{router.url}/metrics").text
    assert f'bluegreen_upstream_errors_total{{colour="green",kind="{kind}"}} 3.0' in metrics
    assert f'bluegreen_retries_total{{kind="{kind}"}} 3.0' in metrics


def test_green_that_dies_is_retried_then_taken_out_of_rotation(start_router, upstreams) -> None:
    doomed = HttpUpstream("green").start()
    router = start_router(upstreams[Colour.blue].url, doomed.url, env={"BLUEGREEN_PROBES__INTERVAL_S": "30"})
    set_green(router.url, 100)
    assert ask(httpx.Client(timeout=10), router.url, session="a").headers["x-backend"] == "green"
    doomed.stop()  # connections are refused from now on
    with httpx.Client(timeout=10) as client:
        first = ask(client, router.url, session="a")
        assert first.status_code == 200 and first.headers["x-retried-from"] == "green"
        # The refused connection woke the probe at once (the interval is 30 s): green is out.
        wait_until(lambda: not status(router.url)["backends"]["green"]["ready"], timeout_s=5)
        later = ask(client, router.url, session="a")
        assert later.headers["x-backend"] == "blue" and "x-retried-from" not in later.headers
    assert 'bluegreen_upstream_errors_total{colour="green",kind="connect"} 1.0' in httpx.get(f"{router.url}/metrics").text


@pytest.mark.parametrize("blue_headroom", [False, True])
def test_with_the_retry_budget_spent_only_blue_s_headroom_spares_the_client(start_router, upstreams,
                                                                          blue_headroom: bool) -> None:
    router = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url,
                          env={"BLUEGREEN_RETRY__BUDGET_PERCENT": "0", "BLUEGREEN_RETRY__MIN_CONCURRENCY": "0",
                               "BLUEGREEN_RETRY__BLUE_HEADROOM": str(blue_headroom).lower(),
                               "BLUEGREEN_OUTLIERS__ENABLED": "false"})
    set_green(router.url, 100)
    upstreams[Colour.green].behaviour.fail_status = 500
    response = ask(httpx.Client(timeout=10), router.url, session="s")
    if blue_headroom:  # blue carries nothing now, less than it did before the rollout: it takes the retry
        assert response.status_code == 200 and response.headers["x-retried-from"] == "green"
        return
    assert response.status_code == 500 and response.headers["x-backend"] == "green"
    assert "fails on purpose" in response.text and "x-retried-from" not in response.headers
    assert 'bluegreen_retries_denied_total{reason="budget"} 1.0' in httpx.get(f"{router.url}/metrics").text


def test_a_backend_that_is_not_ready_gets_no_traffic(router, upstreams) -> None:
    set_green(router.url, 100)
    upstreams[Colour.green].behaviour.ready_status = 503
    wait_until(lambda: not status(router.url)["backends"]["green"]["ready"])
    with httpx.Client(timeout=10) as client:
        assert {ask(client, router.url, session=f"k{i}").headers["x-backend"] for i in range(10)} == {"blue"}
    upstreams[Colour.green].behaviour.ready_status = 200
    wait_until(lambda: status(router.url)["backends"]["green"]["ready"])
    kinds = [e["kind"] for e in httpx.get(f"{router.url}/admin/events", headers=AUTH).json()["events"]]
    assert "backend_unready" in kinds and "backend_ready" in kinds
    assert ask(httpx.Client(timeout=10), router.url, session="k0").headers["x-backend"] == "green"


ADMIN_ROUTES = [("GET", "/admin/status", None), ("PUT", "/admin/weights", {"green": 10}), ("GET", "/admin/events", None)]


def test_every_admin_route_needs_the_token(router) -> None:
    for method, path, body in ADMIN_ROUTES:
        missing = httpx.request(method, router.url + path, json=body)
        assert missing.status_code == 401 and "Bearer" in missing.json()["error"]["message"], path
        wrong = httpx.request(method, router.url + path, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, path
        assert httpx.request(method, router.url + path, json=body, headers=AUTH).status_code == 200, path


def test_without_a_configured_token_changes_are_refused(start_router, upstreams) -> None:
    router = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url, env={"BLUEGREEN_ADMIN_TOKEN": ""})
    refused = httpx.put(f"{router.url}/admin/weights", json={"green": 10})
    assert refused.status_code == 503 and "BLUEGREEN_ADMIN_TOKEN" in refused.json()["error"]["message"]
    assert httpx.get(f"{router.url}/admin/status").json()["weights"]["green"] == 0


@pytest.mark.parametrize("body", [
    '{"green": -1}', '{"green": 101}', '{"green": "abc"}', '{"green": NaN}', '{"green": 10, "colour": "x"}',
    '{"green": 12.345}', '{"green": 30, "blue": 30}', '{}', 'not json', '{"green": true}',
])
def test_bad_weights_are_refused_and_change_nothing(router, body: str) -> None:
    set_green(router.url, 40)
    events_before = httpx.get(f"{router.url}/admin/events", headers=AUTH).json()["last_id"]
    response = httpx.put(f"{router.url}/admin/weights", content=body,
                         headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert status(router.url)["weights"] == {"blue": 60.0, "green": 40.0}
    assert httpx.get(f"{router.url}/admin/events", headers=AUTH).json()["last_id"] == events_before


def test_admin_bodies_that_are_too_big_or_not_json_are_refused_unread(router) -> None:
    """413 over 64 KiB (announced or chunked, token or not), 415 for a form body (curl -d's default),
    and a chunked JSON body within the limit still reaches the route. The 413 reaches a client that
    writes the whole body before it reads (a raw socket, urllib3), not only one that reads on a failed write."""
    import socket
    from urllib.parse import urlsplit

    def raw_put(body: bytes, chunked: bool) -> int:
        """The status line a client gets that sends all of `body` first and reads only then."""
        where = urlsplit(router.url)
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
        if chunked:
            body = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65_536]), body[i:i + 65_536])
                            for i in range(0, len(body), 65_536)) + b"0\r\n\r\n"
        with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
            sock.sendall(b"PUT /admin/weights HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n"
                         b"Content-Type: application/json\r\n%s\r\n\r\n"
                         % (where.netloc.encode(), AUTH["Authorization"].encode(), framing) + body)
            return int(sock.makefile("rb").readline().split()[1])

    set_green(router.url, 40)
    events_before = httpx.get(f"{router.url}/admin/events", headers=AUTH).json()["last_id"]
    form = httpx.put(f"{router.url}/admin/weights", content='{"green": 25}',
                     headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415 and "Content-Type: application/json" in form.json()["error"]["message"]
    huge = b'{"green": 25, "reason": "' + b"x" * 5_000_000 + b'"}'
    for headers in (AUTH, {}):
        too_big = httpx.put(f"{router.url}/admin/weights", content=huge,
                            headers={**headers, "Content-Type": "application/json"})
        assert too_big.status_code == 413 and "64 KiB" in too_big.json()["error"]["message"]

    def chunks(body: bytes):
        for start in range(0, len(body), 16_384):
            yield body[start:start + 16_384]

    chunked = httpx.put(f"{router.url}/admin/weights", content=chunks(huge),
                        headers={**AUTH, "Content-Type": "application/json"})
    assert chunked.status_code == 413
    for is_chunked in (False, True):
        assert raw_put(huge, is_chunked) == 413
    assert status(router.url)["weights"] == {"blue": 60.0, "green": 40.0}
    assert httpx.get(f"{router.url}/admin/events", headers=AUTH).json()["last_id"] == events_before
    fine = httpx.put(f"{router.url}/admin/weights", content=chunks(b'{"green": 25, "reason": "chunked"}'),
                     headers={**AUTH, "Content-Type": "application/json"})
    assert fine.status_code == 200 and status(router.url)["weights"]["green"] == 25


def test_weights_and_events_survive_a_restart(start_router, upstreams, tmp_path: Path) -> None:
    state = tmp_path / "kept.db"
    first = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url, state=state)
    set_green(first.url, 37.5)
    first.kill()  # a crash, not a clean stop
    second = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url, state=state)
    assert status(second.url)["weights"] == {"blue": 62.5, "green": 37.5}
    events = httpx.get(f"{second.url}/admin/events", headers=AUTH).json()["events"]
    assert [e["kind"] for e in events][:2] == ["initialised", "weights_changed"]
    assert events[1]["after"] == {"blue": 62.5, "green": 37.5} and events[1]["actor"] == "admin"
    key = next(f"k{i}" for i in range(100) if colour_for_key(f"k{i}", 3750) is Colour.green)
    assert ask(httpx.Client(timeout=10), second.url, session=key).headers["x-backend"] == "green"


def test_a_state_that_cannot_be_written_refuses_the_change(router, tmp_path: Path) -> None:
    set_green(router.url, 20)
    blocker = sqlite3.connect(tmp_path / "router.db", timeout=1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the file: every write of the router fails
    try:
        refused = httpx.put(f"{router.url}/admin/weights", json={"green": 80}, headers=AUTH, timeout=10)
        assert refused.status_code == 503 and "last good weights" in refused.json()["error"]["message"]
        assert status(router.url)["weights"]["green"] == 20
        assert ask(httpx.Client(timeout=10), router.url, session="x").status_code == 200
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    set_green(router.url, 80)


def test_rate_limits_by_tier(start_router, upstreams) -> None:
    router = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url,
                          env={"BLUEGREEN_RATE_LIMIT__TIERS": '{"free": 3, "premium": 5}'})
    with httpx.Client(timeout=10) as client:
        def as_user(user: str, tier: str | None = None) -> httpx.Response:
            headers = {"X-User-ID": user, **({"X-User-Tier": tier} if tier else {})}
            return client.post(f"{router.url}/api/v1/chat/legal", json=QUESTION, headers=headers)

        assert [as_user("ivan").status_code for _ in range(4)] == [200, 200, 200, 429]
        limited = as_user("ivan")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) == 1200
        assert "3 requests per hour" in limited.json()["error"]["message"]
        assert [as_user("olga", "premium").status_code for _ in range(6)] == [200] * 5 + [429]
        assert as_user("petr", "unknown-tier").status_code == 200  # unknown tiers get the default tier
        assert all(ask(client, router.url).status_code == 200 for _ in range(5))  # anonymous: not limited


def test_body_over_the_limit_is_refused_before_any_backend_sees_it(router, upstreams) -> None:
    before = sum(u.seen.requests for u in upstreams.values())
    response = httpx.post(f"{router.url}/api/v1/chat/legal", json={"question": "я" * 70_000})
    assert response.status_code == 413 and "65536-byte limit" in response.json()["error"]["message"]
    assert sum(u.seen.requests for u in upstreams.values()) == before


def test_metrics_and_status_report_each_colour(router) -> None:
    set_green(router.url, 50)
    with httpx.Client(timeout=10) as client:
        for i in range(40):
            ask(client, router.url, session=f"m{i}")
    metrics = httpx.get(f"{router.url}/metrics").text
    for name in ("bluegreen_requests_total", "bluegreen_request_duration_seconds_bucket",
                 "bluegreen_time_to_first_token_seconds_bucket", "bluegreen_in_flight_requests",
                 'bluegreen_weight_percent{colour="green"} 50.0', 'bluegreen_backend_ready{colour="blue"} 1.0',
                 'bluegreen_rollout_phase{phase="idle"} 1.0'):
        assert name in metrics
    assert 'le="0.0005"' in metrics
    report = status(router.url)
    served = {c: report["backends"][c]["window"]["requests"] for c in ("blue", "green")}
    assert served["blue"] + served["green"] == 40 and min(served.values()) > 0
    assert report["phase"] == "idle" and report["stable"] == "blue"
    assert httpx.get(f"{router.url}/openapi.json").json()["paths"]["/admin/weights"]["put"]


def test_real_engines_behind_the_router(start_router, llama_backend, hf_backend) -> None:
    """Blue is llama.cpp on the GGUF file, green is transformers on the checkpoint, both real."""
    from openai import OpenAI

    router = start_router(llama_backend.url, hf_backend.url)
    set_green(router.url, 50)
    keys = {colour: next(f"r{i}" for i in range(100) if colour_for_key(f"r{i}", 5000) is colour) for colour in Colour}
    engines = {Colour.blue: "llama_cpp", Colour.green: "transformers"}
    with httpx.Client(timeout=60) as client:
        for colour, key in keys.items():
            answer = ask(client, router.url, session=key, max_tokens=8, temperature=0)
            assert answer.status_code == 200 and answer.headers["x-backend"] == colour.value
            assert answer.json()["engine"] == engines[colour] and answer.json()["usage"]["completion_tokens"] > 0
    openai = OpenAI(base_url=f"{router.url}/v1", api_key="unused", default_headers={"X-Session-ID": keys[Colour.green]})
    chunks = list(openai.chat.completions.create(model="any", messages=[{"role": "user", "content": "Что такое иск?"}],
                                                 max_tokens=8, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    report = status(router.url)["backends"]
    assert report["blue"]["window"]["requests"] == 1 and report["green"]["window"]["requests"] == 2
    assert report["green"]["window"]["ttft_p95_s"] is not None
