"""Usage analytics end to end: a real router in front of the real tiny backends (llama.cpp blue,
transformers green) writes one line per request; `bluegreen analytics` reads them back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from router.analytics.names import CATEGORIES
from testkit.services import BackendProcess
from tests.e2e.helpers import metric_total, wait_until

QUESTIONS = ["Меня уволили без предупреждения, что делать?", "Какие налоги платит ИП?", "Как подать на развод?",
             "Соседи затопили квартиру, кто платит?"]
USER_PREFIX = "person-7311-"


def lines(path: Path) -> list[dict]:
    files = sorted(path.parent.glob(path.name + "*"), key=lambda p: p.name)
    return [json.loads(line) for file in files if not file.name.endswith(".salt")
            for line in file.read_text().splitlines() if line.strip()]


def analytics_json(path: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "router.admin.cli", "analytics", "--path", str(path), "--json", *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ask(client: httpx.Client, url: str, number: int) -> httpx.Response:
    """Alternately the legal route (JSON, then streamed) and the OpenAI one; every request its own session."""
    question = QUESTIONS[number % len(QUESTIONS)]
    headers = {"X-Session-ID": f"analytics-{number}", "X-User-ID": f"{USER_PREFIX}{number}", "X-User-Tier": "premium"}
    if number % 3 == 2:
        body = {"messages": [{"role": "user", "content": question}], "max_tokens": 8}
        return client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
    body = {"question": question, "max_tokens": 8, "stream": number % 3 == 1}
    return client.post(f"{url}/api/v1/chat/legal", json=body, headers=headers)


@pytest.fixture
def both(llama_backend: BackendProcess, hf_backend: BackendProcess) -> tuple[str, str]:
    return llama_backend.url, hf_backend.url


def test_every_request_is_one_line_without_text_and_the_command_counts_what_clients_saw(
        start_router, both: tuple[str, str], tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    env = {"BLUEGREEN_ANALYTICS__PATH": str(path), "BLUEGREEN_INITIAL_GREEN_WEIGHT": "50",
           "BLUEGREEN_RATE_LIMIT__TIERS": '{"free": 1, "premium": 100}'}
    router = start_router(*both, env=env)
    answered = 12
    seen: dict[str, int] = {}
    with httpx.Client(timeout=60) as client:
        for number in range(answered):
            response = ask(client, router.url, number)
            assert response.status_code == 200, response.text
            seen[response.headers["x-backend"]] = seen.get(response.headers["x-backend"], 0) + 1
        limited = [client.post(f"{router.url}/api/v1/chat/legal", headers={"X-User-ID": "limited", "X-User-Tier": "free"},
                               json={"question": QUESTIONS[0], "max_tokens": 8}).status_code for _ in range(2)]
    assert set(seen) == {"blue", "green"} and limited == [200, 429]
    requests = answered + 2
    wait_until(lambda: len(lines(path)) >= requests, timeout_s=10)
    records = lines(path)
    assert len(records) == requests
    refused = [r for r in records if r["status"] == 429]
    assert len(refused) == 1 and refused[0]["colour"] is None and refused[0]["tier"] == "free"
    records = [r for r in records if r["status"] != 429 and r["user"] != refused[0]["user"]]
    assert {r["source"] for r in records} == {"router"} and {r["status"] for r in records} == {200}
    assert all(r["category"] in CATEGORIES for r in records)
    assert {r["category"] for r in records} >= {"labour_law", "tax_law", "family_law", "housing"}
    assert all(r["completion_tokens"] > 0 and r["answer_length"] > 0 and r["ttft_s"] <= r["response_time_s"]
               for r in records)
    assert all(r["model"] for r in records) and {r["tier"] for r in records} == {"premium"}
    text = path.read_text()
    assert "question" not in records[0] and "answer" not in records[0]
    assert not any(q in text for q in QUESTIONS) and USER_PREFIX not in text  # no text, no raw user id
    assert len({r["user"] for r in records}) == answered  # one hash per user
    summary = analytics_json(path, "--by", "colour")
    assert summary["total"]["requests"] == requests and summary["total"]["errors"] == 0
    by_colour = {row["key"]: row["requests"] for row in summary["rows"]}
    limited_colour = next(r["colour"] for r in lines(path) if r["user"] == refused[0]["user"] and r["status"] == 200)
    seen[limited_colour] += 1
    assert by_colour == {**seen, "none": 1}  # "none": the router answered itself
    assert metric_total(router.url, "bluegreen_requests_by_category_total") == answered + 1


def test_log_text_puts_the_question_and_the_answer_in(start_router, both: tuple[str, str], tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    router = start_router(*both, env={"BLUEGREEN_ANALYTICS__PATH": str(path), "BLUEGREEN_ANALYTICS__LOG_TEXT": "true"})
    response = httpx.post(f"{router.url}/api/v1/chat/legal", json={"question": QUESTIONS[1], "max_tokens": 8}, timeout=60)
    assert response.status_code == 200
    wait_until(lambda: len(lines(path)) == 1, timeout_s=10)
    (record,) = lines(path)
    assert record["question"] == QUESTIONS[1] and record["answer"] == response.json()["answer"]
    assert record["model"] == response.json()["model"] and record["category"] == "tax_law"
    assert record["prompt_tokens"] == response.json()["usage"]["prompt_tokens"] and not record["tokens_estimated"]


def test_a_tiny_rotation_size_keeps_keep_files_and_the_command_reads_them_all(
        start_router, both: tuple[str, str], tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    env = {"BLUEGREEN_ANALYTICS__PATH": str(path), "BLUEGREEN_ANALYTICS__ROTATE_MB": "0.0002",  # ~200 B: a line a file
           "BLUEGREEN_ANALYTICS__KEEP": "2"}
    router = start_router(*both, env=env)
    with httpx.Client(timeout=60) as client:
        for number in range(6):
            assert ask(client, router.url, number).status_code == 200
    router.stop()  # the writer writes what is still queued before the router exits
    files = sorted(p.name for p in tmp_path.glob("analytics.jsonl*"))
    assert files == ["analytics.jsonl", "analytics.jsonl.1", "analytics.jsonl.2", "analytics.jsonl.salt"]
    assert all(len(file.read_text().splitlines()) == 1 for file in tmp_path.glob("analytics.jsonl*")
               if not file.name.endswith(".salt"))
    assert analytics_json(path)["total"]["requests"] == 3  # the newest three, across the rotated files


def test_with_the_nginx_data_plane_what_nginx_logs_is_written_and_says_so(
        start_router, upstreams, tmp_path: Path) -> None:
    from router.dataplanes.nginx_process import NginxProcess, local_nginx_options
    from router.weights import Colour

    path = tmp_path / "analytics.jsonl"
    options = local_nginx_options(tmp_path / "nginx")
    blue, green = upstreams[Colour.blue], upstreams[Colour.green]
    with NginxProcess(options, blue.url, green.url, green_bp=5000) as server:
        env = {"BLUEGREEN_DATA_PLANE": "nginx", "BLUEGREEN_NGINX": options.model_dump_json(),
               "BLUEGREEN_INITIAL_GREEN_WEIGHT": "50", "BLUEGREEN_ANALYTICS__PATH": str(path)}
        router = start_router(blue.url, green.url, env=env)
        seen: dict[str, int] = {}
        with httpx.Client(timeout=30) as client:
            for number in range(10):
                response = client.post(f"{server.url}/api/v1/chat/legal", json={"question": QUESTIONS[0]},
                                       headers={"X-Session-ID": f"nginx-{number}", "X-User-ID": f"{USER_PREFIX}{number}"})
                assert response.status_code == 200
                seen[response.headers["x-backend"]] = seen.get(response.headers["x-backend"], 0) + 1
        wait_until(lambda: len(lines(path)) >= 10, timeout_s=10)
        # The lines are on disk a moment before the writer counts them.
        wait_until(lambda: metric_total(router.url, "bluegreen_analytics_records_total", outcome="written") == 10)
    records = lines(path)
    assert len(records) == 10 and {r["source"] for r in records} == {"nginx"}
    assert {r["status"] for r in records} == {200} and all(r["response_time_s"] is not None for r in records)
    assert all(r["category"] is None and r["question_length"] is None and r["user"] is None for r in records)
    assert USER_PREFIX not in path.read_text()
    summary = analytics_json(path, "--by", "colour")
    assert {row["key"]: row["requests"] for row in summary["rows"]} == seen


def test_a_client_that_leaves_mid_answer_is_a_499_line_and_a_green_failure_retried_on_blue_is_blues(
        start_router, upstreams, tmp_path: Path) -> None:
    from router.weights import Colour

    path = tmp_path / "analytics.jsonl"
    blue, green = upstreams[Colour.blue], upstreams[Colour.green]
    router = start_router(blue.url, green.url, env={"BLUEGREEN_ANALYTICS__PATH": str(path),
                                                    "BLUEGREEN_INITIAL_GREEN_WEIGHT": "100"})
    body = {"question": QUESTIONS[1], "stream": True, "events": 50, "delay_s": 0.1}
    with httpx.stream("POST", f"{router.url}/api/v1/chat/legal", json=body, timeout=30) as response:
        next(response.iter_lines())  # the first event, then the client goes away
    green.behaviour.fail_status = 503
    retried = httpx.post(f"{router.url}/api/v1/chat/legal", json={"question": QUESTIONS[2]}, timeout=30)
    assert retried.status_code == 200 and retried.headers["x-backend"] == "blue"
    wait_until(lambda: len(lines(path)) == 2, timeout_s=10)
    left, moved = sorted(lines(path), key=lambda r: r["status"])[::-1]
    assert (left["status"], left["colour"], left["category"]) == (499, "green", "tax_law")
    assert (moved["status"], moved["colour"], moved["category"]) == (200, "blue", "family_law")
    assert moved["ttft_s"] <= moved["response_time_s"]


def test_the_command_says_what_is_wrong_and_exits_1(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "router.admin.cli", "analytics", *args], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})

    missing = run("--path", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 1 and "no analytics at" in missing.stderr
    (tmp_path / "a.jsonl").write_text('{"timestamp": "2026-11-30T12:00:00+00:00", "colour": "blue", "status": 200}\n{"tim')
    wrong = run("--path", str(tmp_path / "a.jsonl"), "--by", "week")
    assert wrong.returncode == 1 and "--by must be one of colour, category, day, tier" in wrong.stderr
    torn = run("--path", str(tmp_path / "a.jsonl"), "--by", "colour")
    assert torn.returncode == 0 and "skipped a torn last line" in torn.stderr
    assert "blue" in torn.stdout and "all" in torn.stdout
