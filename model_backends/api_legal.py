"""`POST /api/v1/chat/legal`: the legal assistant's own endpoint."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from model_backends.api_docs import LEGAL_EVENTS, chat_responses
from model_backends.completion import Answer
from model_backends.errors import ClientGone, CompletionError
from model_backends.http_utils import SSE_HEADERS, error_response, guarded, sse, sse_stream
from model_backends.prompts import legal_messages
from model_backends.schemas import LegalChatRequest, LegalChatResponse, Usage

routes = APIRouter()


def _usage(answer: Answer) -> Usage:
    return Usage(
        prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
        total_tokens=answer.prompt_tokens + answer.completion_tokens,
    )


async def _events(answer: Answer) -> AsyncIterator[bytes]:
    async for piece in answer.pieces():
        yield sse({"delta": piece.text})
    yield sse({"done": True, "finish_reason": answer.finish_reason, "usage": _usage(answer).model_dump()})


@routes.post(
    "/api/v1/chat/legal", response_model=LegalChatResponse, responses=chat_responses(LEGAL_EVENTS),
    summary="Answer a legal question (JSON, or server-sent events with stream: true)",
)
async def legal_chat(body: LegalChatRequest, request: Request) -> Response | LegalChatResponse:
    service = request.app.state.completion
    started = time.perf_counter()
    deadline = asyncio.get_running_loop().time() + service.config.request_timeout_s
    messages = legal_messages(body.question, body.prompt_type, body.context)
    params = service.sampling(body.max_tokens, body.temperature, body.top_p, body.ignore_eos, body.stop)
    try:
        answer = await guarded(request, deadline, service.begin(messages, params, "question", body.stream))
        if body.stream:
            return StreamingResponse(
                sse_stream(_events(answer), deadline, request), media_type="text/event-stream", headers=SSE_HEADERS
            )
        text = await guarded(request, deadline, answer.text())
    except CompletionError as exc:
        return error_response(exc)
    except ClientGone:
        return Response(status_code=499)
    info = service.host.engine.info()
    return LegalChatResponse(
        answer=text, model=info.model, engine=info.engine, prompt_type=body.prompt_type,
        finish_reason=answer.finish_reason, usage=_usage(answer), time_s=round(time.perf_counter() - started, 4),
    )
