"""Shared fixtures: the tiny models (built once, cached in .cache/) and real backend processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from model_backends.tiny.build import TinyModels, build_tiny_models
from router.weights import Colour
from testkit.services import BackendProcess, RouterProcess
from tests.e2e.helpers import ADMIN_TOKEN
from tests.e2e.http_upstream import HttpUpstream

REPO = Path(__file__).resolve().parents[2]
DOCKER_TEST_IMAGE = "bluegreen-llm:test"


@pytest.fixture(scope="session")
def tiny_models() -> TinyModels:
    return build_tiny_models(REPO / ".cache" / "tiny-models")


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backend-logs")


def _serve(logs_dir: Path, name: str, args: list[str], env: dict[str, str] | None = None) -> Iterator[BackendProcess]:
    with BackendProcess(args, logs_dir / f"{name}.log", env=env) as backend:
        yield backend


@pytest.fixture(scope="session")
def llama_backend(tiny_models: TinyModels, logs_dir: Path) -> Iterator[BackendProcess]:
    yield from _serve(logs_dir, "llama", ["--engine", "llama_cpp", "--model", str(tiny_models.gguf_path)])


@pytest.fixture(scope="session")
def hf_backend(tiny_models: TinyModels, logs_dir: Path) -> Iterator[BackendProcess]:
    yield from _serve(logs_dir, "hf", ["--engine", "transformers", "--model", str(tiny_models.hf_dir)])


@pytest.fixture(scope="session", params=["llama_cpp", "transformers"])
def backend(request: pytest.FixtureRequest) -> BackendProcess:
    """Each real engine in turn."""
    return request.getfixturevalue("llama_backend" if request.param == "llama_cpp" else "hf_backend")


@pytest.fixture
def serve(tiny_models: TinyModels, logs_dir: Path) -> Iterator:
    """Start a backend with extra flags for one test; stopped (by PID) when the test ends."""
    started: list[BackendProcess] = []

    def start(name: str, args: list[str], env: dict[str, str] | None = None) -> BackendProcess:
        backend = BackendProcess(args, logs_dir / f"{name}.log", env=env).__enter__()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture(scope="session")
def pair() -> Iterator[dict[Colour, HttpUpstream]]:
    """A blue and a green small real HTTP server, shared by the tests; `upstreams` resets them."""
    servers = {colour: HttpUpstream(colour.value).start() for colour in Colour}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def upstreams(pair: dict[Colour, HttpUpstream]) -> dict[Colour, HttpUpstream]:
    for server in pair.values():
        server.reset()
    return pair


@pytest.fixture
def start_router(tmp_path: Path, logs_dir: Path) -> Iterator:
    """Start `bluegreen serve` processes for one test (fast probes, an admin token, state in tmp)."""
    started: list[RouterProcess] = []

    def start(blue: str, green: str, env: dict[str, str] | None = None, state: Path | None = None,
              port: int | None = None, until_ready: bool = True) -> RouterProcess:
        """Returns once the router is ready (a backend is), or only up when `until_ready` is off."""
        settings = {"BLUEGREEN_ADMIN_TOKEN": ADMIN_TOKEN, "BLUEGREEN_PROBES__INTERVAL_S": "0.2", **(env or {})}
        args = ["--blue", blue, "--green", green, "--state", str(state or tmp_path / "router.db")]
        router = RouterProcess(args, logs_dir / f"router-{len(started)}.log", port=port, env=settings)
        started.append(router)
        router.start()
        router.wait_ready(timeout_s=30, path="/ready" if until_ready else "/health")
        return router

    yield start
    for router in started:
        router.stop()


@pytest.fixture(scope="session")
def docker_image() -> Iterator[str]:
    """The backend image with the llama engine, built as an operator would offline (see offline_image)."""
    from testkit.offline_image import offline_image

    with offline_image(DOCKER_TEST_IMAGE) as image:
        yield image
