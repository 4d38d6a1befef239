"""Rollouts end to end: a real router with its controller in front of real HTTP upstreams."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from router.state import RouterState, StateStore
from router.weights import Colour
from testkit.traffic import LoadDriver
from tests.e2e.helpers import ADMIN_TOKEN, AUTH, FAST, events, rollout, start, wait_for_phase, wait_until
from tests.e2e.http_upstream import HttpUpstream


@pytest.fixture
def fast_router(start_router, upstreams):
    return start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url, env=FAST)


def test_healthy_green_is_promoted(fast_router, upstreams) -> None:
    with LoadDriver(fast_router.url) as load:
        assert start(fast_router.url).status_code == 201
        done = wait_for_phase(fast_router.url, {"promoted", "rolled_back", "failed"})
    assert done["phase"] == "promoted", done["reason"]
    status = httpx.get(f"{fast_router.url}/admin/status", headers=AUTH).json()
    assert status["weights"] == {"blue": 0.0, "green": 100.0} and status["stable"] == "green"
    kinds = [e["kind"] for e in events(fast_router.url)]
    assert kinds.count("step_started") == 3 and "promoted" in kinds
    assert load.failures == [] and load.colours["green"] > 0
    assert upstreams[Colour.green].seen.requests >= 3  # golden questions went to green before users did


@pytest.mark.parametrize("fault", ["errors", "slow"])
def test_unhealthy_green_is_rolled_back_without_client_errors(fast_router, upstreams, fault: str) -> None:
    green = upstreams[Colour.green]
    with LoadDriver(fast_router.url) as load:
        assert start(fast_router.url).status_code == 201
        wait_for_phase(fast_router.url, {"progressing"})
        if fault == "errors":
            green.behaviour.fail_status = 500
        else:
            green.behaviour.first_byte_delay_s = 0.3
        done = wait_for_phase(fast_router.url, {"rolled_back", "promoted", "failed"})
    assert done["phase"] == "rolled_back"
    reasons = ("error rate", "ejected") if fault == "errors" else ("p95 latency",)  # whichever sees it first
    assert any(reason in done["reason"] for reason in reasons), done["reason"]
    assert httpx.get(f"{fast_router.url}/admin/status", headers=AUTH).json()["weights"]["green"] == 0
    assert load.failures == []  # failed green requests were retried on blue


def test_green_killed_mid_step_is_rolled_back_at_the_next_tick(start_router, upstreams) -> None:
    doomed = HttpUpstream("green").start()
    router = start_router(upstreams[Colour.blue].url, doomed.url, env=FAST)
    with LoadDriver(router.url) as load:
        assert start(router.url, steps=[50, 100], interval_s=30).status_code == 201
        wait_for_phase(router.url, {"progressing"})
        killed_at = time.time()
        doomed.stop()
        done = wait_for_phase(router.url, {"rolled_back"}, timeout_s=10)
    rollback = next(e for e in events(router.url) if e["kind"] == "rollback_started")
    assert "not ready" in done["reason"] and rollback["at"] - killed_at < 3
    assert load.failures == []


def test_no_traffic_holds_the_step_instead_of_rolling_back(fast_router) -> None:
    assert start(fast_router.url, steps=[50, 100], interval_s=0.5).status_code == 201
    wait_for_phase(fast_router.url, {"progressing"})
    time.sleep(2.5)
    current = rollout(fast_router.url)
    assert current["phase"] == "progressing" and current["step"] == 0
    held = [e for e in events(fast_router.url) if e["kind"] == "step_held"]
    assert held and "inconclusive" in held[-1]["message"] and "fewer than the 5 needed" in held[-1]["message"]


def test_router_killed_mid_rollout_resumes_the_same_step(start_router, upstreams, tmp_path: Path) -> None:
    state = tmp_path / "resume.db"
    urls = (upstreams[Colour.blue].url, upstreams[Colour.green].url)
    first = start_router(*urls, env=FAST, state=state)
    with LoadDriver(first.url):
        assert start(first.url, steps=[20, 50, 100], interval_s=2).status_code == 201
        wait_until(lambda: rollout(first.url).get("step", -1) >= 1, timeout_s=30)
        before = events(first.url)
        step = rollout(first.url)["step"]
        first.kill()
    # What the killed router last committed (a step may have begun between the read and the kill).
    store = StateStore(state)
    saved = store.load(RouterState(green_bp=0)).rollout
    store.close()
    assert saved is not None and saved["step"] in (step, step + 1)
    second = start_router(*urls, env=FAST, state=state)
    resumed = rollout(second.url)
    step = saved["step"]
    assert resumed["phase"] == "progressing" and resumed["step"] == step
    weights = httpx.get(f"{second.url}/admin/status", headers=AUTH).json()["weights"]
    assert weights["green"] == resumed["steps"][step] / 100
    assert events(second.url)[: len(before)] == before  # nothing recorded was lost
    with LoadDriver(second.url) as load:
        assert wait_for_phase(second.url, {"promoted", "rolled_back", "failed"})["phase"] == "promoted"
    assert load.failures == []


def test_operator_actions_and_guards(fast_router, upstreams) -> None:
    url = fast_router.url
    assert httpx.post(f"{url}/admin/rollout/pause", headers=AUTH).status_code == 409  # nothing to pause
    assert start(url, steps=[50, 100], interval_s=60).status_code == 201
    assert start(url).status_code == 409  # one rollout at a time
    wait_for_phase(url, {"progressing"})
    busy = httpx.put(f"{url}/admin/weights", json={"green": 5}, headers=AUTH)
    assert busy.status_code == 409 and "pause it" in busy.json()["error"]["message"]
    assert httpx.post(f"{url}/admin/rollout/pause", headers=AUTH).json()["rollout"]["phase"] == "paused"
    assert httpx.put(f"{url}/admin/weights", json={"green": 5}, headers=AUTH).status_code == 200
    assert httpx.post(f"{url}/admin/rollout/resume", headers=AUTH).json()["rollout"]["phase"] == "progressing"
    # The step's 50 % again, not the 5 % set while paused: the step is judged at the weight it names.
    assert httpx.get(f"{url}/admin/status", headers=AUTH).json()["weights"]["green"] == 50
    assert httpx.post(f"{url}/admin/rollout/promote", headers=AUTH).status_code == 200
    assert wait_for_phase(url, {"promoted"})["phase"] == "promoted"
    assert httpx.post(f"{url}/admin/rollout/dance", headers=AUTH).status_code == 404
    for bad in ({"steps": [50, 50]}, {"steps": []}, {"interval_s": -1}, {"speed": 3}):
        assert httpx.post(f"{url}/admin/rollout", json=bad, headers=AUTH).status_code == 422, bad
    assert httpx.post(f"{url}/admin/rollout").status_code == 401


def test_webhooks_gate_and_notify(start_router, upstreams) -> None:
    hook = upstreams[Colour.blue]  # the blue test server also records webhooks
    env = {**FAST, "BLUEGREEN_WEBHOOKS": f'[{{"url": "{hook.url}/hook", "kinds": ["pre-rollout", "step", "promotion"]}}]'}
    router = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url, env=env)
    hook.behaviour.hook_status = 403
    blocked = start(router.url)
    assert blocked.status_code == 409 and "pre-rollout webhook refused" in blocked.json()["error"]["message"]
    assert rollout(router.url)["phase"] == "idle"
    hook.behaviour.hook_status = 200
    with LoadDriver(router.url):
        assert start(router.url, steps=[50, 100], interval_s=1).status_code == 201
        assert wait_for_phase(router.url, {"promoted", "rolled_back"})["phase"] == "promoted"
    kinds = lambda: [h["kind"] for h in hook.seen.hooks]  # noqa: E731
    # Notifications are sent in the background, so only the (synchronous) gates have a fixed order.
    wait_until(lambda: sorted(kinds()[2:]) == ["promotion", "step", "step"])
    assert kinds()[:2] == ["pre-rollout", "pre-rollout"]
    assert {h["canary_percent"] for h in hook.seen.hooks if h["kind"] == "step"} == {50.0, 100.0}


def test_prometheus_provider_rolls_back_an_erroring_green(start_router, upstreams, tmp_path: Path) -> None:
    from bluegreen_common.processes import free_port
    from tests.e2e.prometheus_server import PrometheusServer

    router_port = free_port()
    with PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{router_port}"]) as prometheus:
        env = {**FAST, "BLUEGREEN_METRICS_PROVIDER__KIND": "prometheus",
               "BLUEGREEN_METRICS_PROVIDER__PROMETHEUS_URL": prometheus.url,
               "BLUEGREEN_METRICS_PROVIDER__MIN_RANGE_S": "4",
               "BLUEGREEN_OUTLIERS__ENABLED": "false"}  # the provider's verdict is under test, not the ejection
        router = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url, env=env, port=router_port)
        with LoadDriver(router.url) as load:
            assert start(router.url, steps=[20, 100], interval_s=3).status_code == 201
            wait_for_phase(router.url, {"progressing"})
            upstreams[Colour.green].behaviour.fail_status = 500
            done = wait_for_phase(router.url, {"rolled_back", "promoted", "failed"}, timeout_s=60)
        assert done["phase"] == "rolled_back" and "green error rate" in done["reason"], done["reason"]
        assert load.failures == []
        query = httpx.get(f"{prometheus.url}/api/v1/query",
                          params={"query": 'sum(bluegreen_upstream_errors_total{colour="green"})'}).json()
        assert float(query["data"]["result"][0]["value"][1]) > 0  # the verdict came from scraped figures


def test_an_unreachable_provider_holds_then_rolls_back_after_its_deadline(start_router, upstreams) -> None:
    env = {**FAST, "BLUEGREEN_METRICS_PROVIDER__KIND": "prometheus",
           "BLUEGREEN_METRICS_PROVIDER__PROMETHEUS_URL": "http://127.0.0.1:9",  # nothing listens there
           "BLUEGREEN_ROLLOUT__PROVIDER_ERROR_DEADLINE_S": "2"}
    router = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url, env=env)
    assert start(router.url, steps=[50, 100], interval_s=0.5).status_code == 201
    done = wait_for_phase(router.url, {"rolled_back", "promoted", "failed"}, timeout_s=20)
    assert done["phase"] == "rolled_back" and "metrics unavailable" in done["reason"]
    assert any(e["kind"] == "step_held" and "metrics provider" in e["message"] for e in events(router.url))


def bluegreen(*args: str, token: str | None = ADMIN_TOKEN, timeout_s: float = 90) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BLUEGREEN_ADMIN_TOKEN"}
    if token:
        env["BLUEGREEN_ADMIN_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "router.admin.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, env={**env, "COLUMNS": "200"})


@pytest.mark.parametrize(("green", "exit_code", "word"), [
    ("healthy", 0, "promoted"),  # exit 0: promoted
    ("fails_after_warmup", 2, "rolled back"),  # exit 2: rejected by the judge
    ("fails_warmup", 2, "warm-up failed"),  # exit 2 as well: rejected before any user saw it
])
def test_cutover_cli_follows_the_rollout_to_its_end(fast_router, upstreams, green: str, exit_code: int,
                                                    word: str) -> None:
    behaviour = upstreams[Colour.green].behaviour
    if green == "fails_warmup":
        behaviour.fail_status = 500  # from its first answer: the warm-up's golden questions fail
    with LoadDriver(fast_router.url) as load:
        if green == "fails_after_warmup":
            behaviour.fail_status, behaviour.fail_after_requests = 503, 5
        steps = "20,60,100" if green == "healthy" else "20,100"
        done = bluegreen("cutover", "--router", fast_router.url, "--yes", "--steps", steps, "--interval", "1")
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert word in done.stdout and "phase:" in done.stdout
    assert done.stdout.count("started by") == 1  # not a terminal: each event printed once, as it came
    assert load.failures == []


def test_cutover_cli_waits_for_a_restarted_router(start_router, upstreams, tmp_path: Path) -> None:
    """The router is killed mid-rollout and started again on its state file: `cutover` keeps following
    (it says the router is gone, then comes back to it) and ends with the promotion, exit 0."""
    state = tmp_path / "restart.db"
    urls = (upstreams[Colour.blue].url, upstreams[Colour.green].url)
    first = start_router(*urls, env=FAST, state=state)
    env = {**os.environ, "BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    with LoadDriver(first.url):
        follower = subprocess.Popen([sys.executable, "-m", "router.admin.cli", "cutover", "--router", first.url, "--yes",
                                     "--steps", "50,100", "--interval", "2"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env)
        try:
            wait_until(lambda: rollout(first.url).get("step", -1) >= 0, timeout_s=30)
            first.kill()
            start_router(*urls, env=FAST, state=state, port=first.port)
            out, err = follower.communicate(timeout=90)
        finally:
            follower.kill()
    assert follower.returncode == 0, out + err
    assert "cannot reach the router" in err and "waiting up to" in err and "promoted" in out


def test_cli_commands_and_their_errors(fast_router) -> None:
    url = fast_router.url
    assert bluegreen("weights", "set", "12.5", "--router", url, "--reason", "canary by hand").returncode == 0
    status = bluegreen("status", "--router", url, "--json")
    assert status.returncode == 0 and '"green": 12.5' in status.stdout
    shown = bluegreen("events", "--router", url)
    assert "canary by hand" in shown.stdout
    newest = bluegreen("events", "--router", url, "--latest", "1")
    newest_lines = [line for line in newest.stdout.splitlines() if line.strip()]
    assert newest.returncode == 0 and len(newest_lines) == 1 and "canary by hand" in newest_lines[0]
    no_token = bluegreen("weights", "set", "50", "--router", url, token=None)
    assert no_token.returncode == 1 and "401" in no_token.stderr and "BLUEGREEN_ADMIN_TOKEN" in no_token.stderr
    bad = bluegreen("weights", "set", "150", "--router", url)
    assert bad.returncode == 1 and "less than or equal to 100" in bad.stderr
    nothing = bluegreen("promote", "--router", url)
    assert nothing.returncode == 1 and "no rollout" in nothing.stderr
    down = bluegreen("status", "--router", "http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot reach the router" in down.stderr
    # "Could not run" is exit 1 in every form, never 2 (which says the canary was rejected).
    bad_steps = bluegreen("cutover", "--router", url, "--yes", "--steps", "5,x")
    assert bad_steps.returncode == 1 and "comma" in bad_steps.stderr
    unknown_flag = bluegreen("cutover", "--router", url, "--yes", "--stepz", "5")
    assert unknown_flag.returncode == 1 and "No such option" in unknown_flag.stderr
    assert bluegreen("cutover", "--router", "http://127.0.0.1:9", "--yes").returncode == 1
    assert bluegreen("cutover", "--router", url, "--yes", token=None).returncode == 1
    assert bluegreen("cutover", "--router", url, "--yes", token="wrong").returncode == 1
    assert bluegreen("weights", "set", "0", "--router", url).returncode == 0
    assert httpx.post(f"{url}/admin/rollout", json={"steps": [50, 100], "interval_s": 600},
                      headers=AUTH).status_code == 201
    conflicting = bluegreen("cutover", "--router", url, "--yes")
    assert conflicting.returncode == 1 and "already" in conflicting.stderr, conflicting.stderr


def test_operator_script_starts_the_router_and_runs_the_cutover(upstreams, tmp_path: Path) -> None:
    from bluegreen_common.processes import free_port

    repo = Path(__file__).resolve().parents[2]
    router = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, **FAST, "BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN, "BLUEGREEN_ROUTER": router,
           "BLUE_URL": upstreams[Colour.blue].url, "GREEN_URL": upstreams[Colour.green].url,
           "BLUEGREEN_STATE": str(tmp_path / "state.db"), "BLUEGREEN_PROBES__INTERVAL_S": "0.2",
           "PYTHON": sys.executable, "BLUEGREEN": str(Path(sys.executable).parent / "bluegreen"), "COLUMNS": "200"}
    pid_file = repo / "runs" / "router.pid"
    try:
        with LoadDriver(router) as load:
            done = subprocess.run([str(repo / "scripts" / "cutover.sh"), "--yes", "--steps", "50,100", "--interval", "1"],
                                  capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "starting one on port" in done.stdout and "== promoted" in done.stdout
        assert load.colours["green"] > 0
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), 15)
            pid_file.unlink()
