"""The docker runtime against a real Docker engine: the router runs blue and green as containers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bluegreen_common.processes import free_port
from model_backends.tiny.build import TinyModels
from tests.e2e.helpers import (
    FAST,
    admin_status,
    assert_restarted,
    events,
    promote_under_load,
    start,
    wait_for_phase,
    wait_until,
)

pytestmark = pytest.mark.slow


def containers(instance: str) -> dict[str, dict]:
    """This test's containers by colour, as `docker inspect` sees them."""
    import docker

    client = docker.from_env()
    found = client.containers.list(all=True, filters={"label": f"bluegreen.instance={instance}"}, ignore_removed=True)
    return {c.labels["bluegreen.colour"]: {"id": c.short_id, "status": c.status, "attrs": c.attrs} for c in found}


def runtime_env(image: str, instance: str, model: Path) -> dict[str, str]:
    spec = {"engine": "llama_cpp", "model": str(model), "args": ["--queue-size", "64"]}
    runtime = {"kind": "docker", "stop_grace_s": 5, "docker": {"image": image, "build": "never", "instance": instance},
               "blue": {**spec, "port": free_port()}, "green": {**spec, "port": free_port()}}
    return {**FAST, "BLUEGREEN_RUNTIME": json.dumps(runtime), "BLUEGREEN_ROLLOUT__KEEP_OLD_S": "1"}


def test_router_runs_blue_and_green_as_containers(start_router, docker_image: str, tiny_models: TinyModels,
                                                   tmp_path: Path) -> None:
    instance = f"bgtest{os.getpid()}"
    env = runtime_env(docker_image, instance, tiny_models.gguf_path)
    state = tmp_path / "router.db"
    router = start_router("http://unused:1", "http://unused:2", env=env, state=state)
    try:
        # The stable colour's container: host network, the model read-only, labelled for cleanup.
        wait_until(lambda: admin_status(router.url)["backends"]["blue"]["ready"], timeout_s=60)
        running = containers(instance)
        assert set(running) == {"blue"} and running["blue"]["status"] == "running"
        attrs = running["blue"]["attrs"]
        assert attrs["HostConfig"]["NetworkMode"] == "host"
        assert [(m["Destination"], m["RW"]) for m in attrs["Mounts"]] == [("/models/tiny-legal.gguf", False)]
        answer = httpx.post(f"{router.url}/v1/chat/completions", timeout=30,
                            json={"model": "any", "messages": [{"role": "user", "content": "Что такое иск?"}],
                                  "max_tokens": 8})
        assert answer.status_code == 200 and answer.headers["x-backend"] == "blue"

        # A killed container is noticed, recorded, removed and replaced.
        subprocess.run(["docker", "kill", f"{instance}-blue"], check=True, capture_output=True)
        wait_until(lambda: containers(instance).get("blue", {}).get("id") not in (None, running["blue"]["id"]),
                   timeout_s=20)
        assert_restarted(router.url, "blue")

        # The controller starts green's container, promotes it under load, then removes blue's.
        promote_under_load(router.url)
        wait_until(lambda: set(containers(instance)) == {"green"}, timeout_s=20)
        green_id = containers(instance)["green"]["id"]

        # A router killed outright leaves green serving; its successor takes the container over.
        router.kill()
        assert containers(instance)["green"]["status"] == "running"
        router = start_router("http://unused:1", "http://unused:2", env=env, state=state)
        wait_until(lambda: admin_status(router.url)["backends"]["green"]["ready"], timeout_s=30)
        assert containers(instance)["green"]["id"] == green_id
        assert any("took over running container" in e["message"] for e in events(router.url))

        # A graceful stop removes everything the router started.
        router.stop()
        assert containers(instance) == {}
    finally:
        for colour in ("blue", "green"):
            subprocess.run(["docker", "rm", "-f", f"{instance}-{colour}"], capture_output=True)


def test_a_canary_docker_cannot_start_fails_the_rollout_at_once(start_router, docker_image: str,
                                                                 tiny_models: TinyModels, tmp_path: Path) -> None:
    import docker

    if "nvidia" in docker.from_env().info().get("Runtimes", {}):
        pytest.skip("this engine can give green a GPU")
    instance = f"bggpu{os.getpid()}"
    env = runtime_env(docker_image, instance, tiny_models.gguf_path)
    runtime = json.loads(env["BLUEGREEN_RUNTIME"])
    runtime["green"]["resources"] = {"gpus": 1}  # Vistral's request, on an engine with no GPU runtime
    env["BLUEGREEN_RUNTIME"] = json.dumps(runtime)
    router = start_router("http://unused:1", "http://unused:2", env=env)
    try:
        wait_until(lambda: admin_status(router.url)["backends"]["blue"]["ready"], timeout_s=60)
        assert start(router.url).status_code == 201
        failed = wait_for_phase(router.url, {"failed", "promoted", "rolled_back"}, timeout_s=20)
        assert failed["phase"] == "failed" and "could not start green: docker could not start" in failed["reason"]
        assert "gpu" in failed["reason"].lower()
        assert admin_status(router.url)["weights"]["green"] == 0 and set(containers(instance)) == {"blue"}
    finally:
        router.stop()
        subprocess.run(["docker", "rm", "-f", f"{instance}-blue"], capture_output=True)


@pytest.mark.parametrize("problem", ["no engine", "no image"])
def test_docker_runtime_that_cannot_start_is_a_clear_error(problem: str, request: pytest.FixtureRequest,
                                                           tiny_models: TinyModels, tmp_path: Path) -> None:
    env = {**os.environ, **runtime_env("bluegreen-llm:does-not-exist", "bgmissing", tiny_models.gguf_path)}
    if problem == "no engine":
        env["DOCKER_HOST"] = f"unix://{tmp_path}/docker.sock"
    else:
        request.getfixturevalue("docker_image")  # an engine that answers
    done = subprocess.run([sys.executable, "-m", "router.admin.cli", "serve", "--port", str(free_port()),
                           "--state", str(tmp_path / "router.db")], env=env, capture_output=True, text=True, timeout=60)
    output = "".join((done.stdout + done.stderr).split())  # the console wraps long lines anywhere
    assert done.returncode == 3, output
    expected = (f"no Docker engine answers at unix://{tmp_path}/docker.sock" if problem == "no engine"
                else "image bluegreen-llm:does-not-exist not found")
    assert "".join(expected.split()) in output and "Traceback" not in output
