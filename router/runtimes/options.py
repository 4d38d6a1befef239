"""Runtime settings: which runtime starts the backends, and each colour's backend (`runtime:` in the config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from router.weights import Colour


class BackendResources(BaseModel):
    """Limits for a backend; the docker runtime applies them, the local runtime ignores them."""

    model_config = ConfigDict(extra="forbid")

    gpus: int = Field(0, ge=-1, description="GPUs to request (-1: all); Vistral 8-bit needs one")
    memory: str | None = Field(None, description="memory limit, e.g. 48g")
    cpus: float | None = Field(None, gt=0, description="CPU limit, e.g. 8")


class BackendSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: str = Field("llama_cpp", description="llama_cpp | transformers | openai_upstream")
    model: str = Field(description="GGUF file, HF checkpoint directory, or upstream model name")
    port: int = Field(ge=1, le=65535, description="loopback port; the router's URL for this colour follows it")
    args: list[str] = Field(default_factory=list, description="more `model-backend serve` flags")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment (never secrets in the file)")
    resources: BackendResources = BackendResources()

    @property
    def model_name(self) -> str:
        return Path(self.model).name


class DockerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field("bluegreen-llm:latest", description="the backend image (compose/Dockerfile)")
    build: Literal["missing", "always", "never"] = Field(
        "missing", description="build the image when the router starts: when it is missing, always, or never")
    context: Path | None = Field(None, description="build context [default: this project's source tree]")
    base_image: str = Field("python:3.11-slim", description="BASE_IMAGE build argument (scripts/build-base-image.sh "
                                                            "makes one on machines without registry access)")
    engines: str = Field("llama,vistral", description="ENGINES build argument: the extras installed in the image")
    instance: str = Field("bluegreen", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$",
                          description="names and labels the containers; one per router")


class RuntimeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "local", "docker"] = Field(
        "none", description="none: backends are given by URL; local: processes; docker: containers")
    blue: BackendSpec | None = None
    green: BackendSpec | None = None
    logs_dir: Path = Field(Path("runs/backends"), description="local runtime: one log file per colour")
    ready_timeout_s: float = Field(900.0, gt=0, description="a started backend must answer /ready within this, "
                                                           "or it is stopped (event backend_start_timeout)")
    restart_on_crash: bool = True
    stop_grace_s: float = Field(30.0, gt=0, description="SIGTERM, then SIGKILL after this")
    docker: DockerOptions = DockerOptions()

    def spec(self, colour: Colour) -> BackendSpec:
        spec = self.blue if colour is Colour.blue else self.green
        if spec is None:
            raise ValueError(f"runtime.{colour.value} is not configured")
        return spec
