"""Monitoring files: the Prometheus config passes promtool, and every Grafana panel's query names
metrics that a real router and a real backend export, and runs on a real Prometheus."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx

from tests.e2e.helpers import wait_until
from tests.e2e.prometheus_server import PrometheusServer

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
METRIC = re.compile(r"\b((?:bluegreen|model_backend)_[a-z_]+)")


def dashboard_queries() -> list[str]:
    dashboard = json.loads((COMPOSE / "grafana" / "dashboards" / "bluegreen.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_prometheus_config_passes_promtool() -> None:
    done = subprocess.run(["promtool", "check", "config", str(COMPOSE / "prometheus" / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_dashboard_query_names_real_metrics_and_runs(start_router, llama_backend, tmp_path: Path) -> None:
    router = start_router(llama_backend.url, llama_backend.url)
    with httpx.Client(timeout=60) as client:  # labelled series appear once something was served
        for i in range(3):
            client.post(f"{router.url}/api/v1/chat/legal", json={"question": "Что такое иск?", "max_tokens": 4},
                        headers={"X-Session-ID": f"m{i}"}).raise_for_status()
        exported = client.get(f"{router.url}/metrics").text + client.get(f"{llama_backend.url}/metrics").text
    names = {name for expr in dashboard_queries() for name in METRIC.findall(expr)}
    assert names, "the dashboard queries no bluegreen or model_backend metric"
    missing = sorted(name for name in names if not re.search(rf"^{name}(\{{| )", exported, re.MULTILINE))
    assert not missing, f"the dashboard queries metrics nobody exports: {missing}"

    targets = [router.url.removeprefix("http://"), llama_backend.url.removeprefix("http://")]
    with PrometheusServer(tmp_path / "prometheus", targets) as prometheus:
        def scraped() -> bool:
            up = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": "sum(up)"}).json()["data"]["result"]
            return bool(up) and float(up[0]["value"][1]) == 2
        wait_until(scraped, timeout_s=20)
        for expr in dashboard_queries():
            answer = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}).json()
            assert answer["status"] == "success", (expr, answer.get("error"))
