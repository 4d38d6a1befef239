"""Assembles the router: the proxy on the public routes, FastAPI for admin and operations.

Public paths (`/api/…`, `/v1/…`) go straight to the proxy, so the hot path pays no framework
routing; everything else (admin, `/health`, `/ready`, `/metrics`, the OpenAPI docs) is FastAPI.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from bluegreen_common import __version__
from bluegreen_common.http_errors import http_error_handler, validation_error_handler
from router.admin import api as admin_api
from router.admin.control import Control
from router.admin.guard import AdminBodyGuard
from router.analytics.writer import writer_for
from router.config import RouterConfig
from router.console.pages import pages as console_pages
from router.dataplanes.nginx import NginxDataPlane, nginx_fail_timeout_s, render_nginx
from router.dataplanes.nginx_ejection import EjectionReporter, NginxEjectionWatch
from router.dataplanes.nginx_log import AccessLogFollower
from router.dataplanes.sync import NginxSync
from router.metrics import RouterMetrics
from router.openapi import PUBLIC_PREFIXES, docs
from router.proxy.handler import Proxy
from router.proxy.mirror import Mirror
from router.proxy.outliers import OutlierDetector
from router.proxy.probes import Prober
from router.proxy.ratelimit import RateLimiter
from router.proxy.upstream import Upstream
from router.quality.live import LiveChecks
from router.rollout.controller import Controller
from router.rollout.machine import FINISHED, Rollout
from router.rollout.providers import make_provider
from router.rollout.webhooks import Webhooks
from router.rollout.windows import SlidingWindow
from router.runtimes import make_runtime
from router.state import RouterState, StateStore
from router.traffic import Traffic
from router.weights import Colour, percent_to_bp

log = logging.getLogger("bluegreen")

ops = APIRouter(tags=["operations"])


@ops.get("/health", summary="The router process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


class ColourReadiness(BaseModel):
    ready: bool
    reason: str | None


class RouterReadiness(BaseModel):
    """`/ready`'s body, 200 and 503 alike: each colour's last probe."""

    ready: bool
    backends: dict[str, ColourReadiness]


@ops.get("/ready", summary="200 while at least one colour can take traffic, else 503",
         responses={200: {"model": RouterReadiness}, 503: {"model": RouterReadiness, "description": "no colour is ready"}})
async def ready(request: Request) -> JSONResponse:
    traffic: Traffic = request.app.state.traffic
    backends = {c.value: {"ready": traffic.health[c].ready, "reason": traffic.health[c].reason} for c in Colour}
    serving = any(traffic.health[c].ready for c in Colour)
    return JSONResponse({"ready": serving, "backends": backends}, status_code=200 if serving else 503)


@ops.get("/metrics", summary="Prometheus metrics of the router (text exposition format)", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def nginx_config_text(config: RouterConfig, green_bp: int, stable: Colour = Colour.blue) -> str:
    outliers = config.outliers
    return render_nginx(config.nginx, config.blue.url, config.green.url, green_bp, config.session_header,
                        config.session_cookie, config.cookie_max_age_s,
                        outliers.consecutive_failures if outliers.enabled else 0, outliers.base_ejection_s, stable)


def _nginx_sync(config: RouterConfig, traffic: Traffic) -> NginxSync:
    plane = NginxDataPlane(config.nginx, lambda green_bp, stable: nginx_config_text(config, green_bp, stable))
    return NginxSync(plane, traffic)


def _nginx_ejections(config: RouterConfig, traffic: Traffic, prober: Prober, metrics: RouterMetrics) -> dict[str, Any]:
    """The access-log follower's watch on nginx's own ejections (nginx data plane with ejection on)."""
    if config.data_plane != "nginx" or not config.outliers.enabled:
        return {}
    return {"ejections": NginxEjectionWatch(nginx_fail_timeout_s(config.outliers.base_ejection_s)),
            "on_ejection": EjectionReporter(traffic, prober.record_soon, metrics)}


class Dispatch:
    """Top-level ASGI app: public paths to the proxy, the rest (and lifespan) to FastAPI."""

    def __init__(self, api: FastAPI, proxy: Proxy) -> None:
        self.api, self.proxy = api, proxy
        self.guarded = AdminBodyGuard(api)  # admin bodies: 413/415 before the framework reads them

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PUBLIC_PREFIXES):
            return await self.proxy(scope, receive, send)
        await self.guarded(scope, receive, send)


def create_app(config: RouterConfig) -> ASGIApp:
    store = StateStore(config.state_path)
    saved = store.load(RouterState(green_bp=percent_to_bp(config.initial_green_weight)))
    metrics = RouterMetrics()
    traffic = Traffic(saved.green_bp, Colour(saved.stable), metrics=metrics)
    windows = {colour: SlidingWindow(config.window_s) for colour in Colour}
    upstreams = {colour: Upstream(config.backend_url(colour.value), config.timeouts, config.max_connections_per_backend,
                                  config.upstream_client) for colour in Colour}
    outliers = OutlierDetector(config.outliers)  # ejects at the proxy; the prober readmits
    mirror = Mirror(upstreams, config.rollout.shadow, metrics) if config.data_plane == "builtin" else None
    live_checks = LiveChecks(config.rollout.answer_checks) if config.data_plane == "builtin" else None
    prober = Prober({c: config.backend_url(c.value) for c in Colour}, config.probes, traffic, store, outliers)
    limiter = RateLimiter(config.rate_limit)
    analytics = writer_for(config, metrics, limiter.tier_for)  # one JSON line per public request (built-in plane)
    proxy = Proxy(config, traffic, upstreams, windows, metrics, limiter, on_connect_failure=prober.wake,
                  outliers=outliers, on_ejection=prober.announce_ejection, mirror=mirror, live_checks=live_checks,
                  analytics=analytics)
    nginx = _nginx_sync(config, traffic) if config.data_plane == "nginx" else None
    runtime = make_runtime(config.runtime, store)  # a docker runtime builds its image here, before serving
    # nginx's access log: what nginx served is the router's exported traffic (nginx data plane), and/or
    # what the judge reads (nginx_log provider, in windows of its own).
    follower = None
    judged_windows = windows
    if config.metrics_provider.kind == "nginx_log":
        judged_windows = {colour: SlidingWindow(config.window_s) for colour in Colour}
    if config.data_plane == "nginx" or config.metrics_provider.kind == "nginx_log":
        follower = AccessLogFollower(config.nginx.access_log, {c: config.backend_url(c.value) for c in Colour}, judged_windows,
                                     metrics if config.data_plane == "nginx" else None,
                                     on_line=analytics.submit if analytics is not None and config.data_plane == "nginx"
                                     else None, **_nginx_ejections(config, traffic, prober, metrics))
    controller = Controller(
        config.rollout, store, traffic, make_provider(config.metrics_provider, judged_windows), Webhooks(config.webhooks),
        {c: config.backend_url(c.value) for c in Colour}, config.window_s,
        Rollout.from_dict(saved.rollout) if saved.rollout else None, metrics,
        apply_weights=nginx.apply if nginx else None, runtime=runtime, mirror=mirror, live_checks=live_checks,
        check_weights=nginx.check if nginx else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:  # the stable colour, and the canary of a rollout under way
            await runtime.start_colour(traffic.stable)
            if controller.rollout is not None and controller.rollout.phase not in FINISHED:
                await runtime.start_colour(Colour(controller.rollout.canary))
            runtime.start()
        prober.start()
        if analytics is not None:
            analytics.start()
        if nginx is not None:
            nginx.start()
        if follower is not None:
            await follower.start_after_read_back()
        controller.start()
        log.info("routing blue %s / green %s (green %.2f %%), state in %s",
                 config.blue.url, config.green.url, traffic.green_bp / 100, config.state_path)
        try:
            yield
        finally:
            await controller.stop()
            if mirror is not None:
                await mirror.stop()
            if nginx is not None:
                await nginx.stop()
            if follower is not None:
                await follower.stop()
            await prober.stop()
            if analytics is not None:  # after the last request: what is still queued gets written
                await analytics.stop()
            if runtime is not None:
                await runtime.stop()
            for upstream in upstreams.values():
                await upstream.aclose()
            store.close()

    api = FastAPI(
        title="bluegreen router", version=__version__, lifespan=lifespan,
        openapi_url=None, docs_url=None, redoc_url=None,  # served by router.openapi, with the public routes
        description="Blue-green traffic router for the legal assistant's models. Public routes (`/api/…`, `/v1/…`) "
                    "are proxied to blue or green: their entries are the stable backend's own, plus what the router "
                    "answers itself (413, 429, 502, 504). `/admin` needs `Authorization: Bearer "
                    "$BLUEGREEN_ADMIN_TOKEN`.",
    )
    api.state.config = config
    api.state.store = store
    api.state.traffic = traffic
    api.state.windows = judged_windows  # what the judge reads: the router's own, or nginx's log
    api.state.metrics = metrics
    api.state.control = Control(store, traffic, nginx.check if nginx else None, nginx.apply if nginx else None)
    api.state.nginx = nginx
    api.state.runtime = runtime
    api.state.controller = controller
    api.state.mirror = mirror
    api.state.analytics = analytics
    api.add_exception_handler(RequestValidationError, validation_error_handler)
    api.add_exception_handler(HTTPException, http_error_handler)
    api.include_router(admin_api.router)
    api.include_router(ops)
    api.include_router(docs)
    api.include_router(console_pages)  # /console and /try: static pages over the admin and public APIs
    return Dispatch(api, proxy)
