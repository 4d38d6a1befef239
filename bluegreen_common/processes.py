"""Start an HTTP service program on a loopback port, wait for it to be ready, stop it by its PID.

The router's local runtime runs `model-backend serve` through it; the demo, the benchmarks and the
tests run both programs the same way. It owns only the processes it started.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

LOWEST_PORT = 20_000  # above the well-known and registered ports services here are told to use (8001, 8080, ...)


def ephemeral_ports(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default where it cannot be read)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32_768, 60_999


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nothing listens on, for a server started next. Taken below the kernel's range for
    outgoing connections: a port the kernel hands out (bind to 0) can be taken by a client socket
    between this check and the server's bind, which then fails with "address in use"."""
    low, _ = ephemeral_ports()
    if low - LOWEST_PORT >= 1_000:
        for _ in range(50):
            port = random.randrange(LOWEST_PORT, low)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a crowded or odd range: the kernel's choice
        s.bind(("127.0.0.1", 0))
        chosen: int = s.getsockname()[1]
        return chosen


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace_s: float = 10.0) -> None:
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
    """One HTTP service subprocess in its own process group, logging to a file, ready on `/ready`.

    `program` is the command before `serve --port N`; subclasses set it, or callers pass it.
    """

    program: tuple[str, ...] = ()
    name = "service"

    def __init__(self, args: list[str], log_path: Path, port: int | None = None, env: dict[str, str] | None = None,
                 drop_env_prefixes: tuple[str, ...] = (), program: tuple[str, ...] | None = None) -> None:
        if program is not None:
            self.program = program
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
        return [*self.program, "serve", "--port", str(port)]

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

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._args, stdout=log, stderr=subprocess.STDOUT, env=self._env, start_new_session=True
            )
        return self

    def wait_ready(self, timeout_s: float = 120.0, path: str = "/ready") -> dict[str, Any]:
        """Poll `path` until 200; raise with the log's tail if the process dies or time runs out."""
        name = self.name
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"{name} exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                response = httpx.get(f"{self.url}{path}", timeout=2.0)
                if response.status_code == 200:
                    ready: dict[str, Any] = response.json()
                    return ready
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

    def __enter__(self) -> ServiceProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
