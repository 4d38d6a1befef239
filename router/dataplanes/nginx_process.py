"""Run nginx as a child process on a rendered config: for tests, benchmarks and local demos.

In production nginx runs as a service (or a container) and the router only renders, tests and
reloads its config; this runner owns the process it starts and stops it by its PID.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from bluegreen_common.processes import free_port, stop_process
from router.dataplanes.nginx import NginxDataPlane, NginxOptions, prepare_prefix, render_nginx
from router.weights import Colour, bp_to_percent


def local_nginx_options(workdir: Path, **overrides: object) -> NginxOptions:
    """Options for a private nginx on a free loopback port under `workdir`, with limits out of the way."""
    if shutil.which("nginx") is None:
        raise RuntimeError("nginx is not installed; `make setup` installs it (apt-get install nginx)")
    settings = {"listen": f"127.0.0.1:{free_port()}", "prefix": workdir, "conf_path": workdir / "nginx.conf",
                "worker_processes": "1", "worker_shutdown_timeout_s": 5, "limit_conn": 65_000,
                "limit_req_rate": "100000r/s", "limit_req_burst": 100_000, **overrides}
    return NginxOptions(**settings)


class NginxProcess:
    """nginx in the foreground (daemon off) so the test owns its PID; reloads go through the data plane."""

    def __init__(self, options: NginxOptions, blue_url: str, green_url: str, green_bp: int = 0,
                 stable: Colour = Colour.blue) -> None:
        self.options = options
        self.url = f"http://{options.listen}"
        self.port = int(options.listen.rsplit(":", 1)[1])
        self.plane = NginxDataPlane(options, lambda bp, colour: render_nginx(options, blue_url, green_url, bp,
                                                                              stable=colour))
        self.stable = stable
        prepare_prefix(options)
        options.conf_path.write_text(self.plane.render(green_bp, stable))
        self._process: subprocess.Popen[bytes] | None = None

    def set_green(self, green_bp: int, wait: bool = True) -> None:
        """Validate, swap, reload; with `wait`, until fresh connections only reach the new workers
        (an old worker may accept for a moment after the reload signal)."""
        self.plane.install(self.plane.validate(green_bp, self.stable), green_bp, self.stable)
        if wait:
            self.wait_for_green(green_bp)

    def wait_for_green(self, green_bp: int) -> None:
        """Until 20 fresh connections in a row reach workers on `green_bp` (whoever reloaded nginx)."""
        marker = f"green={bp_to_percent(green_bp)}"
        deadline = time.monotonic() + 10
        in_a_row = 0
        while in_a_row < 20:
            in_a_row = in_a_row + 1 if marker in httpx.get(f"{self.url}/nginx-health", timeout=2).text else 0
            if time.monotonic() > deadline:
                raise TimeoutError(f"nginx did not pick up the config for green {marker}")
            time.sleep(0.01)

    def __enter__(self) -> NginxProcess:
        self._process = subprocess.Popen(
            ["nginx", "-c", str(self.options.conf_path.resolve()), "-p", str(self.options.prefix.resolve()),
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # errors go to its error log
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/nginx-health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.__exit__()
        raise TimeoutError("nginx did not start")

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            stop_process(self._process, signal.SIGQUIT)  # graceful: open streams finish first
            self._process = None
