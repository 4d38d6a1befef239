"""A real Prometheus server on a loopback port, scraping given targets every second."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from bluegreen_common.processes import free_port, stop_process

CONFIG = """global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: bluegreen
    static_configs:
      - targets: [{targets}]
"""


class PrometheusServer:
    def __init__(self, workdir: Path, targets: list[str]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed; `make setup` installs it (apt-get install prometheus)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(CONFIG.format(targets=", ".join(f'"{t}"' for t in targets)))
        self.log_path = workdir / "prometheus.log"
        self._args = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                      f"--web.listen-address=127.0.0.1:{self.port}"]
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(self._args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise TimeoutError(f"prometheus did not get ready: {self.log_path.read_text()[-2000:]}")

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
