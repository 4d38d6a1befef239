"""An engine that forwards to an OpenAI-compatible server (vLLM, a hosted API).

The upstream renders the prompt with its own template and counts its own tokens, so this
engine passes messages through and reports the usage the upstream returns.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Generator
from typing import Any

import httpx

from model_backends.chat_format import Messages
from model_backends.config import OpenAIUpstreamOptions
from model_backends.engines.base import Engine, EngineInfo, Piece, Prompt, SamplingParams
from model_backends.errors import EngineError, EngineRequestError


class OpenAIUpstreamEngine(Engine):
    name = "openai_upstream"

    def __init__(self, model: str, options: OpenAIUpstreamOptions, model_name: str) -> None:
        self._options = options
        self._upstream_model = options.upstream_model or model
        self._model_name = model_name
        self._client: httpx.Client | None = None

    def _api_key(self) -> str | None:
        if self._options.api_key is not None:
            return self._options.api_key.get_secret_value()
        return os.environ.get("OPENAI_API_KEY")

    def load(self) -> None:
        headers = {"Authorization": f"Bearer {key}"} if (key := self._api_key()) else {}
        self._client = httpx.Client(
            base_url=self._options.base_url.rstrip("/"), headers=headers,
            timeout=httpx.Timeout(self._options.timeout_s, connect=10.0),
        )
        try:
            response = self._client.get("/models")
        except httpx.HTTPError as exc:
            raise EngineError(f"upstream {self._options.base_url} is unreachable: {exc}") from exc
        if response.status_code != 200:
            raise EngineError(f"upstream {self._options.base_url}/models answered {response.status_code}")
        if not self._upstream_model:
            models = response.json().get("data", [])
            if not models:
                raise EngineError("upstream lists no models; set --model")
            self._upstream_model = models[0]["id"]

    def info(self) -> EngineInfo:
        return EngineInfo(
            engine=self.name,
            model=self._model_name,
            context_window=self._options.context_window,
            chat_format="upstream",
            details={"base_url": self._options.base_url, "upstream_model": self._upstream_model},
        )

    def prepare(self, messages: Messages) -> Prompt:
        return Prompt(messages)  # the upstream renders and counts with its own template

    def stream(self, prompt: Prompt, params: SamplingParams, cancel: threading.Event) -> Generator[Piece, None, None]:
        if self._client is None:
            raise EngineError("engine is not loaded")
        body: dict[str, Any] = {
            "model": self._upstream_model, "messages": prompt.messages, "stream": True,
            "stream_options": {"include_usage": True}, "max_tokens": params.max_tokens,
            "temperature": params.temperature, "top_p": params.top_p,
        }
        if params.ignore_eos:
            body["ignore_eos"] = True  # vLLM's extension; other upstreams ignore it
        if params.stop:
            body["stop"] = list(params.stop)  # the upstream cuts the answer and says finish_reason "stop"
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    _raise_for_upstream(response)
                yield from self._pieces(response, cancel)
        except httpx.HTTPError as exc:
            raise EngineError(f"upstream request failed: {exc}") from exc

    def _pieces(self, response: httpx.Response, cancel: threading.Event) -> Generator[Piece, None, None]:
        finish, counted, reported_usage = "stop", 0, None
        for line in response.iter_lines():
            if cancel.is_set():
                yield Piece(finish_reason="cancelled")
                return
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk: dict[str, Any] = json.loads(data)
            if chunk.get("usage"):
                reported_usage = chunk["usage"].get("completion_tokens")
            for choice in chunk.get("choices", []):
                text = (choice.get("delta") or {}).get("content") or ""
                if text:
                    counted += 1
                    yield Piece(text=text, tokens=1)
                finish = choice.get("finish_reason") or finish
        extra = max(0, reported_usage - counted) if reported_usage is not None else 0
        yield Piece(tokens=extra, finish_reason=finish)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _raise_for_upstream(response: httpx.Response) -> None:
    response.read()
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:500]
    if 400 <= response.status_code < 500:
        raise EngineRequestError(response.status_code, f"upstream refused the request: {message}")
    raise EngineError(f"upstream answered {response.status_code}: {message}")
