"""The compose files: valid for the compose tool, and the operator's path from `up` to a finished cutover."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from bluegreen_common.processes import free_port
from model_backends.tiny.build import TinyModels
from testkit.traffic import LoadDriver
from tests.e2e.helpers import ADMIN_TOKEN, FAST, metric_total, wait_until

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
BLUE_GREEN, GPU, MONITORING = "docker-compose.blue-green.yml", "docker-compose.gpu.yml", "docker-compose.monitoring.yml"
REQUIRED = {"BLUEGREEN_ADMIN_TOKEN": "token", "MODELS_DIR": "/srv/models", "GRAFANA_ADMIN_PASSWORD": "password"}


def compose(env: dict[str, str], files: list[str], *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    command = ["docker-compose", *(part for name in files for part in ("-f", name)), *args]
    return subprocess.run(command, cwd=COMPOSE, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout_s)


@pytest.mark.parametrize("files", [[BLUE_GREEN], [BLUE_GREEN, GPU], [BLUE_GREEN, MONITORING]])
def test_compose_files_are_valid(files: list[str]) -> None:
    done = compose(REQUIRED, files, "config")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert all(service.get("network_mode") == "host" for service in services.values())
    if GPU in files:
        devices = services["backend-green"]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]


def test_compose_names_a_missing_secret() -> None:
    done = compose({"MODELS_DIR": "/srv/models"}, [BLUE_GREEN], "config")
    assert done.returncode != 0 and "set BLUEGREEN_ADMIN_TOKEN" in done.stderr


@pytest.mark.slow
def test_compose_up_then_a_cutover_through_nginx(docker_image: str, tiny_models: TinyModels, tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("BLUE_PORT", "GREEN_PORT", "ROUTER_PORT", "PUBLIC_PORT")}
    env = {**{name: str(port) for name, port in ports.items()},
           "BLUEGREEN_VERSION": docker_image.split(":")[1], "BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN,
           "MODELS_DIR": str(tiny_models.gguf_path.parent), "BLUE_MODEL": tiny_models.gguf_path.name,
           "GREEN_ENGINE": "llama_cpp", "GREEN_MODEL": tiny_models.gguf_path.name, "PUBLIC_ADDRESS": "127.0.0.1",
           "COMPOSE_PROJECT_NAME": f"bgtest{os.getpid()}"}
    # The operator's own settings go in an override file: short steps, and nginx's per-address
    # limits out of the way of a load that comes from one address.
    override = tmp_path / "override.yml"
    override.write_text(yaml.safe_dump({"services": {"router": {"environment": {
        **FAST, "BLUEGREEN_ROLLOUT__KEEP_OLD_S": "1", "BLUEGREEN_PROBES__INTERVAL_S": "0.2",
        "BLUEGREEN_NGINX__LIMIT_CONN": "65000", "BLUEGREEN_NGINX__LIMIT_REQ_RATE": "100000r/s",
        "BLUEGREEN_NGINX__WORKER_PROCESSES": "1"}}}}))
    files = [BLUE_GREEN, str(override)]
    router, public = f"http://127.0.0.1:{ports['ROUTER_PORT']}", f"http://127.0.0.1:{ports['PUBLIC_PORT']}"
    try:
        up = compose(env, files, "up", "-d", "--no-build", timeout_s=300)
        assert up.returncode == 0, up.stderr

        def serving() -> bool:
            try:
                return httpx.get(f"{public}/nginx-health").status_code == 200 and \
                    httpx.get(f"{router}/ready").status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(serving, timeout_s=120)

        with LoadDriver(public) as load:
            cutover = subprocess.run(
                [sys.executable, "-m", "router.admin.cli", "cutover", "--router", router, "--steps", "50,100",
                 "--interval", "1", "--yes"],
                env={**os.environ, "BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN}, capture_output=True, text=True, timeout=180)
        assert cutover.returncode == 0, cutover.stdout[-3000:] + cutover.stderr[-3000:]
        assert "promoted" in cutover.stdout
        assert load.failures == [] and load.colours["green"] > 0 and load.colours["blue"] > 0
        assert httpx.get(f"{public}/nginx-health").text.count("green=100") == 1
        assert metric_total(router, "bluegreen_requests_total", colour="green") > 0  # from nginx's log
    finally:
        logs = compose(env, files, "logs", "--no-color", "--tail", "30")
        down = compose(env, files, "down", "-v", "--timeout", "5", timeout_s=180)
        print(logs.stdout[-6000:])
    assert down.returncode == 0, down.stderr
