"""`bluegreen update` end to end: a real file host (Range), a real router whose local runtime starts
the canary on the downloaded file, real llama backends, real client load.

One router (blue and green on the tiny GGUF) serves the whole module; each test uses its own model
name, so each has its own folder and record under the models directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bluegreen_common.processes import free_port
from model_backends.tiny.build import TinyModels, build_tiny_models
from model_backends.tiny.spec import TinySpec
from router.update.lock import UpdateLock
from router.weights import Colour
from testkit.range_server import RangeServer
from testkit.services import RouterProcess
from testkit.traffic import LoadDriver
from tests.e2e.helpers import ADMIN_TOKEN, FAST, admin_status, events, wait_until

REPO = Path(__file__).resolve().parents[2]
NEW_SPEC = TinySpec(seed=4321, steps=40)  # other weights: the bytes differ from the tiny model's
STEPS = ["--steps", "50,100", "--interval", "1"]
MODEL_AND_ROLLOUT = {"model_set", "model_reset", "rollout_started", "update_recovered"}


@pytest.fixture(scope="module")
def new_gguf() -> Path:
    return build_tiny_models(REPO / ".cache" / "tiny-models-update", NEW_SPEC).gguf_path


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, new_gguf: Path) -> Iterator[RangeServer]:
    """The model host: the new GGUF, a corrupt one, and a manifest for each."""
    folder = tmp_path_factory.mktemp("host")
    shutil.copy(new_gguf, folder / "saiga-v2.gguf")
    broken = b"GGUF" + os.urandom(200_000)  # the magic, then nothing a loader can read
    (folder / "broken.gguf").write_bytes(broken)
    (folder / "broken.json").write_text(json.dumps({"version": "9", "file": "broken.gguf", "size": len(broken),
                                                    "sha256": hashlib.sha256(broken).hexdigest()}))
    with RangeServer(folder) as server:
        yield server


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory, tiny_models: TinyModels, logs_dir: Path) -> Iterator[RouterProcess]:
    """A router that runs blue and green itself (local runtime), with short steps and a short start limit."""
    workdir = tmp_path_factory.mktemp("update-router")
    spec = {"engine": "llama_cpp", "model": str(tiny_models.gguf_path)}
    runtime = {"kind": "local", "logs_dir": str(workdir / "backends"), "stop_grace_s": 5,
               "blue": {**spec, "port": free_port()}, "green": {**spec, "port": free_port()}}
    env = {**FAST, "BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN, "BLUEGREEN_PROBES__INTERVAL_S": "0.2",
           "BLUEGREEN_RUNTIME": json.dumps(runtime), "BLUEGREEN_ROLLOUT__START_TIMEOUT_S": "8"}
    process = RouterProcess(["--state", str(workdir / "router.db")], logs_dir / "update-router.log", env=env)
    with process:
        process.wait_ready(timeout_s=60)
        yield process


def update(router: RouterProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "router.admin.cli", "update", "--router", router.url, "--yes", *args],
                          capture_output=True, text=True, env=env, timeout=180)


def start_update(router: RouterProcess, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "router.admin.cli", "update", "--router", router.url, "--yes", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env)


def events_since(router: RouterProcess, since: int) -> list[dict]:
    return httpx.get(f"{router.url}/admin/events", params={"since": since, "limit": 1000},
                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()["events"]


def last_event_id(router: RouterProcess) -> int:
    return int(httpx.get(f"{router.url}/admin/events", params={"latest": 1},
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()["events"][-1]["id"])


def kill_after_rollout_started(router: RouterProcess, since: int, *args: str) -> None:
    """Run `update` and SIGKILL it (by its PID) once the router has started its rollout."""
    process = start_update(router, *args)
    try:
        wait_until(lambda: "rollout_started" in [e["kind"] for e in events_since(router, since)], timeout_s=90)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def update_events_since(router: RouterProcess, since: int) -> list[dict]:
    """Events after `since` other than the runtime's own (a backend stopping may land at any time)."""
    return [e for e in events_since(router, since) if not e["kind"].startswith("backend_")]


def served_model(router: RouterProcess, colour: str) -> str:
    url = admin_status(router.url)["backends"][colour]["url"]
    return str(httpx.get(f"{url}/v1/models").json()["data"][0]["id"])


def test_a_new_file_is_downloaded_resumed_verified_and_promoted_under_load(router, host, new_gguf, tmp_path) -> None:
    models = tmp_path / "models"
    size = new_gguf.stat().st_size
    digest = hashlib.sha256(new_gguf.read_bytes()).hexdigest()
    source = f"{host.url}/saiga-v2.gguf"
    stable = admin_status(router.url)["stable"]
    canary = "green" if stable == "blue" else "blue"
    first_event = events(router.url)[-1]["id"]
    host.reset()
    host.cut_after = size // 2  # the connection drops halfway through
    stale = models / "saiga" / ".staging" / "1-saiga-v1.gguf.part"  # a version the source no longer offers
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"GGUF" * 1000)

    with LoadDriver(router.url) as load:
        done = update(router, "--source", source, "--name", "saiga", "--models-dir", str(models), "--sha256", digest,
                      *STEPS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "updated" in done.stdout and "promoted" in done.stdout
    assert "removed stale partial downloads: 1-saiga-v1.gguf.part" in done.stderr and "1-saiga-v1" in done.stdout
    # Resumed, not restarted: the second request asked for the rest, and the host sent the file once.
    assert host.ranges == [None, f"bytes={size // 2}-"] and host.bytes_served == size
    assert load.failures == [] and load.colours[canary] > 0

    status = admin_status(router.url)
    assert status["stable"] == canary and status["weights"][canary] == 100.0
    assert served_model(router, canary) == f"{canary}-saiga-v2.gguf"
    current = models / "saiga" / "current" / "saiga-v2.gguf"
    assert current.is_file() and hashlib.sha256(current.read_bytes()).hexdigest() == digest
    assert not list((models / "saiga" / ".staging").iterdir())
    kinds = [e["kind"] for e in events(router.url) if e["id"] > first_event]
    expected = ["update_checked", "update_downloaded", "update_verified", "model_set", "rollout_started", "promoted",
                "update_promoted"]
    assert [k for k in kinds if k in expected] == expected, kinds

    again = update(router, "--source", source, "--name", "saiga", "--models-dir", str(models), "--sha256", digest)
    assert again.returncode == 0 and "already current" in again.stdout, again.stdout + again.stderr
    assert admin_status(router.url)["stable"] == canary and host.bytes_served == size  # nothing downloaded


def test_a_wrong_checksum_is_refused_and_changes_nothing(router, host, tmp_path) -> None:
    models = tmp_path / "models"
    before = admin_status(router.url)
    done = update(router, "--source", f"{host.url}/saiga-v2.gguf", "--name", "checked", "--models-dir", str(models),
                  "--sha256", "0" * 64)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "checksum mismatch" in done.stdout
    after = admin_status(router.url)
    assert (after["stable"], after["weights"], after["rollout"]) == (before["stable"], before["weights"], before["rollout"])
    assert not (models / "checked" / "current").exists()
    assert [p.name for p in (models / "checked").iterdir() if not p.name.startswith(".")] == ["update.lock"]
    assert [e for e in events(router.url) if not e["kind"].startswith("backend_")][-1]["kind"] == "update_rejected"


def test_a_model_that_cannot_start_is_rejected_and_not_tried_again(router, host, tmp_path) -> None:
    models = tmp_path / "models"
    stable = admin_status(router.url)["stable"]
    live_model = served_model(router, stable)
    source, first = f"{host.url}/broken.json", last_event_id(router)
    with LoadDriver(router.url) as load:
        done = update(router, "--source", source, "--name", "broken", "--models-dir", str(models), *STEPS)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "rejected" in done.stdout
    assert load.failures == []
    status = admin_status(router.url)
    assert status["stable"] == stable and status["weights"][stable] == 100.0 and status["rollout"]["phase"] == "failed"
    # The backend's own verdict ends the start at once (not the 8 s start limit), and says why.
    reason = status["rollout"]["reason"]
    assert reason.startswith("could not start") and "no engine could load" in reason, reason
    assert served_model(router, stable) == live_model
    record = json.loads((models / "broken" / "update.json").read_text())
    assert [entry["version"] for entry in record["rejected"].values()] == ["9"] and "current" not in record
    assert (models / "broken" / "9" / "broken.gguf").is_file()  # kept for a look, not served
    # The runtime's own events (the broken backend's backend_stopped) race with the update's.
    kinds = [e["kind"] for e in events_since(router, first) if not e["kind"].startswith("backend_")]
    assert kinds[-1] == "update_rejected" and "model_reset" in kinds[kinds.index("update_verified"):]  # model back

    again = update(router, "--source", source, "--name", "broken", "--models-dir", str(models))
    assert again.returncode == 0 and "already rejected" in again.stdout, again.stdout + again.stderr
    assert admin_status(router.url)["rollout"]["id"] == status["rollout"]["id"]  # no new rollout

    # --retry-rejected: refused for a version that is not rejected, reported by a dry run, then done.
    record_text = (models / "broken" / "update.json").read_text()
    last = events(router.url)[-1]["id"]
    refused = update(router, "--source", f"{host.url}/saiga-v2.gguf", "--name", "broken", "--models-dir", str(models),
                     "--retry-rejected")
    assert refused.returncode == 1 and "is not rejected" in refused.stderr, refused.stdout + refused.stderr
    dry = update(router, "--source", source, "--name", "broken", "--models-dir", str(models), "--retry-rejected",
                 "--dry-run")
    assert dry.returncode == 0 and "Would forget that broken 9 was rejected" in dry.stdout.replace("\n", " "), \
        dry.stdout + dry.stderr
    assert (models / "broken" / "update.json").read_text() == record_text and not update_events_since(router, last)
    retried = update(router, "--source", source, "--name", "broken", "--models-dir", str(models), "--retry-rejected",
                     *STEPS)
    assert retried.returncode == 2 and "forgot that broken 9 was rejected" in retried.stderr.replace("\n", " "), \
        retried.stdout + retried.stderr
    kinds = [e["kind"] for e in events(router.url) if e["id"] > last and not e["kind"].startswith("backend_")]
    assert kinds[0] == "update_retried" and "rollout_started" in kinds and kinds[-1] == "update_rejected", kinds
    assert admin_status(router.url)["rollout"]["id"] != status["rollout"]["id"]  # tried again for real
    record = json.loads((models / "broken" / "update.json").read_text())
    assert [entry["version"] for entry in record["rejected"].values()] == ["9"]  # and rejected again


def test_a_rejection_missed_by_a_killed_run_is_recorded_and_the_canary_given_back(router, host, tmp_path) -> None:
    models, stable = tmp_path / "models", admin_status(router.url)["stable"]
    canary = "green" if stable == "blue" else "blue"
    args = ("--source", f"{host.url}/broken.json", "--name", "killed", "--models-dir", str(models), *STEPS)
    since = last_event_id(router)
    kill_after_rollout_started(router, since, *args)  # the broken backend takes a second or more to fail
    record = json.loads((models / "killed" / "update.json").read_text())
    assert "pending" in record, f"the run recorded its outcome before it was killed: {record}"
    pending = record["pending"]
    path = str((models / "killed" / "9" / "broken.gguf").resolve())
    assert (pending["version"], pending["canary"], pending["path"]) == ("9", canary, path)
    wait_until(lambda: admin_status(router.url)["rollout"]["phase"] == "failed", timeout_s=30)
    killed_at = last_event_id(router)  # nobody recorded the failure, and the canary still points at the file

    done = update(router, *args)  # records the rejection the killed run missed, and says so: exit 2
    assert done.returncode == 2 and "(the cutover of a stopped run, recorded now)" in " ".join(done.stdout.split()), \
        done.stdout + done.stderr
    assert "catch up" in done.stdout and "rejected" in done.stdout
    record = json.loads((models / "killed" / "update.json").read_text())
    assert "pending" not in record and [e["version"] for e in record["rejected"].values()] == ["9"]
    after = [e for e in events_since(router, killed_at) if e["kind"] in MODEL_AND_ROLLOUT]
    assert [e["kind"] for e in after] in (["model_reset", "update_recovered"], ["model_set", "update_recovered"]), after
    given_back = after[0]
    assert given_back["message"].startswith(f"{canary} starts on") and given_back["after"] == pending["before"]
    recovered = after[1]["message"]
    assert "ended failed" in recovered and "killed 9 rejected" in recovered, recovered
    assert admin_status(router.url)["stable"] == stable


def test_a_promotion_a_killed_run_left_running_is_followed_and_recorded(router, host, tmp_path) -> None:
    models, stable = tmp_path / "models", admin_status(router.url)["stable"]
    canary = "green" if stable == "blue" else "blue"
    args = ("--source", f"{host.url}/saiga-v2.gguf", "--name", "resumed", "--models-dir", str(models), *STEPS)
    since = last_event_id(router)
    host.reset()
    with LoadDriver(router.url) as load:
        kill_after_rollout_started(router, since, *args)
        assert json.loads((models / "resumed" / "update.json").read_text())["pending"]["canary"] == canary
        done = update(router, *args)  # finds the rollout going (or already promoted) and sees it through
    assert done.returncode == 0 and "already current" in done.stdout, done.stdout + done.stderr
    assert load.failures == []
    record = json.loads((models / "resumed" / "update.json").read_text())
    assert "pending" not in record and record["current"]["path"].endswith("saiga-v2.gguf")
    assert (models / "resumed" / "current" / "saiga-v2.gguf").is_file()
    status = admin_status(router.url)
    assert status["stable"] == canary and served_model(router, canary) == f"{canary}-saiga-v2.gguf"
    kinds = [e["kind"] for e in events_since(router, since)]
    assert kinds.count("rollout_started") == 1 and "promoted" in kinds and "update_recovered" in kinds, kinds
    assert "update_promoted" not in kinds  # the catch-up recorded it, in its own words


def test_a_canary_set_but_never_rolled_out_gets_its_model_back(router, host, new_gguf, tmp_path) -> None:
    """Killed between handing the canary the file and starting the rollout (written as that run left it)."""
    root, stable = tmp_path / "models" / "unrolled", admin_status(router.url)["stable"]
    canary = "green" if stable == "blue" else "blue"
    (root / "5").mkdir(parents=True)
    path = shutil.copy(new_gguf, root / "5" / "saiga-v2.gguf")
    since = last_event_id(router)
    put = httpx.put(f"{router.url}/admin/runtime/{canary}/model", json={"model": str(path)},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert put.status_code == 200, put.text
    sha = httpx.get(f"{host.url}/broken.json").json()["sha256"]  # the source's version, rejected before
    rejected = {f"manifest {host.url}/broken.json version 9 sha256 {sha}": {"version": "9", "reason": "r", "date": "d"}}
    pending = {"version": "5", "fingerprint": "f5", "path": str(path), "canary": canary, "since": since}
    (root / "update.json").write_text(json.dumps({"rejected": rejected, "pending": pending}))

    dry = update(router, "--source", f"{host.url}/broken.json", "--name", "unrolled", "--models-dir", str(root.parent),
                 "--dry-run")
    assert dry.returncode == 0 and "no rollout started" in dry.stdout.replace("\n", " "), dry.stdout + dry.stderr
    assert json.loads((root / "update.json").read_text())["pending"] == pending
    done = update(router, "--source", f"{host.url}/broken.json", "--name", "unrolled", "--models-dir",
                  str(root.parent))
    assert done.returncode == 0 and "already rejected" in done.stdout, done.stdout + done.stderr
    assert "pending" not in json.loads((root / "update.json").read_text())
    after = [e for e in events_since(router, since) if e["kind"] in MODEL_AND_ROLLOUT]
    assert [e["kind"] for e in after][0::2] == ["model_set", "update_recovered"], after
    assert after[1]["kind"] in ("model_set", "model_reset") and after[1]["after"] == put.json()["before"], after
    assert len(after) == 3 and "gave " + canary + " its previous model back" in after[2]["message"]


def test_one_run_at_a_time(router, host, tmp_path) -> None:
    models = tmp_path / "models"
    (models / "locked").mkdir(parents=True)
    with UpdateLock(models / "locked" / "update.lock"):
        done = update(router, "--source", f"{host.url}/saiga-v2.gguf", "--name", "locked", "--models-dir", str(models))
    assert done.returncode == 1 and f"PID {os.getpid()} holds" in done.stderr, done.stdout + done.stderr


def test_an_unwritable_models_dir_is_a_clear_error_and_the_live_model_stays(router, host, tmp_path) -> None:
    blocker = tmp_path / "models"
    blocker.write_text("not a folder")
    stable = admin_status(router.url)["stable"]
    live_model = served_model(router, stable)
    done = update(router, "--source", f"{host.url}/saiga-v2.gguf", "--name", "saiga", "--models-dir", str(blocker))
    assert done.returncode == 1 and "cannot write to the models directory" in done.stderr, done.stdout + done.stderr
    assert served_model(router, stable) == live_model and admin_status(router.url)["stable"] == stable


def test_a_dry_run_reports_and_changes_nothing(router, host, tmp_path) -> None:
    models = tmp_path / "models"
    last = events(router.url)[-1]["id"]
    host.reset()
    done = update(router, "--source", f"{host.url}/saiga-v2.gguf", "--name", "dry", "--models-dir", str(models),
                  "--dry-run")
    assert done.returncode == 0 and "Would download" in done.stdout.replace("\n", " "), done.stdout + done.stderr
    assert "Would download" not in done.stderr.replace("\n", " "), done.stderr  # said once, in the summary
    assert not models.exists() and host.bytes_served == 0 and not update_events_since(router, last)


def test_the_model_route_refuses_what_would_touch_live_traffic(router, new_gguf, tmp_path) -> None:
    url, headers = router.url, {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    stable = admin_status(url)["stable"]
    canary = "green" if stable == "blue" else "blue"
    put = lambda colour, body: httpx.put(f"{url}/admin/runtime/{colour}/model", json=body, headers=headers)  # noqa: E731

    first = last_event_id(router)
    refused = put(stable, {"model": str(new_gguf)})
    assert refused.status_code == 409 and f"{stable} is the stable colour" in refused.json()["error"]["message"]
    missing = put(canary, {"model": str(tmp_path / "absent.gguf")})
    assert missing.status_code == 422 and "no file or directory" in missing.json()["error"]["message"]
    assert put(canary, {"model": str(new_gguf), "engine": "vllm"}).status_code == 422
    forged = httpx.post(f"{url}/admin/events", json={"kind": "promoted", "message": "x"}, headers=headers)
    assert forged.status_code == 422
    assert "model_set" not in [e["kind"] for e in events_since(router, first)]

    started = httpx.post(f"{url}/admin/rollout", json={"steps": [50, 100], "interval_s": 60}, headers=headers)
    assert started.status_code == 201
    busy = put(canary, {"model": str(new_gguf)})
    assert busy.status_code == 409 and "a rollout is" in busy.json()["error"]["message"]
    assert httpx.post(f"{url}/admin/rollout/rollback", headers=headers).status_code == 200


def test_without_a_runtime_the_router_says_it_does_not_start_backends(start_router, upstreams, new_gguf) -> None:
    plain = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url)
    answer = httpx.put(f"{plain.url}/admin/runtime/green/model", json={"model": str(new_gguf)},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 409 and "does not start the backends" in answer.json()["error"]["message"]


def test_a_model_set_survives_a_router_restart(start_router, tiny_models, new_gguf, tmp_path) -> None:
    shutil.copy(new_gguf, tmp_path / "saiga-v2.gguf")
    spec = {"engine": "llama_cpp", "model": str(tiny_models.gguf_path)}
    runtime = {"kind": "local", "logs_dir": str(tmp_path / "backends"), "stop_grace_s": 5,
               "blue": {**spec, "port": free_port()}, "green": {**spec, "port": free_port()}}
    env, state = {**FAST, "BLUEGREEN_RUNTIME": json.dumps(runtime)}, tmp_path / "restart.db"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    first = start_router("http://unused:1", "http://unused:2", env=env, state=state)
    answer = httpx.put(f"{first.url}/admin/runtime/green/model", json={"model": str(tmp_path / "saiga-v2.gguf")},
                       headers=headers)
    assert answer.status_code == 200 and answer.json()["before"] is None
    first.stop()

    second = start_router("http://unused:1", "http://unused:2", env=env, state=state)
    assert httpx.post(f"{second.url}/admin/rollout", json={"steps": [50, 100], "interval_s": 60},
                      headers=headers).status_code == 201
    wait_until(lambda: admin_status(second.url)["backends"]["green"]["ready"], timeout_s=60)
    assert served_model(second, "green") == "green-saiga-v2.gguf"


def test_the_cron_wrapper_logs_and_passes_the_exit_code_through(router, host, tmp_path) -> None:
    log = tmp_path / "auto-update.log"
    env = {**os.environ, "BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN, "BLUEGREEN_ROUTER": router.url, "UPDATE_LOG": str(log),
           "UPDATE_SOURCE": f"{host.url}/saiga-v2.gguf", "UPDATE_NAME": "cron", "UPDATE_MODELS_DIR": str(tmp_path),
           "BLUEGREEN": str(Path(sys.executable).with_name("bluegreen"))}
    done = subprocess.run([str(REPO / "scripts" / "auto-update.sh"), "--sha256", "0" * 64], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    text = log.read_text()
    assert "checksum mismatch" in text and "== rejected" in text
    missing = subprocess.run([str(REPO / "scripts" / "auto-update.sh")], env={**env, "UPDATE_SOURCE": ""},
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and "set UPDATE_SOURCE" in missing.stderr


@pytest.mark.slow
def test_the_docker_runtime_starts_the_canary_on_the_downloaded_file(start_router, docker_image: str,
                                                                     tiny_models: TinyModels, host, tmp_path) -> None:
    """The same path with containers (slow: it needs the backend image, built once per session)."""
    from tests.e2e.test_runtime_docker import containers, runtime_env

    instance = f"bgupdate{os.getpid()}"
    router = start_router("http://unused:1", "http://unused:2", env=runtime_env(docker_image, instance,
                                                                                tiny_models.gguf_path))
    try:
        wait_until(lambda: admin_status(router.url)["backends"]["blue"]["ready"], timeout_s=60)
        with LoadDriver(router.url) as load:
            done = update(router, "--source", f"{host.url}/saiga-v2.gguf", "--name", "saiga", "--models-dir",
                          str(tmp_path / "models"), *STEPS)
        assert done.returncode == 0, done.stdout + done.stderr
        assert load.failures == [] and load.colours["green"] > 0
        green = containers(instance)["green"]["attrs"]
        assert [(m["Destination"], m["RW"]) for m in green["Mounts"]] == [("/models/saiga-v2.gguf", False)]
        assert served_model(router, "green") == "green-saiga-v2.gguf"
    finally:
        router.stop()
        for colour in ("blue", "green"):
            subprocess.run(["docker", "rm", "-f", f"{instance}-{colour}"], capture_output=True)
