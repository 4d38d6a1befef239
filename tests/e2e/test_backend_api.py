"""End to end: real `model-backend serve` processes on the tiny models, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import openai
import pytest

from testkit.services import BackendProcess

LEGAL = "/api/v1/chat/legal"
QUESTION = "Что такое договор аренды?"


def _legal(backend: BackendProcess, **body) -> httpx.Response:
    return httpx.post(backend.url + LEGAL, json={"question": QUESTION, **body}, timeout=60)


def _events(lines) -> list:
    return [json.loads(line[6:]) if line[6:] != "[DONE]" else "[DONE]" for line in lines if line.startswith("data: ")]


def _metric(backend: BackendProcess, name: str) -> float:
    text = httpx.get(backend.url + "/metrics").text
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


async def _until_metric(backend: BackendProcess, name: str, timeout_s: float = 10.0) -> None:
    """Wait until `name` is above zero (a generation running, a request queued), at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while _metric(backend, name) == 0:
        assert time.monotonic() < deadline, f"{name} stayed 0 for {timeout_s} s"
        await asyncio.sleep(0.01)


def test_legal_answer(backend: BackendProcess) -> None:
    response = _legal(backend, temperature=0, prompt_type="short", context="Статья 606 ГК РФ.")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"].strip() and body["prompt_type"] == "short"
    assert body["engine"] in ("llama_cpp", "transformers")
    assert body["usage"]["prompt_tokens"] > 20 and body["usage"]["completion_tokens"] > 0
    assert body["finish_reason"] in ("stop", "length") and body["time_s"] > 0


def test_legal_stream_events(backend: BackendProcess) -> None:
    body = {"question": QUESTION, "max_tokens": 12, "ignore_eos": True, "temperature": 0}
    with httpx.stream("POST", backend.url + LEGAL, json={**body, "stream": True}, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.iter_lines())
    deltas = [e["delta"] for e in events[:-2]]
    assert deltas and "".join(deltas) == _legal(backend, **body).json()["answer"]
    assert events[-2]["done"] is True and events[-2]["finish_reason"] == "length"
    assert events[-2]["usage"]["completion_tokens"] == 12
    assert events[-1] == "[DONE]"


def test_openai_client(backend: BackendProcess) -> None:
    client = openai.OpenAI(base_url=backend.url + "/v1", api_key="unused", max_retries=0)
    model = client.models.list().data[0].id
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=30
    )
    assert completion.choices[0].message.content.strip()
    assert completion.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=30,
        stream=True, stream_options={"include_usage": True},
    ))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == completion.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == completion.usage.completion_tokens


def _cut_at(answer: str, stop: str) -> str:
    return answer[: answer.index(stop)]


def test_stop_sequences_on_both_routes(backend: BackendProcess) -> None:
    """A stop sequence ends the answer before it (streamed or not, on both routes) with
    finish_reason "stop"; the streamed text is exactly the unstreamed one."""
    legal = {"question": QUESTION, "max_tokens": 40, "ignore_eos": True, "temperature": 0}
    full = _legal(backend, **legal).json()["answer"]
    stop = full[len(full) // 2: len(full) // 2 + 3]
    answer = _legal(backend, **legal, stop=stop).json()
    assert (answer["answer"], answer["finish_reason"]) == (_cut_at(full, stop), "stop")
    assert 0 < answer["usage"]["completion_tokens"] < 40
    with httpx.stream("POST", backend.url + LEGAL, json={**legal, "stream": True, "stop": ["Ъ", stop]}, timeout=60) as r:
        events = _events(r.iter_lines())
    assert "".join(e["delta"] for e in events[:-2]) == _cut_at(full, stop)
    assert events[-2]["finish_reason"] == "stop"

    client = openai.OpenAI(base_url=backend.url + "/v1", api_key="unused", max_retries=0)
    chat = {"model": "any", "messages": [{"role": "user", "content": QUESTION}], "temperature": 0, "max_tokens": 40,
            "extra_body": {"ignore_eos": True}}
    full = client.chat.completions.create(**chat).choices[0].message.content
    stop = full[len(full) // 3: len(full) // 3 + 2]
    choice = client.chat.completions.create(**chat, stop=stop).choices[0]
    assert (choice.message.content, choice.finish_reason) == (_cut_at(full, stop), "stop")
    chunks = list(client.chat.completions.create(**chat, stop=[stop, "Ъ"], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == _cut_at(full, stop)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_health_answers_during_a_generation(backend: BackendProcess) -> None:
    async def scenario() -> tuple[float, int]:
        async with httpx.AsyncClient(base_url=backend.url, timeout=60) as client:
            # Four long generations in a row keep even the fast engine (llama.cpp: ~0.3 s each) busy
            # for over a second, so /health is asked while one runs on a loaded machine too.
            long_requests = [asyncio.create_task(
                client.post(LEGAL, json={"question": QUESTION, "max_tokens": 1500, "ignore_eos": True})
            ) for _ in range(4)]
            await _until_metric(backend, "model_backend_generation_in_progress")
            started = time.perf_counter()
            health = await client.get("/health")
            health_s = time.perf_counter() - started
            assert not all(r.done() for r in long_requests), "the generations should still be running"
            responses = await asyncio.gather(*long_requests)
            return health_s, health.status_code if all(r.status_code == 200 for r in responses) else -1

    health_s, status = asyncio.run(scenario())
    assert status == 200
    assert health_s < 0.5


def test_ten_concurrent_requests(backend: BackendProcess) -> None:
    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=backend.url, timeout=120) as client:
            return await asyncio.gather(*[
                client.post(LEGAL, json={"question": f"Вопрос {i}: что такое неустойка?", "max_tokens": 20})
                for i in range(10)
            ])

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 10
    assert all(r.json()["answer"].strip() for r in responses)


def test_client_disconnect_stops_the_generation(hf_backend: BackendProcess) -> None:
    # transformers takes ~2 s for 1,800 tokens of the tiny model (llama.cpp ~0.3 s, too close to
    # the time a loaded machine takes to notice the client left).
    before = _metric(hf_backend, "model_backend_generated_tokens_total")
    with httpx.stream("POST", hf_backend.url + LEGAL, timeout=60,
                      json={"question": QUESTION, "stream": True, "max_tokens": 1800, "ignore_eos": True}) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                break  # leave after the first event: the connection closes
    deadline = time.monotonic() + 10
    while _metric(hf_backend, "model_backend_generation_in_progress") != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    generated = _metric(hf_backend, "model_backend_generated_tokens_total") - before
    assert generated < 1800, "the generation ran to the end although its client had left"
    assert _legal(hf_backend, max_tokens=5).status_code == 200, "the slot must be free again"


def test_full_queue_is_503_and_never_cuts_the_running_stream(serve, tiny_models) -> None:
    # transformers: the running stream of 1,800 tokens lasts ~2 s, ample time to fill the queue behind it.
    backend = serve("queue1", ["--engine", "transformers", "--model", str(tiny_models.hf_dir), "--queue-size", "1"])

    async def scenario():
        async with httpx.AsyncClient(base_url=backend.url, timeout=60) as client:
            async def stream_all() -> list:
                async with client.stream("POST", LEGAL, json={"question": QUESTION, "stream": True,
                                                              "max_tokens": 1800, "ignore_eos": True}) as r:
                    return _events([line async for line in r.aiter_lines()])

            running = asyncio.create_task(stream_all())
            await _until_metric(backend, "model_backend_generation_in_progress")
            waiting = asyncio.create_task(client.post(LEGAL, json={"question": QUESTION, "max_tokens": 5}))
            await _until_metric(backend, "model_backend_queue_depth")
            refused = await client.post(LEGAL, json={"question": QUESTION, "max_tokens": 5})
            return await running, await waiting, refused

    events, waited, refused = asyncio.run(scenario())
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
    assert "busy" in refused.json()["error"]["message"]
    assert events[-2]["finish_reason"] == "length" and events[-2]["usage"]["completion_tokens"] == 1800
    assert waited.status_code == 200


BIG_CONTEXT = "Статья 606 ГК РФ о договоре аренды. " * 800  # ~50 KB: under the body limit, over 2048 tokens


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"question": ""}, 422, "question"),
        ({"question": "   "}, 422, "question: Value error, must not be empty"),
        ({}, 422, "question: required field is missing"),
        ({"question": 123}, 422, "question"),
        ({"question": QUESTION, "max_tokens": "5"}, 422, "max_tokens"),
        ({"question": QUESTION, "max_tokens": 0}, 422, "max_tokens: Input should be greater than or equal to 1"),
        ({"question": QUESTION, "max_tokens": 4097}, 422, "max_tokens: Input should be less than or equal to 4096"),
        ({"question": QUESTION, "temperature": -0.1}, 422, "temperature"),
        ({"question": QUESTION, "temperature": 2.5}, 422, "temperature"),
        ({"question": QUESTION, "temperature": "hot"}, 422, "temperature"),
        ({"question": QUESTION, "top_p": 0}, 422, "top_p"),
        ({"question": QUESTION, "stream": "yes"}, 422, "stream"),
        ({"question": QUESTION, "prompt_type": "poem"}, 422, "prompt_type"),
        ({"question": QUESTION, "colour": "green"}, 422, "colour: unknown field"),
        ({"question": QUESTION, "stop": ["1", "2", "3", "4", "5"]}, 422, "stop.list: List should have at most 4 items"),
        ({"question": QUESTION, "stop": ""}, 422, "stop.text: String should have at least 1 character"),
        ({"question": QUESTION, "stop": ["ok", ""]}, 422, "stop.list.1: String should have at least 1 character"),
        ({"question": QUESTION, "stop": 5}, 422, "stop: must be a string or a list of up to 4 strings"),
        ({"question": "x" * 70_000}, 413, "larger than the 65536-byte limit"),
        ({"question": QUESTION, "context": BIG_CONTEXT}, 400, "context window is"),
    ],
)
def test_bad_input_is_a_clear_4xx(llama_backend: BackendProcess, body: dict, status: int, says: str) -> None:
    response = httpx.post(llama_backend.url + LEGAL, json=body, timeout=30)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]


def test_bad_json_and_bad_openai_bodies(llama_backend: BackendProcess) -> None:
    broken = httpx.post(llama_backend.url + LEGAL, content=b'{"question": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "JSON" in broken.json()["error"]["message"]
    nan = httpx.post(llama_backend.url + LEGAL, content=b'{"question": "q", "temperature": NaN}',
                     headers={"content-type": "application/json"})
    assert nan.status_code == 422 and "temperature" in nan.json()["error"]["message"]
    for body, says in [({"messages": []}, "messages"), ({"messages": [{"role": "system", "content": "x"}]}, "user message"),
                       ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
                       ({"messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop.list.0")]:
        response = httpx.post(llama_backend.url + "/v1/chat/completions", json=body)
        assert response.status_code == 422 and says in response.json()["error"]["message"], response.text


def test_context_overflow_names_the_token_counts(hf_backend: BackendProcess) -> None:
    response = httpx.post(hf_backend.url + LEGAL, json={"question": QUESTION, "context": BIG_CONTEXT[:20_000]}, timeout=30)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert re.search(r"the prompt is \d+ tokens but the model's context window is 2048 tokens", message), message


def test_metrics_stats_and_readiness(llama_backend: BackendProcess) -> None:
    assert _legal(llama_backend, max_tokens=8).status_code == 200
    metrics = httpx.get(llama_backend.url + "/metrics").text
    for name in ("model_backend_requests_total", "model_backend_request_duration_seconds_bucket",
                 "model_backend_time_to_first_token_seconds_bucket", "model_backend_generated_tokens_total",
                 "model_backend_tokens_per_second_bucket", "model_backend_queue_depth", "model_backend_model_loaded 1.0"):
        assert name in metrics
    assert 'model_backend_requests_total{route="/api/v1/chat/legal",status="200"}' in metrics
    stats = httpx.get(llama_backend.url + "/stats").json()
    assert stats["successful_requests"] >= 1 and stats["model_load_time_s"] > 0 and stats["memory"]["rss_mb"] > 10
    ready = httpx.get(llama_backend.url + "/ready").json()
    assert ready["engine"] == "llama_cpp" and ready["chat_format"] == "template" and ready["faults"] is None
    assert ready["context_window"] == ready["details"]["n_ctx_train"] == 2048  # n_ctx unset: the model's own


def test_fault_injection_drills(serve, tiny_models) -> None:
    erroring = serve("faulty", ["--engine", "llama_cpp", "--model", str(tiny_models.gguf_path),
                                "--fault-error-rate", "1", "--fault-latency-ms", "300"])
    assert httpx.get(erroring.url + "/ready").json()["faults"]["error_rate"] == 1.0
    assert "FAULT INJECTION IS ON" in erroring.log_tail(200)
    response = _legal(erroring)
    assert response.status_code == 500 and "injected fault" in response.json()["error"]["message"]

    slow = serve("slow", ["--engine", "llama_cpp", "--model", str(tiny_models.gguf_path), "--fault-latency-ms", "400"])
    answer = _legal(slow, max_tokens=4)
    assert answer.status_code == 200 and answer.json()["time_s"] >= 0.4

    hanging = serve("hang", ["--engine", "llama_cpp", "--model", str(tiny_models.gguf_path),
                             "--fault-hang-rate", "1", "--request-timeout", "1"])
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(hanging.url + LEGAL, json={"question": QUESTION}, timeout=0.5)
    timed_out = _legal(hanging)
    assert timed_out.status_code == 504
    assert httpx.get(hanging.url + "/health").status_code == 200


def test_openai_upstream_engine_serves_through_another_backend(serve, llama_backend: BackendProcess) -> None:
    proxy = serve("upstream", ["--engine", "openai_upstream", "--model", "tiny-legal"],
                  env={"MODEL_BACKEND_OPENAI_UPSTREAM__BASE_URL": llama_backend.url + "/v1"})
    assert httpx.get(proxy.url + "/ready").json()["engine"] == "openai_upstream"
    via_upstream = _legal(proxy, temperature=0, max_tokens=30).json()
    direct = _legal(llama_backend, temperature=0, max_tokens=30).json()
    assert via_upstream["answer"] == direct["answer"]
    assert via_upstream["engine"] == "openai_upstream"
    stop = direct["answer"][5:8]
    stopped = _legal(proxy, temperature=0, max_tokens=30, stop=stop).json()  # passed through to the upstream
    assert (stopped["answer"], stopped["finish_reason"]) == (_cut_at(direct["answer"], stop), "stop")
    too_long = _legal(proxy, context=BIG_CONTEXT)
    assert too_long.status_code == 400 and "upstream refused" in too_long.json()["error"]["message"]


def test_config_file_quantization_on_cpu_falls_back(serve, tiny_models, tmp_path) -> None:
    config = tmp_path / "backend.yaml"
    config.write_text(
        f"engine: transformers\nmodel: {tiny_models.hf_dir}\ntransformers:\n  quantization: 8bit\n"
        f"fallbacks:\n  - engine: llama_cpp\n    model: {tiny_models.gguf_path}\n"
    )
    backend = serve("fallback", ["--config", str(config)])
    ready = httpx.get(backend.url + "/ready").json()
    assert ready["engine"] == "llama_cpp"
    assert "needs a CUDA GPU" in ready["attempts"][0]["error"]


def test_unrecoverable_model_is_503_with_the_reason(tiny_models, logs_dir) -> None:
    backend = BackendProcess(["--engine", "llama_cpp", "--model", "/nonexistent/saiga.gguf"], logs_dir / "missing.log")
    backend.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(backend.url + "/ready")
                if ready.json()["status"] == "failed":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert ready.status_code == 503 and "does not exist" in ready.json()["reason"]
        refused = _legal(backend)
        assert refused.status_code == 503 and "not ready" in refused.json()["error"]["message"]
    finally:
        backend.stop()


def test_bad_config_file_is_a_clear_exit(tmp_path) -> None:
    import subprocess
    import sys

    config = tmp_path / "bad.yaml"
    config.write_text("engine: gpt5\nqueue_size: -1\n")
    result = subprocess.run([sys.executable, "-m", "model_backends.cli", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "engine" in result.stderr and "queue_size" in result.stderr


def test_timeout_mid_stream_ends_with_an_error_event(serve, tiny_models) -> None:
    backend = serve("hf-timeout", ["--engine", "transformers", "--model", str(tiny_models.hf_dir), "--request-timeout", "1"])
    started = time.perf_counter()
    with httpx.stream("POST", backend.url + LEGAL, timeout=30,
                      json={"question": QUESTION, "stream": True, "max_tokens": 4000, "ignore_eos": True}) as response:
        assert response.status_code == 200
        events = _events(response.iter_lines())
    assert time.perf_counter() - started < 5
    assert events[0]["delta"] and events[-2]["error"]["type"] == "timeout" and events[-1] == "[DONE]"
    stats = httpx.get(backend.url + "/stats").json()
    assert stats["failed_requests"] == 1 and stats["successful_requests"] == 0
