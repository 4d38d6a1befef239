"""The `local` runtime: each colour's backend as a `model-backend serve` process on this machine.

Each process runs in its own process group and logs to `logs_dir/<colour>.log`; it is stopped by
its PID (SIGTERM to the group, SIGKILL after `stop_grace_s`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from bluegreen_common.processes import ServiceProcess
from router.errors import RuntimeUnavailable
from router.runtimes.managed import ManagedRuntime
from router.runtimes.options import BackendSpec
from router.weights import Colour


def model_backend_program() -> tuple[str, ...]:
    """The `model-backend` program: beside this interpreter (a virtualenv), else on PATH."""
    beside = Path(sys.executable).with_name("model-backend")
    if beside.exists():
        return (str(beside),)
    found = shutil.which("model-backend")
    if found is None:
        raise RuntimeUnavailable("the model-backend program is not installed (pip install bluegreen-llm[llama])")
    return (found,)


def serve_flags(colour: Colour, spec: BackendSpec, model_path: str) -> list[str]:
    """`model-backend serve` flags after the port, shared by every runtime."""
    return ["--engine", spec.engine, "--model", model_path, "--model-name", f"{colour.value}-{spec.model_name}",
            *spec.args]


class ProcessHandle:
    def __init__(self, process: ServiceProcess) -> None:
        self.process = process
        self.url = process.url

    def start(self) -> str:
        try:
            self.process.start()
        except OSError as exc:
            raise RuntimeUnavailable(f"could not run model-backend: {exc}") from exc
        return f"started as PID {self.process.pid} on {self.url}"

    def stop(self, grace_s: float) -> None:
        self.process.stop(grace_s)

    def exit_code(self) -> int | None:
        return self.process.exit_code

    def log_tail(self, lines: int) -> str:
        return self.process.log_tail(lines)

    def status(self) -> dict[str, Any]:
        return {"pid": self.process.pid}


class LocalRuntime(ManagedRuntime):
    name = "local-runtime"

    def make_handle(self, colour: Colour) -> ProcessHandle:
        spec = self.spec(colour)
        # The router's own settings (its admin token among them) are not the backend's business.
        return ProcessHandle(ServiceProcess(serve_flags(colour, spec, spec.model),
                                            self.options.logs_dir / f"{colour.value}.log", port=spec.port,
                                            env=spec.env, drop_env_prefixes=("BLUEGREEN_",),
                                            program=model_backend_program()))
