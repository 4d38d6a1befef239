"""The local runtime: the router starts, watches, restarts and stops real backend processes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil

from bluegreen_common.processes import free_port
from model_backends.tiny.build import TinyModels
from tests.e2e.helpers import FAST, admin_status, assert_restarted, event_kinds, events, promote_under_load, wait_until


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_router_runs_the_backends_through_a_whole_cutover(start_router, tiny_models: TinyModels, tmp_path: Path) -> None:
    spec = {"engine": "llama_cpp", "model": str(tiny_models.gguf_path), "args": ["--queue-size", "64"]}
    runtime = {"kind": "local", "logs_dir": str(tmp_path / "backends"), "stop_grace_s": 5,
               "blue": {**spec, "port": free_port()}, "green": {**spec, "port": free_port()}}
    env = {**FAST, "BLUEGREEN_RUNTIME": json.dumps(runtime), "BLUEGREEN_ROLLOUT__KEEP_OLD_S": "1"}
    router = start_router("http://unused:1", "http://unused:2", env=env)

    # Only the stable colour runs at first.
    wait_until(lambda: admin_status(router.url)["backends"]["blue"]["ready"]
               and "blue" in admin_status(router.url)["runtime"],
               timeout_s=60)
    assert "green" not in admin_status(router.url)["runtime"]
    first_blue = admin_status(router.url)["runtime"]["blue"]["pid"]

    # A crashed backend is noticed, recorded and restarted.
    os.kill(first_blue, signal.SIGKILL)
    wait_until(lambda: admin_status(router.url)["runtime"].get("blue", {}).get("pid") not in (None, first_blue), timeout_s=20)
    assert_restarted(router.url, "blue")

    # The rollout starts green through the runtime, promotes it, then releases blue.
    promote_under_load(router.url)
    blue_pid = admin_status(router.url)["runtime"]["blue"]["pid"]
    wait_until(lambda: "blue" not in admin_status(router.url)["runtime"] and gone(blue_pid), timeout_s=20)
    green_pid = admin_status(router.url)["runtime"]["green"]["pid"]
    # The event comes once the stop is complete, a moment after blue left the runtime's list.
    wait_until(lambda: {"backend_started", "backend_ready", "backend_stopped", "promoted"} <= set(event_kinds(router.url)),
               timeout_s=10)

    # Nothing is left running once the router stops.
    router.stop()
    wait_until(lambda: gone(green_pid), timeout_s=20)


def test_a_backend_too_slow_to_start_is_stopped(start_router, tiny_models: TinyModels, tmp_path: Path) -> None:
    spec = {"engine": "llama_cpp", "model": str(tiny_models.gguf_path)}
    runtime = {"kind": "local", "logs_dir": str(tmp_path / "backends"), "stop_grace_s": 5, "ready_timeout_s": 2,
               "restart_on_crash": True, "blue": {**spec, "port": free_port(), "args": ["--fault-load-delay", "60"]},
               "green": {**spec, "port": free_port()}}
    router = start_router("http://unused:1", "http://unused:2", env={"BLUEGREEN_RUNTIME": json.dumps(runtime)},
                          until_ready=False)
    pid = admin_status(router.url)["runtime"]["blue"]["pid"]
    assert admin_status(router.url)["runtime"]["blue"]["loading_for_s"] is not None

    wait_until(lambda: "backend_start_timeout" in event_kinds(router.url), timeout_s=15)
    wait_until(lambda: gone(pid), timeout_s=10)
    assert "blue" not in admin_status(router.url)["runtime"]  # stopped, not restarted in a loop
    timeout = next(e for e in events(router.url) if e["kind"] == "backend_start_timeout")
    assert "not ready after 2 s (model is loading (drill: delayed 60 s))" in timeout["message"]
