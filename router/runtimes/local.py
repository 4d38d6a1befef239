"""The `local` runtime: each colour's backend as a `model-backend serve` process on this machine.

The router starts the stable colour when it starts, the canary when a rollout starts, and stops
the old colour when the fast-rollback window after a promotion is over. A backend that exits on
its own is noticed within a second (an event; the probes take its traffic away) and restarted if
configured. Every process started here is stopped, by its PID, when the router exits.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from model_backends.launcher import BackendProcess
from router.background import Periodic
from router.routing import Colour
from router.state import EventDraft, StateStore, StateUnavailable

log = logging.getLogger("bluegreen.runtime")


class BackendSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: str = Field("llama_cpp", description="llama_cpp | transformers | openai_upstream")
    model: str = Field(description="GGUF file, HF checkpoint directory, or upstream model name")
    port: int = Field(ge=1, le=65535, description="loopback port; the router's URL for this colour follows it")
    args: list[str] = Field(default_factory=list, description="more `model-backend serve` flags")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment (never secrets in the file)")


class RuntimeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "local"] = Field("none", description="none: backends are given by URL; local: processes")
    blue: BackendSpec | None = None
    green: BackendSpec | None = None
    logs_dir: Path = Path("runs/backends")
    ready_timeout_s: float = Field(600.0, gt=0, description="a backend must load its model within this")
    restart_on_crash: bool = True
    stop_grace_s: float = Field(30.0, gt=0, description="SIGTERM, then SIGKILL after this")

    def spec(self, colour: Colour) -> BackendSpec:
        spec = self.blue if colour is Colour.blue else self.green
        if spec is None:
            raise ValueError(f"runtime.{colour.value} is not configured")
        return spec


class LocalRuntime(Periodic):
    name = "local-runtime"
    interval_s = 1.0

    def __init__(self, options: RuntimeOptions, store: StateStore) -> None:
        super().__init__()
        self.options, self.store = options, store
        self.processes: dict[Colour, BackendProcess] = {}
        self.restarts: dict[Colour, int] = {colour: 0 for colour in Colour}

    def _process(self, colour: Colour) -> BackendProcess:
        spec = self.options.spec(colour)
        args = ["--engine", spec.engine, "--model", spec.model, "--model-name", f"{colour.value}-{Path(spec.model).name}",
                *spec.args]
        # The router's own settings (its admin token among them) are not the backend's business.
        return BackendProcess(args, self.options.logs_dir / f"{colour.value}.log", port=spec.port, env=spec.env,
                              drop_env_prefixes=("BLUEGREEN_",))

    async def start_colour(self, colour: Colour) -> None:
        """Start `colour` unless it runs already; returns once its process is up (readiness is the probes' job)."""
        current = self.processes.get(colour)
        if current is not None and current.running:
            return
        process = self._process(colour)
        await asyncio.to_thread(process.start)
        self.processes[colour] = process
        await self._record("backend_started", f"{colour.value} started as PID {process.pid} on {process.url}")

    async def stop_colour(self, colour: Colour) -> None:
        process = self.processes.pop(colour, None)
        if process is not None and process.running:
            pid = process.pid
            await asyncio.to_thread(process.stop, self.options.stop_grace_s)
            await self._record("backend_stopped", f"{colour.value} (PID {pid}) stopped")

    async def step(self) -> None:
        """Notice a backend that exited on its own; restart it when configured."""
        for colour, process in list(self.processes.items()):
            code = process.exit_code
            if code is None:
                continue
            self.processes.pop(colour)
            await self._record("backend_crashed", f"{colour.value} (PID {process.pid}) exited with {code}: "
                                                  f"{process.log_tail(3).strip()[-300:]}")
            if self.options.restart_on_crash:
                self.restarts[colour] += 1
                await self.start_colour(colour)

    def status(self) -> dict[str, Any]:
        return {colour.value: {"pid": p.pid, "url": p.url, "restarts": self.restarts[colour]}
                for colour, p in self.processes.items()}

    async def stop(self) -> None:
        await super().stop()
        await asyncio.gather(*(self.stop_colour(colour) for colour in list(self.processes)))

    async def _record(self, kind: str, message: str) -> None:
        log.warning(message)
        try:
            await asyncio.to_thread(self.store.record, EventDraft("runtime", kind, message))
        except StateUnavailable as exc:
            log.error("could not record %s: %s", kind, exc)
