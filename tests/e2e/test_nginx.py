"""The nginx data plane with a real nginx: rendering, agreement with the Python data plane,
streaming, retry to blue, graceful reloads, and the router driving it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from router.dataplanes.nginx_process import NginxProcess, local_nginx_options
from router.errors import NginxError
from router.proxy.routing import colour_for_key
from router.weights import Colour, percent_to_bp
from tests.e2e.helpers import stream_arrivals, wait_until
from tests.e2e.http_upstream import HttpUpstream

QUESTION = {"question": "Что такое договор?"}


@pytest.fixture
def nginx(upstreams, tmp_path: Path):
    with NginxProcess(local_nginx_options(tmp_path / "nginx"), upstreams[Colour.blue].url, upstreams[Colour.green].url) as server:
        yield server


@pytest.mark.parametrize("percent", [0, 0.01, 5, 50, 99.99, 100])
def test_rendered_configs_pass_nginx_t(tmp_path: Path, percent: float) -> None:
    options = local_nginx_options(tmp_path)
    server = NginxProcess(options, "http://127.0.0.1:8001", "http://127.0.0.1:8002")
    tested = server.plane.validate(percent_to_bp(percent))  # raises with nginx's words if `nginx -t` fails
    block = tested.read_text().split("$bg_colour {")[1].split("}")[0]
    entries = [line.strip() for line in block.splitlines() if line.strip()]
    expected = {0: ["* blue;"], 100: ["* green;"]}.get(percent, [f"{percent:.2f}% green;", "* blue;"])
    assert entries == expected


def test_nginx_rejects_a_bad_setting_with_its_own_words(tmp_path: Path) -> None:
    bad = local_nginx_options(tmp_path).model_copy(update={"limit_req_rate": "fast"})  # past our checks: nginx's own words
    server = NginxProcess(bad, "http://127.0.0.1:8001", "http://127.0.0.1:8002")
    with pytest.raises(NginxError, match="invalid rate"):
        server.plane.validate(5000)


def test_nginx_picks_the_same_colour_as_the_python_data_plane(nginx) -> None:
    keys = [f"session-{i}-ключ" for i in range(2000)]

    async def colours() -> list[str]:
        async with httpx.AsyncClient(timeout=30) as client:
            semaphore = asyncio.Semaphore(32)

            async def one(key: str) -> str:
                async with semaphore:
                    r = await client.post(f"{nginx.url}/api/v1/chat/legal", json=QUESTION,
                                          headers={"X-Session-ID": key.encode()})
                    assert r.status_code == 200
                    return r.headers["x-backend"]

            return await asyncio.gather(*(one(k) for k in keys))

    for percent in (1, 37.5, 99.99):
        nginx.set_green(percent_to_bp(percent))
        expected = [colour_for_key(k, percent_to_bp(percent)).value for k in keys]
        assert asyncio.run(colours()) == expected, f"nginx and the Python data plane disagree at {percent} %"


def test_cookieless_clients_split_and_then_stick(nginx) -> None:
    nginx.set_green(5000)
    greens = 0
    with httpx.Client(timeout=10) as client:
        for _ in range(400):
            client.cookies.clear()
            response = client.post(f"{nginx.url}/api/v1/chat/legal", json=QUESTION)
            greens += response.headers["x-backend"] == "green"
            cookie = response.cookies.get("bg_sid")
            assert cookie and colour_for_key(cookie, 5000).value == response.headers["x-backend"]
        colour = response.headers["x-backend"]
        assert all(client.post(f"{nginx.url}/api/v1/chat/legal", json=QUESTION).headers["x-backend"] == colour
                   for _ in range(5))
    # A fair split of 400 random cookies: sd 0.025, so these bounds are 5.6 sd wide (a broken split,
    # all one colour or a skewed hash, still fails; sampling luck does not).
    assert 0.36 < greens / 400 < 0.64


def test_sse_arrives_unbuffered_through_nginx(nginx, upstreams) -> None:
    nginx.set_green(10_000)
    colour, arrivals = stream_arrivals(nginx.url)
    assert colour == "green"
    assert len(arrivals) == 4 and arrivals[0][0] < upstreams[Colour.green].seen.last_event_sent_at


@pytest.mark.parametrize("stable", list(Colour))
def test_canary_failures_are_retried_on_the_stable_colour(upstreams, tmp_path: Path, stable: Colour) -> None:
    """After a promotion green is stable and blue the canary: the retry and the ejection turn round too."""
    canary = stable.other
    doomed = HttpUpstream(canary.value).start()
    urls = {stable: upstreams[stable].url, canary: doomed.url}
    green_bp = 10_000 if canary is Colour.green else 0  # all traffic on the canary
    with NginxProcess(local_nginx_options(tmp_path / "n"), urls[Colour.blue], urls[Colour.green], green_bp,
                      stable=stable) as server:
        doomed.behaviour.fail_status = 502
        with httpx.Client(timeout=10) as client:
            answers = [client.post(f"{server.url}/api/v1/chat/legal", json=QUESTION, headers={"X-Session-ID": f"k{i}"})
                       for i in range(5)]
            assert [(a.status_code, a.headers["x-backend"]) for a in answers] == [(200, stable.value)] * 5
            doomed.stop()  # now it refuses connections
            answers = [client.post(f"{server.url}/api/v1/chat/legal", json=QUESTION, headers={"X-Session-ID": f"k{i}"})
                       for i in range(5)]
            assert [(a.status_code, a.headers["x-backend"]) for a in answers] == [(200, stable.value)] * 5
        log = [json.loads(line) for line in (tmp_path / "n" / "logs" / "access.json").read_text().splitlines()]
        assert log[0]["colour"] == canary.value and log[0]["upstream_status"].startswith("502")


def test_the_stable_colour_is_never_retried_on_the_canary(upstreams, tmp_path: Path) -> None:
    """Green stable and failing, blue the canary at 0 %: green's failures reach the client, not blue."""
    doomed = HttpUpstream("green").start()
    try:
        with NginxProcess(local_nginx_options(tmp_path / "n"), upstreams[Colour.blue].url, doomed.url, 10_000,
                          stable=Colour.green) as server:
            doomed.behaviour.fail_status = 502
            answer = httpx.post(f"{server.url}/api/v1/chat/legal", json=QUESTION, timeout=10)
            assert (answer.status_code, answer.headers["x-backend"]) == (502, "green")
            assert upstreams[Colour.blue].seen.requests == 0
    finally:
        doomed.stop()


def test_twenty_reloads_under_load_lose_no_request(nginx) -> None:
    """Clients do not reuse connections across a reload (`keepalive_timeout 0` by default): an old worker
    closes its idle keep-alive connections at once, and a request sent on one just then would be lost."""
    failures: list[str] = []
    done = threading.Event()
    counts = [0]

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            while not done.is_set() and counts[0] < 20_000:
                try:
                    response = client.post(f"{nginx.url}/api/v1/chat/legal", json=QUESTION,
                                           headers={"X-Session-ID": f"s{counts[0] % 50}"})
                    if response.status_code != 200:
                        failures.append(str(response.status_code))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                counts[0] += 1

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        for i in range(20):
            nginx.set_green(percent_to_bp((i * 5) % 100), wait=False)
            time.sleep(0.1)
    finally:
        done.set()
        for worker in workers:
            worker.join(timeout=30)
    assert counts[0] > 100 and failures == []


def _router_env(options) -> dict[str, str]:
    return {"BLUEGREEN_DATA_PLANE": "nginx", "BLUEGREEN_NGINX": options.model_dump_json(),
            "BLUEGREEN_ROLLOUT__JUDGE__MIN_REQUESTS": "5", "BLUEGREEN_ROLLOUT__TICK_S": "0.2",
            "BLUEGREEN_ROLLOUT__KEEP_OLD_S": "0", "BLUEGREEN_WINDOW_S": "10", "BLUEGREEN_RETRY__MIN_CONCURRENCY": "4"}


@pytest.mark.parametrize("green_fails", [False, True])
def test_rollout_through_nginx_judged_from_its_access_log(start_router, upstreams, tmp_path: Path,
                                                          green_fails: bool) -> None:
    from testkit.traffic import LoadDriver
    from tests.e2e.helpers import AUTH, metric_total, rollout, start, wait_for_phase

    options = local_nginx_options(tmp_path / "nginx")
    blue, green = upstreams[Colour.blue], upstreams[Colour.green]
    with NginxProcess(options, blue.url, green.url) as server:
        env = {**_router_env(options), "BLUEGREEN_METRICS_PROVIDER__KIND": "nginx_log"}
        router = start_router(blue.url, green.url, env=env)
        if green_fails:
            # After the warm-up green answers 500: nginx must hand each to blue, as the built-in plane does.
            green.behaviour.fail_status, green.behaviour.fail_after_requests = 500, 3
        with LoadDriver(server.url) as load:
            assert start(router.url, steps=[30, 100], interval_s=1.5).status_code == 201
            done = wait_for_phase(router.url, {"promoted", "rolled_back", "failed"})
        status = httpx.get(f"{router.url}/admin/status", headers=AUTH).json()
        assert status["nginx"]["error"] is None
        if green_fails:
            # The judge's error rate, or nginx's ejection of green (a hard signal): whichever comes first.
            assert done["phase"] == "rolled_back", done["reason"]
            assert "green error rate" in done["reason"] or "green ejected by nginx" in done["reason"], done["reason"]
            assert status["nginx"]["applied_green_percent"] == 0
        else:
            assert done["phase"] == "promoted", done["reason"]
            assert status["nginx"]["applied_green_percent"] == 100
            assert httpx.post(f"{server.url}/api/v1/chat/legal", json=QUESTION).headers["x-backend"] == "green"
            # Green is stable now: nginx retries and ejects blue, the next canary, and never green.
            wait_until(lambda: "green stable" in options.conf_path.read_text())
            green_address = green.url.split("//")[1]
            assert (f"upstream bg_green {{\n        zone bg_green 64k;\n        server {green_address} max_fails=0;"
                    in options.conf_path.read_text())
        assert load.failures == [] and load.colours["green"] + load.colours["blue"] == load.answered
        assert rollout(router.url)["last_verdict"] is not None or green_fails
        # What nginx served is exported by the router, in the series the dashboard reads.
        served = {c: metric_total(router.url, "bluegreen_requests_total", colour=c) for c in ("blue", "green")}
        assert served["blue"] > 0 and served["green"] > 0
        green_errors = metric_total(router.url, "bluegreen_upstream_errors_total", colour="green")
        assert (green_errors > 0) == green_fails
        assert metric_total(router.url, "bluegreen_retries_total", kind="status") == green_errors  # each on blue


def test_an_nginx_ejection_is_the_routers_ejection(start_router, upstreams, tmp_path: Path) -> None:
    """nginx's passive health check takes a failing green out: the router says so as its own outlier
    detection would (event, status, metric) and says when nginx lets green back in."""
    from tests.e2e.helpers import AUTH, admin_status, events, metric_total

    # Two workers: the failure counts live in a shared zone, so the canary is ejected once, for both.
    options = local_nginx_options(tmp_path / "nginx", worker_processes="2")
    blue, green = upstreams[Colour.blue], upstreams[Colour.green]
    with NginxProcess(options, blue.url, green.url) as server:
        env = {**_router_env(options), "BLUEGREEN_OUTLIERS__BASE_EJECTION_S": "3"}  # nginx's fail_timeout 3 s
        router = start_router(blue.url, green.url, env=env)
        assert httpx.put(f"{router.url}/admin/weights", json={"green": 100}, headers=AUTH).status_code == 200
        server.wait_for_green(10_000)  # no old worker on green 0 % left to take a request
        green.behaviour.fail_status = 500
        with httpx.Client(timeout=10) as client:
            answers = [client.post(f"{server.url}/api/v1/chat/legal", json=QUESTION) for _ in range(8)]
        assert [a.status_code for a in answers] == [200] * 8  # each failure answered by blue
        assert green.seen.requests == 5  # max_fails: the sixth and later went straight to blue
        wait_until(lambda: "green ejected by nginx" in (admin_status(router.url)["backends"]["green"]["ejection"] or ""))
        ejected = [e for e in events(router.url) if e["kind"] == "backend_ejected"]
        assert [e["after"] for e in ejected] == [{"colour": "green", "kind": "nginx"}]
        assert metric_total(router.url, "bluegreen_ejections_total", colour="green", reason="nginx") == 1
        green.behaviour.fail_status = 0  # healed: nginx tries it again after fail_timeout
        wait_until(lambda: admin_status(router.url)["backends"]["green"]["ejection"] is None, timeout_s=15)
        assert "backend_readmitted" in [e["kind"] for e in events(router.url)]


def test_without_nginx_changes_are_refused_and_a_rollout_step_waits(start_router, upstreams, tmp_path: Path) -> None:
    """nginx.binary names no program: a weight change is refused (409, saying so), the status says why,
    a rollout's step is held (never committed at weights nginx does not run) and a rollback still goes through."""
    from tests.e2e.helpers import AUTH, admin_status, events, start, wait_for_phase

    options = local_nginx_options(tmp_path / "nginx", binary=str(tmp_path / "no-nginx-here"))
    router = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url, env=_router_env(options))
    refused = httpx.put(f"{router.url}/admin/weights", json={"green": 30}, headers=AUTH)
    assert refused.status_code == 409 and "not installed" in refused.json()["error"]["message"]
    wait_until(lambda: "not installed" in (admin_status(router.url)["nginx"]["error"] or ""))
    assert start(router.url, steps=[50, 100], interval_s=1).status_code == 201
    wait_until(lambda: any(e["kind"] == "step_held" and "not installed" in e["message"] for e in events(router.url)))
    status = admin_status(router.url)
    assert status["weights"]["green"] == 0 and status["rollout"]["step"] == -1  # the step was never committed
    assert sum(e["kind"] == "step_held" for e in events(router.url)) == 1  # said once, not every tick
    assert httpx.post(f"{router.url}/admin/rollout/rollback", headers=AUTH).status_code == 200
    assert wait_for_phase(router.url, {"rolled_back"})["phase"] == "rolled_back"


def test_a_config_rewritten_behind_the_routers_back_is_put_right(start_router, upstreams, tmp_path: Path) -> None:
    """A restart script renders other weights into the live file and reloads nginx: the router notices
    within a few seconds and puts nginx back on the committed weights."""
    from tests.e2e.helpers import AUTH

    options = local_nginx_options(tmp_path / "nginx")
    blue, green = upstreams[Colour.blue], upstreams[Colour.green]
    with NginxProcess(options, blue.url, green.url) as server:
        router = start_router(blue.url, green.url, env=_router_env(options))
        assert httpx.put(f"{router.url}/admin/weights", json={"green": 30}, headers=AUTH).status_code == 200
        server.wait_for_green(3000)
        server.set_green(0, wait=False)  # another writer: the file and nginx now say 0 %
        server.wait_for_green(3000)  # put back by the router
        assert "30.00% green;" in options.conf_path.read_text()


def test_router_refuses_weights_nginx_rejects(start_router, upstreams, tmp_path: Path) -> None:
    from tests.e2e.helpers import AUTH

    good = local_nginx_options(tmp_path / "nginx")
    blue, green = upstreams[Colour.blue], upstreams[Colour.green]
    with NginxProcess(good, blue.url, green.url) as server:
        router = start_router(blue.url, green.url, env=_router_env(good))
        assert httpx.put(f"{router.url}/admin/weights", json={"green": 50}, headers=AUTH).status_code == 200
        wait_until(lambda: "green=50.0" in httpx.get(f"{server.url}/nginx-health").text)  # the reload finished
        router.stop()
        # nginx itself refuses what it is tested with now (a directive it does not know, given on its command line).
        test = ["nginx", "-t", "-q", "-c", "{conf}", "-p", str(good.prefix.resolve()), "-g", "bogus_directive on;"]
        bad = good.model_copy(update={"test_command": test})
        router = start_router(blue.url, green.url, env=_router_env(bad))
        refused = httpx.put(f"{router.url}/admin/weights", json={"green": 80}, headers=AUTH)
        assert refused.status_code == 409 and "unknown directive" in refused.json()["error"]["message"]
        assert httpx.get(f"{router.url}/admin/status", headers=AUTH).json()["weights"]["green"] == 50
        time.sleep(0.5)
        assert "green=50.0" in httpx.get(f"{server.url}/nginx-health").text  # nginx kept the last good config


COLOURS = {"127.0.0.1:8001": Colour.blue, "127.0.0.1:8002": Colour.green}
URLS = {Colour.blue: "http://127.0.0.1:8001", Colour.green: "http://127.0.0.1:8002"}


def test_backends_named_by_dns_are_matched_by_the_addresses_nginx_logs(tmp_path: Path) -> None:
    """nginx writes the resolved address in $upstream_addr, not the Service or compose name."""
    from router.dataplanes.nginx_log import AccessLogFollower
    from router.rollout.windows import SlidingWindow

    log = tmp_path / "access.json"
    log.write_text("")
    windows = {c: SlidingWindow(60) for c in Colour}
    follower = AccessLogFollower(log, {Colour.blue: "http://127.0.0.1:8001", Colour.green: "http://localhost:8002"},
                                 windows)
    with log.open("a") as handle:
        handle.write('{"upstream_addr":"127.0.0.1:8002, 10.9.9.9:8001","upstream_status":"502, 200",'
                     '"upstream_response_time":"0.1, 0.1","upstream_header_time":"0.05, 0.05"}\n')
    assert follower.read_new() == 1  # the attempt on localhost's address counts for green
    assert windows[Colour.green].summary().errors == 1
    assert "10.9.9.9:8001" in follower._unmatched  # reported, not silently dropped


def test_access_log_lines_count_every_attempt() -> None:
    from router.dataplanes.nginx_log import parse_entry

    retried = ('{"colour":"green","upstream_addr":"127.0.0.1:8002, 127.0.0.1:8001","upstream_status":"502, 200",'
               '"upstream_response_time":"0.004, 0.010","upstream_header_time":"0.004, 0.009"}')
    chosen, attempts = parse_entry(retried, COLOURS)
    assert chosen is Colour.green
    assert [(a.colour, a.ok, a.status, a.latency_s, a.header_s) for a in attempts] == [
        (Colour.green, False, 502, 0.004, 0.004), (Colour.blue, True, 200, 0.010, 0.009)]
    refused = '{"upstream_addr":"127.0.0.1:8002","upstream_status":"","upstream_response_time":"0.000","upstream_header_time":"-"}'
    assert parse_entry(refused, COLOURS) == (None, [])
    assert parse_entry("not json", COLOURS) == (None, []) and parse_entry('{"status": 429}', COLOURS) == (None, [])
    assert parse_entry("[1, 2]", COLOURS) == (None, [])
    # An address that is no colour's (a pod that moved): the green attempt before blue's is lost, so the
    # line must not read as "green skipped" (an nginx ejection, and a rollback).
    moved = retried.replace("127.0.0.1:8002", "10.1.2.3:8002")
    chosen, attempts = parse_entry(moved, COLOURS)
    assert chosen is None and [a.colour for a in attempts] == [Colour.blue]


def test_access_log_follower_survives_rotation(tmp_path: Path) -> None:
    from router.dataplanes.nginx_log import AccessLogFollower
    from router.rollout.windows import SlidingWindow

    line = ('{"upstream_addr":"127.0.0.1:8002","upstream_status":"200","upstream_response_time":"0.1",'
            '"upstream_header_time":"0.05"}\n')
    log = tmp_path / "access.json"
    log.write_text(line)
    windows = {c: SlidingWindow(60) for c in Colour}
    follower = AccessLogFollower(log, URLS, windows)
    assert follower.read_new() == 1
    with log.open("a") as handle:
        handle.write(line + line[:20])  # a line still being written is kept for the next read
    assert follower.read_new() == 1
    with log.open("a") as handle:
        handle.write(line[20:])
    assert follower.read_new() == 1
    log.rename(tmp_path / "access.json.1")  # logrotate: a new file appears
    log.write_text(line + line)
    assert follower.read_new() == 2 and windows[Colour.green].summary().requests == 5


def test_render_nginx_command_writes_a_config_nginx_accepts(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "rendered.conf"
    done = subprocess.run([sys.executable, "-m", "router.admin.cli", "render-nginx", "--green", "12.5", "--out", str(out),
                           "--state", str(tmp_path / "s.db")], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "BLUEGREEN_NGINX__PREFIX": str(tmp_path / "prefix")})
    assert done.returncode == 0, done.stderr
    assert "12.50% green;" in out.read_text()
    # A fresh prefix, no router having run: render-nginx made what the config needs.
    check = subprocess.run(["nginx", "-t", "-c", str(out), "-p", str(tmp_path / "prefix")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    from router.state import RouterState, StateStore

    promoted_state = tmp_path / "promoted.db"  # a router that promoted green left this behind
    store = StateStore(promoted_state)
    store.load(RouterState(green_bp=10_000, stable="green"))
    store.close()
    after_promotion = subprocess.run([sys.executable, "-m", "router.admin.cli", "render-nginx", "--green", "0",
                                      "--state", str(promoted_state)], capture_output=True, text=True, timeout=60)
    assert "green stable" in after_promotion.stdout  # blue is the canary: blue's upstream has green as backup
    assert "upstream bg_blue {\n        zone bg_blue 64k;\n        server 127.0.0.1:8001 max_fails=5" in \
        after_promotion.stdout
    bad = subprocess.run([sys.executable, "-m", "router.admin.cli", "render-nginx", "--green", "150"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "outside 0–100" in bad.stderr


def test_render_nginx_checks_settings_and_what_it_accepts_nginx_accepts(tmp_path: Path) -> None:
    """Every setting form NginxOptions lets through renders a file `nginx -t` accepts; what would inject a
    directive or fail `nginx -t` exits 2 naming the setting, and no state file is created by rendering."""
    import os
    import subprocess
    import sys

    from bluegreen_common.processes import free_port

    def render(yaml_nginx: str, name: str) -> subprocess.CompletedProcess[str]:
        config = tmp_path / f"{name}.yaml"
        config.write_text(f"nginx:\n  prefix: {tmp_path / name}\n{yaml_nginx}")
        return subprocess.run([sys.executable, "-m", "router.admin.cli", "render-nginx", "--config", str(config),
                               "--state", str(tmp_path / "none.db"), "--out", str(tmp_path / name / "nginx.conf")],
                              capture_output=True, text=True, timeout=60, env=os.environ)

    port = free_port()
    accepted = {  # YAML integers included: `worker_processes: 1`, `listen: PORT`
        "int": f"  worker_processes: 1\n  listen: {port}\n  limit_req_rate: 600r/m\n  client_max_body_size: 1024m\n",
        "ipv4": f"  worker_processes: auto\n  listen: 127.0.0.1:{port}\n  client_max_body_size: '0'\n",
        "ipv6": f"  listen: '[::1]:{port}'\n  limit_req_rate: 1r/s\n",
        "unix": f"  listen: unix:{tmp_path / 'nginx.sock'}\n  client_max_body_size: 1M\n",
    }
    for name, yaml_nginx in accepted.items():
        done = render(yaml_nginx, name)
        assert done.returncode == 0, (name, done.stderr)
        assert "no state file at" in done.stderr
        check = subprocess.run(["nginx", "-t", "-q", "-c", str(tmp_path / name / "nginx.conf"), "-p", str(tmp_path / name)],
                               capture_output=True, text=True)
        assert check.returncode == 0, (name, check.stderr)
    refused = {
        "worker_processes": "  worker_processes: 'auto; user root'\n",
        "limit_req_rate": "  limit_req_rate: abc\n",
        "client_max_body_size": "  client_max_body_size: zz\n",
        "listen": "  listen: 127.0.0.1:99999\n",
    }
    for setting, yaml_nginx in refused.items():
        done = render(yaml_nginx, f"bad-{setting}")
        assert done.returncode == 2 and f"nginx.{setting}" in done.stderr, (setting, done.stderr)
        assert "Traceback" not in done.stderr and not (tmp_path / f"bad-{setting}" / "nginx.conf").exists()
    assert not (tmp_path / "none.db").exists()
