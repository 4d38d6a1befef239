"""Operational endpoints: liveness, readiness, Prometheus metrics and running stats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict

from model_backends.stats import memory_usage

routes = APIRouter()


class Readiness(BaseModel):
    """`/ready`'s body, 200 and 503 alike: the state, why, and what loading tried."""

    model_config = ConfigDict(extra="allow")

    ready: bool
    status: str
    reason: str | None
    engine: str | None
    model: str | None
    load_time_s: float | None
    faults: dict[str, Any] | None


@routes.get("/health", summary="Liveness: answers at once, even while the model generates")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@routes.get("/ready", summary="Readiness: 200 once the model is loaded and warmed up, else 503 with the reason",
            responses={200: {"model": Readiness}, 503: {"model": Readiness, "description": "not ready (yet): see reason"}})
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    body = state.host.describe()
    faults = state.config.faults
    body["faults"] = faults.model_dump() if faults.enabled else None
    if body["engine"] == "mock":
        body["warning"] = "the mock engine answers with canned text, not a model"
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@routes.get("/metrics", summary="Prometheus metrics (text exposition format)", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@routes.get("/stats", summary="Request totals, response time, memory and model load time")
async def stats(request: Request) -> dict[str, Any]:
    state = request.app.state
    s = state.stats
    described = state.host.describe()
    return {
        "engine": described["engine"], "model": described["model"], "status": described["status"],
        "total_requests": s.total_requests, "successful_requests": s.successful_requests,
        "failed_requests": s.failed_requests, "average_response_time_s": round(s.average_response_time_s, 4),
        "memory": memory_usage(state.host.engine),
        "model_load_time_s": described["load_time_s"], "queue_depth": state.completion.scheduler.waiting,
    }
