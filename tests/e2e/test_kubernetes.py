"""compose/kubernetes/: every overlay renders with `kubectl kustomize`, every object validates
against the Kubernetes OpenAPI schemas, and the manifests keep what they promise.

No cluster is reachable here, so the manifests are rendered, schema-validated and checked
against the programs' own settings, never applied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

from bluegreen_common import __version__
from bluegreen_common.settings import load_settings
from model_backends.config import BackendConfig
from model_backends.metrics import BackendMetrics
from router.config import RouterConfig
from router.runtimes.options import RuntimeOptions

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "compose" / "kubernetes"
# The Kubernetes release the objects are validated against: kubernetes-validate's schemas for it
# ship in its wheel, so this runs offline. 1.32 is the release of the kubectl tested with here.
KUBERNETES_VERSION = "1.32.0"
OVERLAYS = ["base", *(f"overlays/{path.name}" for path in sorted((K8S / "overlays").iterdir()) if path.is_dir())]
MONITORING = [overlay for overlay in OVERLAYS if "monitoring" in overlay]
COLOURS = ("blue", "green")
GPU = "nvidia.com/gpu"
# The Secrets an operator makes by hand (docs/kubernetes.md), and their keys.
SECRETS = {"bluegreen-admin": {"token"}, "bluegreen-grafana": {"admin-password"}}
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|API_KEY", re.IGNORECASE)

Obj = dict[str, Any]


@cache
def kubectl() -> str:
    """kubectl, with a kustomize that reads `components` and `patches` (kustomize 4, kubectl 1.21)."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed: `make setup` installs it")
    done = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
    found = re.match(r"v?(\d+)", json.loads(done.stdout or "{}").get("kustomizeVersion", ""))
    if found is None or int(found.group(1)) < 4:
        pytest.fail(f"{path} has no kustomize 4 or later (kubectl 1.21+ has): the overlays need one")
    return path


@cache
def render(overlay: str) -> list[Obj]:
    done = subprocess.run([kubectl(), "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


def named(overlay: str, kind: str, name: str) -> Obj:
    found = [o for o in render(overlay) if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: expected one {kind} {name}, found {len(found)}"
    return found[0]


def generated(overlay: str, name: str) -> Obj:
    """A ConfigMap from a generator (its name carries a content hash)."""
    found = [o for o in render(overlay) if o["kind"] == "ConfigMap" and re.fullmatch(rf"{name}(-\w+)?", o["metadata"]["name"])]
    assert len(found) == 1, f"{overlay}: expected one ConfigMap {name}"
    return found[0]


def pod(deployment: Obj) -> Obj:
    spec: Obj = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: Obj, name: str) -> Obj:
    return next(c for c in pod(deployment)["containers"] if c["name"] == name)


def containers(overlay: str) -> list[tuple[Obj, Obj]]:
    return [(d, c) for d in render(overlay) if d["kind"] == "Deployment"
            for c in [*pod(d).get("initContainers", []), *pod(d)["containers"]]]


def volume(deployment: Obj, name: str) -> Obj:
    return next(v for v in pod(deployment)["volumes"] if v["name"] == name)


def mount_at(cont: Obj, path: Path) -> Obj:
    found = [m for m in cont.get("volumeMounts", []) if Path(m["mountPath"]) == path]
    assert found, f"container {cont['name']} mounts nothing at {path}"
    return found[0]


def service_links(overlay: str) -> dict[str, str]:
    """The variables Kubernetes gives a pod for every Service of its namespace (cluster IPs made up)."""
    links = {}
    services = [o for o in render(overlay) if o["kind"] == "Service"]
    for number, service in enumerate(services, start=1):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        address = f"10.96.0.{number}"
        ports = service["spec"]["ports"]
        links[f"{prefix}_SERVICE_HOST"] = address
        links[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        links[f"{prefix}_PORT"] = f"tcp://{address}:{ports[0]['port']}"
        for port in ports:
            if "name" in port:
                links[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
            tcp = f"{prefix}_PORT_{port['port']}_TCP"
            links.update({tcp: f"tcp://{address}:{port['port']}", f"{tcp}_PROTO": "tcp",
                          f"{tcp}_PORT": str(port["port"]), f"{tcp}_ADDR": address})
    return links


def environment(overlay: str, deployment: Obj, cont: Obj) -> dict[str, str]:
    """The container's environment as Kubernetes makes it: Service links, then its own `env`
    with `$(VAR)` expanded (values from Secrets stand in as "from-a-secret")."""
    env = service_links(overlay) if pod(deployment).get("enableServiceLinks", True) else {}
    for var in cont.get("env", []):
        value = var.get("value", "from-a-secret" if "valueFrom" in var else "")
        env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), value)
    return env


def settings(cls: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
             config_file: Path | None = None) -> Any:
    """`cls` loaded as the program in the container loads it: file, then the container's environment."""
    with monkeypatch.context() as patch:
        for name in os.environ:
            if name.startswith(("BLUEGREEN_", "MODEL_BACKEND_")):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return load_settings(cls, config_file)


def router_settings(overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RouterConfig:
    deployment = named(overlay, "Deployment", "router")
    router = container(deployment, "router")
    command = router["command"]
    config_path = Path(command[command.index("--config") + 1])
    config_map = generated(overlay, "bluegreen-router")
    assert mount_at(router, config_path.parent)["name"] == next(
        v["name"] for v in pod(deployment)["volumes"] if v.get("configMap", {}).get("name") == config_map["metadata"]["name"])
    local = tmp_path / config_path.name
    local.write_text(config_map["data"][config_path.name])
    loaded: RouterConfig = settings(RouterConfig, environment(overlay, deployment, router), monkeypatch, local)
    return loaded


def backend_settings(overlay: str, colour: str, monkeypatch: pytest.MonkeyPatch) -> BackendConfig:
    deployment = named(overlay, "Deployment", f"backend-{colour}")
    backend = container(deployment, "model-backend")
    command = backend["command"]
    assert command[:2] == ["model-backend", "serve"]
    flags = dict(zip(command[2::2], command[3::2], strict=True))
    loaded: BackendConfig = settings(BackendConfig, environment(overlay, deployment, backend), monkeypatch)
    return loaded.model_copy(update={"host": flags.get("--host", loaded.host), "port": int(flags.get("--port", loaded.port))})


def probe_budget_s(probe: Obj) -> int:
    return int(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))


# -- the schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    failures = []
    for obj in render(overlay):
        where = f"{obj['kind']} {obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{where}: {'.'.join(str(p) for p in exc.path)}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(f"{where}: {exc.message}")
    assert not failures, "\n".join(failures)
    assert {obj["metadata"].get("namespace") for obj in render(overlay) if obj["kind"] != "Namespace"} == {"bluegreen-llm"}


def test_the_schema_check_catches_a_misspelt_field() -> None:
    deployment = json.loads(json.dumps(named("base", "Deployment", "backend-green")))
    container(deployment, "model-backend")["readinesProbe"] = {"httpGet": {"path": "/ready", "port": "http"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# -- the backends ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_backends_are_probed_on_ready_and_health_with_time_to_load(overlay: str) -> None:
    from model_backends.app import create_app

    document = create_app(BackendConfig(engine="mock", allow_mock=True)).openapi()
    routes = {path for path, operations in document["paths"].items() if "get" in operations}
    for colour in COLOURS:
        backend = container(named(overlay, "Deployment", f"backend-{colour}"), "model-backend")
        ports = {p["name"] for p in backend["ports"]}
        paths = {kind: backend[kind]["httpGet"]["path"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
        assert paths == {"startupProbe": "/ready", "readinessProbe": "/ready", "livenessProbe": "/health"}
        assert set(paths.values()) <= routes
        assert all(backend[kind]["httpGet"]["port"] in ports for kind in paths)
    # Vistral-24B loads for minutes: the kubelet waits as long as the router's own runtime would.
    green = container(named(overlay, "Deployment", "backend-green"), "model-backend")
    assert probe_budget_s(green["startupProbe"]) >= RuntimeOptions().ready_timeout_s


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_green_gets_a_gpu_and_only_in_the_gpu_overlays(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_gpu = {(d["metadata"]["name"], c["name"]) for d, c in containers(overlay)
                if GPU in c.get("resources", {}).get("limits", {})}
    assert with_gpu == ({("backend-green", "model-backend")} if "gpu" in overlay else set())
    green = backend_settings(overlay, "green", monkeypatch)
    if "gpu" in overlay:
        assert (green.engine, green.transformers.quantization) == ("transformers", "8bit")
        assert int(container(named(overlay, "Deployment", "backend-green"), "model-backend")
                   ["resources"]["limits"][GPU]) == 1
    else:
        assert green.transformers.quantization == "none"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_backend_settings_load_and_models_come_from_the_read_only_volume(
        overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for colour in COLOURS:
        deployment = named(overlay, "Deployment", f"backend-{colour}")
        backend = container(deployment, "model-backend")
        config = backend_settings(overlay, colour, monkeypatch)
        assert config.host == "0.0.0.0" and config.port == backend["ports"][0]["containerPort"]
        for model in [config.model, *(spec.model for spec in config.fallbacks)]:
            mount = mount_at(backend, Path(model).parent)
            assert mount["readOnly"] is True
            claim = volume(deployment, mount["name"])["persistentVolumeClaim"]
            assert claim["readOnly"] is True
            assert named(overlay, "PersistentVolumeClaim", claim["claimName"])["spec"]["accessModes"] == ["ReadOnlyMany"]
        assert "replicas" not in deployment["spec"], "the autoscaler sets the replicas; apply would reset them"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_and_disruption_budgets_cover_each_colour(overlay: str) -> None:
    exported = {metric.name for metric in BackendMetrics().registry.collect()}
    for colour in COLOURS:
        deployment = named(overlay, "Deployment", f"backend-{colour}")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        hpa = named(overlay, "HorizontalPodAutoscaler", f"backend-{colour}")["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"backend-{colour}"}
        resources = {m["resource"]["name"] for m in hpa["metrics"] if m["type"] == "Resource"}
        assert resources == {"cpu", "memory"}
        pods = {m["pods"]["metric"]["name"] for m in hpa["metrics"] if m["type"] == "Pods"}
        assert pods == ({"model_backend_queue_depth"} if overlay in MONITORING else set())
        assert pods <= exported
        budget = named(overlay, "PodDisruptionBudget", f"backend-{colour}")["spec"]
        assert budget["selector"]["matchLabels"].items() <= labels.items()
        assert budget["minAvailable"] < hpa["minReplicas"], "a budget as large as the pool would block every drain"
    if overlay in MONITORING:
        rules = yaml.safe_load(named(overlay, "ConfigMap", "prometheus-adapter-rules")["data"]["config.yaml"])
        assert {rule["name"]["as"] for rule in rules["rules"]} == {"model_backend_queue_depth"}


# -- the router and nginx ----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_state_volume_is_mounted_where_state_path_points(
        overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = router_settings(overlay, monkeypatch, tmp_path)
    deployment = named(overlay, "Deployment", "router")
    mount = mount_at(container(deployment, "router"), config.state_path.parent)
    claim = volume(deployment, mount["name"])["persistentVolumeClaim"]["claimName"]
    assert named(overlay, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    # One SQLite writer: one router, and the old pod gone before the new one opens the file.
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nginx_runs_the_config_the_router_renders_and_can_be_signalled(
        overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = router_settings(overlay, monkeypatch, tmp_path)
    assert config.data_plane == "nginx" and config.runtime.kind == "none"
    deployment = named(overlay, "Deployment", "router")
    spec = pod(deployment)
    assert spec["shareProcessNamespace"] is True
    router, nginx = container(deployment, "router"), container(deployment, "nginx")
    prefix = config.nginx.prefix
    assert config.nginx.conf_path.parent == prefix
    shared = {mount_at(c, prefix)["name"] for c in (router, nginx)}
    assert len(shared) == 1 and "emptyDir" in volume(deployment, shared.pop())
    assert f"-c {config.nginx.conf_path} -p {prefix}" in " ".join(nginx["command"])
    # The reload signal needs the same user on both sides.
    users = {c.get("securityContext", {}).get("runAsUser", spec["securityContext"].get("runAsUser")) for c in (router, nginx)}
    assert len(users) == 1 and None not in users
    # Ports: nginx's listen address, the router's admin port, and the Services in front of them.
    assert {p["name"]: p["containerPort"] for p in nginx["ports"]} == {"http": int(config.nginx.listen.rsplit(":", 1)[1])}
    assert {p["name"]: p["containerPort"] for p in router["ports"]} == {"admin": config.port}
    assert named(overlay, "Service", "bluegreen-public")["spec"]["ports"][0]["targetPort"] == "http"
    assert named(overlay, "Service", "router-admin")["spec"]["ports"][0]["targetPort"] == "admin"
    template = (REPO / "nginx" / "nginx.conf.j2").read_text()
    assert all(p["httpGet"]["path"] == "/nginx-health" for p in (nginx["startupProbe"], nginx["livenessProbe"]))
    assert "location = /nginx-health" in template
    assert router["livenessProbe"]["httpGet"]["path"] == "/health"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_router_reaches_each_colour_by_its_service_address(
        overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """nginx logs the address it connected to; the router tells the colours apart by it, so the
    URLs are the Services' cluster IPs (link variables), not DNS names."""
    config = router_settings(overlay, monkeypatch, tmp_path)
    links = service_links(overlay)
    for colour in COLOURS:
        service = named(overlay, "Service", f"backend-{colour}")
        prefix = f"BACKEND_{colour.upper()}"
        assert config.backend_url(colour) == f"http://{links[f'{prefix}_SERVICE_HOST']}:{service['spec']['ports'][0]['port']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_links_never_shadow_a_setting(overlay: str) -> None:
    """A Service named like a setting (`bluegreen` → BLUEGREEN_PORT=tcp://…) would break the router."""
    settings_env = {f"{prefix}{name.upper()}" for prefix, cls in (("BLUEGREEN_", RouterConfig),
                                                                  ("MODEL_BACKEND_", BackendConfig))
                    for name in cls.model_fields}
    clashes = sorted(set(service_links(overlay)) & settings_env)
    assert not clashes, f"rename the Services whose link variables are settings: {clashes}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_selects_pods_with_the_port_it_names(overlay: str) -> None:
    deployments = [o for o in render(overlay) if o["kind"] == "Deployment"]
    for service in (o for o in render(overlay) if o["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        chosen = [d for d in deployments if selector <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(chosen) == 1, f"Service {service['metadata']['name']} selects {len(chosen)} Deployments"
        names = {p.get("name") for c in pod(chosen[0])["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names


# -- secrets and images ------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_in_the_manifests(overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert not [o for o in render(overlay) if o["kind"] == "Secret"]
    for _, cont in containers(overlay):
        for var in cont.get("env", []):
            if SECRET_NAME.search(var["name"]):
                reference = var.get("valueFrom", {}).get("secretKeyRef")
                assert reference is not None and "value" not in var, f"{var['name']} must come from a Secret"
                assert reference["key"] in SECRETS[reference["name"]]
    settings_file = generated(overlay, "bluegreen-router")["data"]["bluegreen.yaml"]
    assert "admin_token" not in yaml.safe_load(settings_file)
    config = router_settings(overlay, monkeypatch, tmp_path)
    assert config.admin_token is not None and config.admin_token.get_secret_value() == "from-a-secret"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(overlay: str) -> None:
    for _, cont in containers(overlay):
        image = cont["image"]
        name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
        assert "@sha256:" in image or (tag and tag != "latest"), f"{image} is not pinned"
        if name.rsplit("/", 1)[-1].startswith("bluegreen-llm"):
            assert tag == __version__, f"{image}: the project's image is tagged with its version, {__version__}"


# -- monitoring --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", MONITORING)
def test_prometheus_scrapes_the_annotated_pods_and_its_config_passes_promtool(overlay: str, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: `make setup` installs it (Debian's prometheus)")
    config = yaml.safe_load(generated(overlay, "prometheus")["data"]["prometheus.yml"])
    for pod_label in ("app.kubernetes.io/name", "bluegreen/colour"):
        meta = "__meta_kubernetes_pod_label_" + re.sub(r"\W", "_", pod_label)
        assert meta in json.dumps(config)
    scraped = [d for d in render(overlay) if d["kind"] == "Deployment"
               and d["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"]
    assert {d["metadata"]["name"] for d in scraped} == {"router", "backend-blue", "backend-green"}
    # Debian's promtool is built without Kubernetes discovery: check the rest with static targets.
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs")[0]["role"] == "pod"
        job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    done = subprocess.run([promtool, "check", "config", str(checked)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("overlay", MONITORING)
def test_grafana_serves_compose_s_dashboard(overlay: str) -> None:
    dashboards = generated(overlay, "grafana-dashboards")["data"]["bluegreen.json"]
    compose = (REPO / "compose" / "grafana" / "dashboards" / "bluegreen.json").read_text()
    assert dashboards == compose, ("copy compose/grafana/dashboards/bluegreen.json to "
                                   "compose/kubernetes/components/monitoring/grafana/bluegreen.json")
    grafana = container(named(overlay, "Deployment", "grafana"), "grafana")
    assert {v["name"] for v in grafana["env"] if "valueFrom" in v} == {"GF_SECURITY_ADMIN_PASSWORD"}
