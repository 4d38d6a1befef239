"""The backend's FastAPI application: routes, middleware, and background model loading."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from bluegreen_common import __version__
from bluegreen_common.http_errors import http_error_handler, validation_error_handler
from model_backends import api_legal, api_openai, api_ops
from model_backends.completion import CompletionService
from model_backends.config import BackendConfig
from model_backends.host import EngineHost, HostState
from model_backends.metrics import BackendMetrics
from model_backends.middleware import BodyLimitMiddleware, RequestMetricsMiddleware
from model_backends.stats import RequestStats

log = logging.getLogger("model_backends")


def _announce_faults(config: BackendConfig) -> None:
    if config.faults.enabled:
        log.warning(
            "FAULT INJECTION IS ON (drill mode): error_rate=%s latency_ms=%s hang_rate=%s after_requests=%s "
            "load_delay_s=%s answer=%s answer_rate=%s", config.faults.error_rate, config.faults.latency_ms,
            config.faults.hang_rate, config.faults.after_requests, config.faults.load_delay_s,
            config.faults.answer.value, config.faults.answer_rate,
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
                metrics.memory.weights_bytes = host.engine.weights_bytes()
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
    app.add_exception_handler(HTTPException, http_error_handler)
    app.include_router(api_legal.routes)
    app.include_router(api_openai.routes)
    app.include_router(api_ops.routes)
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, stats=stats)  # outermost: sees 413s too
    return app
