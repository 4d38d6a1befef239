"""The `docker` runtime: each colour's backend as a container of the project's image.

The image is built from `compose/Dockerfile` when the router starts (if missing, or always). A
container uses host networking on the colour's loopback port, mounts its model read-only under
/models, may request GPUs, and carries labels naming its router instance, colour and a hash of
its whole configuration. When the router restarts, a running container with the same hash is
taken over instead of restarted (no second model load); any other container of that
instance and colour is stale and is removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.errors import RuntimeUnavailable
from router.runtimes.local import serve_flags
from router.runtimes.managed import ManagedRuntime
from router.runtimes.options import BackendSpec, DockerOptions, RuntimeOptions
from router.state import StateStore
from router.weights import Colour

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

log = logging.getLogger("bluegreen.runtime")

LABEL_MANAGED, LABEL_INSTANCE, LABEL_COLOUR, LABEL_SPEC = (
    "bluegreen.managed", "bluegreen.instance", "bluegreen.colour", "bluegreen.spec")
CONTAINER_MODELS = "/models"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*m")


def connect() -> DockerClient:
    """A client for the engine in DOCKER_HOST (default: the local socket), or a clear RuntimeUnavailable."""
    try:
        import docker
    except ImportError as exc:
        raise RuntimeUnavailable(
            "runtime.kind docker needs the Docker SDK: pip install 'bluegreen-llm[docker]'") from exc
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        raise RuntimeUnavailable(
            f"no Docker engine answers at {where}: {exc}. Start one (e.g. `dockerd --bridge=none --iptables=false`, "
            f"or scripts/dockerd.sh) or point DOCKER_HOST at it") from exc
    return client


def run_arguments(options: DockerOptions, colour: Colour, spec: BackendSpec, image_id: str) -> dict[str, Any]:
    """The `containers.run` keyword arguments for one colour (labels aside).

    A model path that exists on this machine is mounted read-only; anything else (an upstream model
    name) is passed through as it is."""
    model = Path(spec.model)
    volumes, model_in_container = {}, spec.model
    if model.exists():  # a file or directory on this machine, not an upstream model name
        model_in_container = f"{CONTAINER_MODELS}/{model.name}"
        volumes[str(model.resolve())] = {"bind": model_in_container, "mode": "ro"}
    arguments: dict[str, Any] = {
        "image": image_id,
        "name": f"{options.instance}-{colour.value}",
        "command": ["model-backend", "serve", "--host", "127.0.0.1", "--port", str(spec.port),
                    *serve_flags(colour, spec, model_in_container)],
        "network_mode": "host",
        "volumes": volumes,
        "environment": dict(spec.env),
    }
    resources = spec.resources
    if resources.gpus:
        arguments["device_requests"] = [{"Driver": "", "Count": resources.gpus, "Capabilities": [["gpu"]]}]
    if resources.memory:
        arguments["mem_limit"] = resources.memory
    if resources.cpus:
        arguments["nano_cpus"] = int(resources.cpus * 1e9)
    return arguments


def spec_hash(arguments: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:16]


def build_image(client: DockerClient, options: DockerOptions, on_line: Callable[[str], None] = log.info) -> str:
    """Build compose/Dockerfile into `options.image`, streaming the build's lines; the image id."""
    context = (options.context or PROJECT_ROOT).resolve()
    if not (context / "compose" / "Dockerfile").is_file():
        raise RuntimeUnavailable(f"no compose/Dockerfile under {context}; set runtime.docker.context to the project's "
                                 f"source tree, or build {options.image} yourself and set runtime.docker.build: never")
    on_line(f"building {options.image} from {context} (BASE_IMAGE={options.base_image}, ENGINES={options.engines})")
    recent: list[str] = []
    for chunk in client.api.build(path=str(context), dockerfile="compose/Dockerfile", tag=options.image, rm=True,
                                  forcerm=True, decode=True, network_mode="host",
                                  buildargs={"BASE_IMAGE": options.base_image, "ENGINES": options.engines}):
        if "error" in chunk:
            raise RuntimeUnavailable(f"building {options.image} failed: {chunk['error'].strip()}\n" + "\n".join(recent))
        for line in TERMINAL_CODES.sub("", chunk.get("stream", "")).splitlines():
            if line.strip():
                recent = [*recent[-9:], line]
                on_line(line)
    return _image_id(client, options.image)


def _image_id(client: DockerClient, tag: str) -> str:
    image_id = client.images.get(tag).id
    if image_id is None:  # the engine always names an image it returns; a None would be its bug
        raise RuntimeUnavailable(f"the Docker engine returned image {tag} without an id")
    return image_id


def ensure_image(client: DockerClient, options: DockerOptions) -> str:
    """The image id to run, building it as `options.build` says."""
    from docker.errors import ImageNotFound

    if options.build == "always":
        return build_image(client, options)
    try:
        return _image_id(client, options.image)
    except ImageNotFound as exc:
        if options.build == "never":
            raise RuntimeUnavailable(f"image {options.image} not found; build it (docker compose -f compose/"
                                     "docker-compose.blue-green.yml build) or set runtime.docker.build: missing") from exc
        return build_image(client, options)


class ContainerHandle:
    def __init__(self, client: DockerClient, options: DockerOptions, colour: Colour, spec: BackendSpec,
                 image_id: str) -> None:
        self.client, self.options, self.colour = client, options, colour
        self.url = f"http://127.0.0.1:{spec.port}"
        self.arguments = run_arguments(options, colour, spec, image_id)
        self.labels = {LABEL_MANAGED: "true", LABEL_INSTANCE: options.instance, LABEL_COLOUR: colour.value,
                       LABEL_SPEC: spec_hash(self.arguments)}
        self.container: Container | None = None

    def start(self) -> str:
        from docker.errors import APIError, DockerException

        try:
            return self._start()
        except APIError as exc:
            self._remove_leftover()  # `run` creates before it starts: a start refused leaves a container
            reason = exc.explanation or exc
            raise RuntimeUnavailable(f"docker could not start {self.arguments['name']}: {reason}") from exc
        except (DockerException, OSError) as exc:  # the engine went away
            raise RuntimeUnavailable(f"docker could not start {self.arguments['name']}: {exc}") from exc

    def _remove_leftover(self) -> None:
        from docker.errors import DockerException

        try:
            self.client.containers.get(self.arguments["name"]).remove(force=True)
        except DockerException:
            pass

    def _start(self) -> str:
        removed = []
        mine = [f"{LABEL_INSTANCE}={self.options.instance}", f"{LABEL_COLOUR}={self.colour.value}"]
        for existing in self.client.containers.list(all=True, filters={"label": mine}, ignore_removed=True):
            if existing.status == "running" and existing.labels.get(LABEL_SPEC) == self.labels[LABEL_SPEC]:
                self.container = existing
                return f"took over running container {existing.name} ({existing.short_id}) on {self.url}"
            existing.remove(force=True)
            removed.append(f"{existing.name} ({existing.short_id}, {existing.status})")
        self.container = self.client.containers.run(**self.arguments, labels=self.labels, detach=True)
        stale = f"; removed stale {', '.join(removed)}" if removed else ""
        return (f"started container {self.container.name} ({self.container.short_id}) from {self.options.image} "
                f"on {self.url}{stale}")

    def stop(self, grace_s: float) -> None:
        from docker.errors import NotFound

        container, self.container = self.container, None
        if container is None:
            return
        try:
            if grace_s > 0:
                container.stop(timeout=math.ceil(grace_s))  # SIGTERM, SIGKILL after the timeout
            container.remove(force=True)
        except NotFound:
            pass

    def exit_code(self) -> int | None:
        from docker.errors import NotFound

        if self.container is None:
            return None
        try:
            self.container.reload()
        except NotFound:
            return -1  # removed behind the router's back
        if self.container.status in ("exited", "dead"):
            return int(self.container.attrs["State"]["ExitCode"])
        return None

    def log_tail(self, lines: int) -> str:
        from docker.errors import NotFound

        try:
            return self.container.logs(tail=lines).decode(errors="replace") if self.container else ""
        except NotFound:
            return ""

    def status(self) -> dict[str, Any]:
        return {"container": self.arguments["name"], "id": self.container.short_id if self.container else None}


class DockerRuntime(ManagedRuntime):
    name = "docker-runtime"

    def __init__(self, options: RuntimeOptions, store: StateStore) -> None:
        super().__init__(options, store)
        self.client = connect()
        self.image_id: str | None = None

    def prepare(self) -> None:
        self._image()

    def _image(self) -> str:
        if self.image_id is None:
            self.image_id = ensure_image(self.client, self.options.docker)
        return self.image_id

    def make_handle(self, colour: Colour) -> ContainerHandle:
        return ContainerHandle(self.client, self.options.docker, colour, self.spec(colour), self._image())
