"""Start a service (`model-backend serve`, `bluegreen serve`) on a free loopback port; stop it by PID.

Used by the demo, the benchmarks and the tests; it owns only the processes it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> None:
    """Signal one child we started, then SIGKILL it if it has not exited within `grace_s`."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServiceProcess:
    """One HTTP service subprocess in its own process group, logging to a file, ready on `/ready`."""

    module = "model_backends.cli"

    def __init__(self, args: list[str], log_path: Path, port: int | None = None, env: dict[str, str] | None = None,
                 drop_env_prefixes: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._args = [*self.command(self.port), *args]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(drop_env_prefixes)} if drop_env_prefixes \
            else dict(os.environ)
        self._env = {**inherited, **(env or {})}
        self._process: subprocess.Popen[bytes] | None = None

    def command(self, port: int) -> list[str]:
        """The program and its fixed flags; subclasses name another program."""
        return [sys.executable, "-m", self.module, "serve", "--port", str(port)]

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The exit status of a process that ended on its own (None while it runs or after stop())."""
        return self._process.poll() if self._process is not None else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> "ServiceProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._args, stdout=log, stderr=subprocess.STDOUT, env=self._env, start_new_session=True
            )
        return self

    def wait_ready(self, timeout_s: float = 120.0, path: str = "/ready") -> dict:
        """Poll `path` until 200; raise with the log's tail if the process dies or time runs out."""
        name = self.module.split(".")[0]
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"{name} exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                response = httpx.get(f"{self.url}{path}", timeout=2.0)
                if response.status_code == 200:
                    return response.json()
                last = response.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{name} not ready after {timeout_s}s ({last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited within `grace_s`."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """SIGKILL at once: a crash, for drills and tests."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> "ServiceProcess":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class BackendProcess(ServiceProcess):
    """`model-backend serve` with the given flags."""

    module = "model_backends.cli"


class RouterProcess(ServiceProcess):
    """`bluegreen serve` with the given flags."""

    module = "router.cli"
