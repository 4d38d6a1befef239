"""End to end: bad-answer drills on real backends, and `bluegreen compare` catching them.

A green started with `--fault-answer` answers HTTP 200 on both routes, streamed or not, but badly;
`compare` must exit 2 against it (and against a green that answers 500), 0 against a healthy green,
1 when it cannot run, a wrong URL (the same 4xx to every request) included.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from bluegreen_common.processes import free_port
from model_backends.tiny.build import TinyModels
from router.quality.checks import check_answer
from testkit.services import BackendProcess

QUESTIONS = (
    "Что такое договор?\tДоговор — это соглашение двух или нескольких лиц об установлении, изменении или "
    "прекращении гражданских прав и обязанностей.\n"
    "Статья 105 УК РФ - что это?\n"
    "Как зарегистрировать ИП?\n"
)
# The checks each drill must trip, on every answer.
FAILS = {"latin": "wrong_language", "empty": "empty", "repeat": "repetitive"}
BREACH = {"latin": "non_russian_rate", "empty": "empty_rate", "repeat": "repetition_rate"}


@pytest.fixture(scope="module", params=sorted(FAILS))
def faulty_green(request: pytest.FixtureRequest, tiny_models: TinyModels, logs_dir: Path) -> Iterator[tuple[str, BackendProcess]]:
    """A green that answers every request with the drilled bad answer."""
    fault = request.param
    args = ["--engine", "llama_cpp", "--model", str(tiny_models.gguf_path), "--fault-answer", fault]
    with BackendProcess(args, logs_dir / f"green-fault-{fault}.log") as green:
        yield fault, green


def _answers(backend: BackendProcess) -> dict[str, tuple[str, str]]:
    """(answer, finish_reason) from each route, streamed and not."""
    legal, openai = backend.url + "/api/v1/chat/legal", backend.url + "/v1/chat/completions"
    question = {"question": "Что такое договор аренды?", "max_tokens": 16}
    chat = {"messages": [{"role": "user", "content": "Что такое договор аренды?"}], "max_tokens": 16}
    found = {}
    body = httpx.post(legal, json=question, timeout=60).json()
    found["legal"] = (body["answer"], body["finish_reason"])
    body = httpx.post(openai, json=chat, timeout=60).json()
    found["openai"] = (body["choices"][0]["message"]["content"], body["choices"][0]["finish_reason"])
    events = _stream(legal, {**question, "stream": True})
    found["legal stream"] = ("".join(e.get("delta", "") for e in events), events[-1]["finish_reason"])
    events = _stream(openai, {**chat, "stream": True})
    found["openai stream"] = ("".join(e["choices"][0]["delta"].get("content", "") for e in events),
                              events[-1]["choices"][0]["finish_reason"])
    return found


def _stream(url: str, body: dict) -> list[dict]:
    with httpx.stream("POST", url, json=body, timeout=60) as response:
        assert response.status_code == 200
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_bad_answer_drill_on_both_routes(faulty_green: tuple[str, BackendProcess]) -> None:
    fault, green = faulty_green
    ready = httpx.get(green.url + "/ready").json()
    assert ready["faults"]["answer"] == fault and ready["faults"]["answer_rate"] == 1.0
    assert "FAULT INJECTION IS ON" in green.log_tail(100) and f"answer={fault}" in green.log_tail(100)
    for route, (answer, finish) in _answers(green).items():
        assert FAILS[fault] in check_answer(answer, finish).failures, (route, answer)
        if fault == "repeat":
            assert finish == "length" and answer.split() == ["право"] * 16, (route, answer)
        if fault == "latin":
            assert answer.startswith("Under the civil code"), (route, answer)


def _compare(blue: str, green: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    questions = tmp_path / "questions.tsv"
    questions.write_text(QUESTIONS, encoding="utf-8")
    command = [sys.executable, "-m", "router.admin.cli", "compare", "--blue", blue, "--green", green,
               "--questions", str(questions), "--max-tokens", "32", "--temperature", "0",
               "--out", str(tmp_path / "out"), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=240)


def _report(tmp_path: Path) -> tuple[dict, str]:
    document = json.loads((tmp_path / "out" / "model_comparison.json").read_text(encoding="utf-8"))
    return document, (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_compare_exits_2_against_a_green_that_answers_badly(
    faulty_green: tuple[str, BackendProcess], llama_backend: BackendProcess, tmp_path: Path,
) -> None:
    fault, green = faulty_green
    done = _compare(llama_backend.url, green.url, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "verdict: regressed" in done.stdout
    document, html = _report(tmp_path)
    verdict = document["verdict"]
    assert verdict["outcome"] == "regressed" and verdict["regressed"] is True
    assert BREACH[fault] in {f["name"] for f in verdict["findings"] if not f["passed"]}
    assert any("green 100.0 %" in reason for reason in verdict["reasons"]), verdict["reasons"]
    assert all(FAILS[fault] in q["green"]["checks"]["failures"] for q in document["questions"])
    assert all(q["blue"]["checks"]["failures"] == [] or q["blue"]["checks"]["failures"] == ["truncated"]
               for q in document["questions"])
    assert "<svg" in html and "Verdict: regressed" in html


def test_compare_exits_0_against_a_healthy_green(
    llama_backend: BackendProcess, hf_backend: BackendProcess, tmp_path: Path,
) -> None:
    done = _compare(llama_backend.url, hf_backend.url, tmp_path, "--repeats", "2", "--concurrency", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "blue vs green" in done.stdout and "verdict: passed" in done.stdout
    document, html = _report(tmp_path)
    assert document["verdict"] == {**document["verdict"], "outcome": "passed", "regressed": False, "reasons": []}
    assert len(document["questions"]) == 6  # 3 questions × 2 repeats
    first = document["questions"][0]
    assert first["reference"] and first["pair"]["chrf"] is not None and first["pair"]["length_ratio"] > 0
    for colour in ("blue", "green"):
        record = first[colour]
        assert record["ok"] and record["answer"].strip() and record["tokens"] > 0
        assert 0 < record["ttft_s"] <= record["time_s"] and record["tokens_per_s"] > 0
        assert record["checks"]["cyrillic_share"] > 0.6 and record["chrf_reference"] is not None
        summary = document["summary"][colour]
        assert summary["requests"] == 6 and summary["errors"] == 0 and summary["ttft_p95_s"] is not None
    # Self-contained: charts as inline SVG, no script, nothing fetched from elsewhere.
    assert html.count("<svg") == 5 and "<script" not in html
    assert "src=" not in html and "<link" not in html


def test_compare_exits_1_when_it_cannot_run(llama_backend: BackendProcess, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    done = _compare(llama_backend.url, nobody, tmp_path)
    assert done.returncode == 1 and "unreachable" in done.stderr, done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('[{"question": ""}]')
    done = _compare(llama_backend.url, llama_backend.url, tmp_path, "--questions", str(bad))
    assert done.returncode == 1 and "non-empty string `question`" in " ".join(done.stderr.split()), done.stderr
    done = _compare(llama_backend.url, llama_backend.url, tmp_path, "--repeats", "0")
    assert done.returncode == 1 and "repeats" in done.stderr, done.stderr
    done = _compare(llama_backend.url, "ftp://example", tmp_path)
    assert done.returncode == 1 and "not an http(s) URL" in done.stderr, done.stderr
    assert not (tmp_path / "out" / "model_comparison.json").exists()


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """stdout with rich's line wrapping undone."""
    return " ".join(done.stdout.split())


def test_compare_exits_1_when_a_url_answers_404_to_everything(llama_backend: BackendProcess, tmp_path: Path) -> None:
    wrong = llama_backend.url + "/api"  # a path under which the backend has nothing: 404 to every question
    done = _compare(llama_backend.url, wrong, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    said = _said(done)
    assert "verdict: inconclusive" in said and "regressed" not in said, said
    assert ("green answered 404 to all 3 requests: check --green (the backend's base URL, e.g. http://host:8002); "
            f"they went to {wrong}/api/v1/chat/legal") in said, said
    document, html = _report(tmp_path)
    assert document["verdict"]["outcome"] == "inconclusive" and document["verdict"]["regressed"] is False
    assert "Verdict: inconclusive" in html
    # Both colours wrong: inconclusive, exit 1, each named.
    done = _compare(wrong, wrong, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    said = _said(done)
    assert "blue answered 404 to all 3 requests: check --blue" in said, said
    assert "green answered 404 to all 3 requests: check --green" in said, said


def test_compare_exits_2_against_a_green_that_answers_500(
    llama_backend: BackendProcess, tiny_models: TinyModels, serve, tmp_path: Path,
) -> None:
    green = serve("green-500", ["--engine", "llama_cpp", "--model", str(tiny_models.gguf_path),
                                "--fault-error-rate", "1"])
    done = _compare(llama_backend.url, green.url, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    said = _said(done)
    assert "verdict: regressed" in said and "failed requests: green 100.0 %" in said, said
    assert "check --green" not in said


class _Counting(BaseHTTPRequestHandler):
    """Ready, and counts every request it gets (none is the point)."""

    requests: list[str] = []

    def _answer(self) -> None:
        type(self).requests.append(f"{self.command} {self.path}")
        body = b'{"ready": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_args: object) -> None:
        pass


def test_compare_checks_that_it_can_write_its_reports_before_asking_anything(tmp_path: Path) -> None:
    """An --out that exists but takes no file (/proc/self; as root, permission bits would not stop a write)
    exits 1 before either backend is contacted: not after every question was asked and the answers lost."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = _compare(url, url, tmp_path, "--out", "/proc/self")
        assert done.returncode == 1, done.stdout + done.stderr
        said = " ".join(done.stderr.split())
        assert "cannot write the reports into /proc/self" in said, said
        done = _compare(url, url, tmp_path, "--out", "/proc/self/reports")
        assert done.returncode == 1 and "cannot create the output folder /proc/self/reports" in " ".join(
            done.stderr.split()), done.stderr
    finally:
        server.shutdown()
        server.server_close()
    assert _Counting.requests == []  # not even /ready
