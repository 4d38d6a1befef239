"""The backend's FastAPI application: routes, middleware, and background model loading."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from model_backends import __version__, api_legal, api_openai, api_ops
from model_backends.completion import CompletionService
from model_backends.config import BackendConfig
from model_backends.host import EngineHost, HostState
from model_backends.metrics import BackendMetrics
from model_backends.middleware import BodyLimitMiddleware, RequestMetricsMiddleware
from model_backends.schemas import error_body
from model_backends.stats import RequestStats

log = logging.getLogger("model_backends")


def _field_errors(exc: RequestValidationError) -> tuple[str, str | None]:
    """`field: problem` for each invalid field, and the first field's name for `param`."""
    parts, first = [], None
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if p != "body"]
        field = ".".join(loc) or "body"
        first = first or field
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field; remove it"
        elif err["type"] == "missing":
            message = "required field is missing"
        parts.append(f"{field}: {message}")
    return "; ".join(parts), first


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    message, param = _field_errors(exc)
    return JSONResponse(error_body(message, "invalid_request_error", param=param), status_code=422)


def _announce_faults(config: BackendConfig) -> None:
    if config.faults.enabled:
        log.warning(
            "FAULT INJECTION IS ON (drill mode): error_rate=%s latency_ms=%s hang_rate=%s after_requests=%s "
            "load_delay_s=%s", config.faults.error_rate, config.faults.latency_ms, config.faults.hang_rate,
            config.faults.after_requests, config.faults.load_delay_s,
        )


def create_app(config: BackendConfig) -> FastAPI:
    """Build the app; the model loads in the background once the server starts."""
    host = EngineHost(config)
    metrics = BackendMetrics()
    stats = RequestStats()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _announce_faults(config)
        loading = asyncio.create_task(asyncio.to_thread(host.load_blocking))

        def loaded(_: object) -> None:
            if host.state is HostState.ready and host.engine is not None:
                info = host.engine.info()
                metrics.model_loaded.set(1)
                metrics.info.labels(info.engine, info.model).set(1)
            else:
                log.error("model failed to load: %s", host.reason)

        loading.add_done_callback(loaded)
        try:
            yield
        finally:
            app.state.completion.scheduler.shutdown()
            if host.engine is not None:
                host.engine.close()

    app = FastAPI(
        title="model-backend", version=__version__, lifespan=lifespan,
        description="Serves one language model behind the legal assistant's API (blue or green).",
    )
    app.state.config = config
    app.state.host = host
    app.state.metrics = metrics
    app.state.stats = stats
    app.state.started_at = int(time.time())
    app.state.completion = CompletionService(config, host, metrics)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.include_router(api_legal.router)
    app.include_router(api_openai.router)
    app.include_router(api_ops.router)
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, stats=stats)  # outermost: sees 413s too
    return app
