"""OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from model_backends.api_docs import OPENAI_EVENTS, chat_responses
from model_backends.completion import Answer
from model_backends.errors import ClientGone, CompletionError
from model_backends.http_utils import SSE_HEADERS, error_response, guarded, sse, sse_stream
from model_backends.prompts import with_default_system_prompt
from model_backends.schemas import ChatCompletion, ChatCompletionRequest, ModelList

routes = APIRouter()

_OPENAI_FINISH = {"stop": "stop", "length": "length"}


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def _chunk(completion_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def _events(answer: Answer, model: str, include_usage: bool) -> AsyncIterator[bytes]:
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    yield sse(_chunk(completion_id, created, model, {"role": "assistant", "content": ""}, None))
    async for piece in answer.pieces():
        yield sse(_chunk(completion_id, created, model, {"content": piece.text}, None))
    yield sse(_chunk(completion_id, created, model, {}, _OPENAI_FINISH.get(answer.finish_reason, "stop")))
    if include_usage:
        yield sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                   "model": model, "choices": [], "usage": _usage(answer)})


@routes.post("/v1/chat/completions", summary="OpenAI-compatible chat completion",
             responses=chat_responses(OPENAI_EVENTS, ChatCompletion))
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    service = request.app.state.completion
    deadline = asyncio.get_running_loop().time() + service.config.request_timeout_s
    messages = with_default_system_prompt(body.as_messages())
    params = service.sampling(
        body.max_completion_tokens or body.max_tokens, body.temperature, body.top_p, body.ignore_eos, body.stop
    )
    try:
        answer = await guarded(request, deadline, service.begin(messages, params, "messages", body.stream))
        model = service.host.engine.info().model
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(
                sse_stream(_events(answer, model, include_usage), deadline, request),
                media_type="text/event-stream", headers=SSE_HEADERS,
            )
        text = await guarded(request, deadline, answer.text())
    except CompletionError as exc:
        return error_response(exc)
    except ClientGone:
        return Response(status_code=499)
    return JSONResponse({
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": _OPENAI_FINISH.get(answer.finish_reason, "stop")}],
        "usage": _usage(answer),
    })


@routes.get("/v1/models", response_model=ModelList, summary="The model this backend serves")
async def list_models(request: Request) -> dict[str, Any]:
    host = request.app.state.host
    models = []
    if host.engine is not None:
        info = host.engine.info()
        models.append({"id": info.model, "object": "model", "created": request.app.state.started_at,
                       "owned_by": f"model-backend/{info.engine}"})
    return {"object": "list", "data": models}
