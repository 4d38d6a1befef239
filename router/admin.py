"""The admin API (`/admin`): status, weights and the audit trail, behind a bearer token."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.controller import RolloutBlocked
from router.dataplanes.nginx import NginxError
from router.rollout import CommandRefused, validate_steps
from router.routing import Colour, percent_to_bp
from router.state import StateUnavailable

bearer = HTTPBearer(auto_error=False, description="BLUEGREEN_ADMIN_TOKEN")

NO_TOKEN = ("no admin token is configured, so changes are refused; set BLUEGREEN_ADMIN_TOKEN (or admin_token in "
            "the config file) and restart the router")


def _check_token(request: Request, credentials: HTTPAuthorizationCredentials | None, mutating: bool) -> str:
    configured = request.app.state.config.admin_token
    if configured is None:
        if mutating:
            raise HTTPException(503, NO_TOKEN)
        return "anonymous"
    if credentials is None:
        raise HTTPException(401, "missing bearer token: send 'Authorization: Bearer <BLUEGREEN_ADMIN_TOKEN>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.credentials.encode(), configured.get_secret_value().encode()):
        raise HTTPException(403, "the bearer token is not the router's admin token")
    return "admin"


def reader(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    return _check_token(request, credentials, mutating=False)


def writer(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    return _check_token(request, credentials, mutating=True)


class WeightsBody(BaseModel):
    """Green's share in percent (0–100, two decimals at most); blue gets the rest."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"green": 25}, {"green": 0.5, "reason": "canary"}]})

    green: float = Field(ge=0, le=100, strict=True, allow_inf_nan=False, description="percent of sessions on green")
    blue: float | None = Field(None, ge=0, le=100, strict=True, allow_inf_nan=False,
                               description="optional; when given, blue + green must be 100")
    reason: str | None = Field(None, max_length=500, description="kept in the audit trail")

    @field_validator("green", "blue")
    @classmethod
    def _two_decimals(cls, value: float | None) -> float | None:
        if value is not None:
            percent_to_bp(value)
        return value

    def green_bp(self) -> int:
        green = percent_to_bp(self.green)
        if self.blue is not None and percent_to_bp(self.blue) + green != 10_000:
            raise HTTPException(422, f"blue {self.blue:g} + green {self.green:g} must be 100; or send only green")
        return green


router = APIRouter(prefix="/admin", tags=["admin"])


class RolloutBody(BaseModel):
    """Start a rollout of the colour that is not stable; omitted fields take the configured defaults."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"steps": [5, 25, 50, 100], "interval_s": 30}]})

    steps: list[float] | None = Field(None, min_length=1, description="canary percent per step, increasing, e.g. [5, 25, 50, 100]")
    interval_s: float | None = Field(None, gt=0, le=86_400, allow_inf_nan=False, description="seconds each step is held")

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[float] | None) -> list[float] | None:
        return validate_steps(steps) if steps is not None else None


def _rollout_view(request: Request) -> dict[str, Any]:
    rollout = request.app.state.controller.rollout
    return rollout.as_dict() if rollout is not None else {"phase": "idle"}


def _status(request: Request) -> dict[str, Any]:
    state = request.app.state
    traffic = state.traffic
    rollout = _rollout_view(request)
    return {
        "weights": traffic.weights(),
        "stable": traffic.stable.value,
        "phase": rollout["phase"],
        "rollout": rollout,
        "data_plane": state.config.data_plane,
        **({"nginx": {"applied_green_percent": None if state.nginx.plane.applied_bp is None
                      else state.nginx.plane.applied_bp / 100, "error": state.nginx.last_error}}
           if state.nginx is not None else {}),
        "backends": {
            colour.value: {
                "url": state.config.backend_url(colour.value),
                "ready": traffic.health[colour].ready,
                "reason": traffic.health[colour].reason,
                "window": state.windows[colour].summary().as_dict(),
            }
            for colour in Colour
        },
        **({"runtime": state.runtime.status()} if state.runtime is not None else {}),
        "time": time.time(),
    }


@router.get("/status", summary="Weights, stable colour, rollout phase and per-colour window figures")
async def status(request: Request, _: Annotated[str, Depends(reader)]) -> dict[str, Any]:
    return _status(request)


@router.put("/weights", summary="Set green's share (blue gets the rest); committed before it takes effect",
            responses={401: {"description": "no token"}, 403: {"description": "wrong token"},
                       422: {"description": "invalid weights; nothing changed"},
                       503: {"description": "no admin token configured, or the state could not be written"}})
async def put_weights(body: WeightsBody, request: Request, actor: Annotated[str, Depends(writer)]) -> dict[str, Any]:
    green_bp = body.green_bp()
    if request.app.state.controller.active:
        raise HTTPException(409, "a rollout is driving the weights; pause it (POST /admin/rollout/pause) or roll it "
                                 "back first")
    try:
        event = await request.app.state.control.set_green_weight(green_bp, actor, body.reason)
    except NginxError as exc:
        raise HTTPException(409, f"weights unchanged: {exc}; nginx keeps its current config") from exc
    except StateUnavailable as exc:
        raise HTTPException(503, f"weights unchanged: {exc}; traffic keeps the last good weights") from exc
    return {"weights": request.app.state.traffic.weights(), "event": event.as_dict()}


@router.get("/events", summary="The audit trail, oldest first, after event `since`")
async def events(request: Request, _: Annotated[str, Depends(reader)],
                 since: Annotated[int, Query(ge=0, description="return events with a larger id")] = 0,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 latest: Annotated[int | None, Query(ge=1, le=1000, description="only the newest N events")] = None,
                 ) -> dict[str, Any]:
    store = request.app.state.store
    try:
        if latest is not None:
            found = await asyncio.to_thread(store.latest_events, latest)
        else:
            found = await asyncio.to_thread(store.events, since, limit)
    except StateUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    return {"events": [e.as_dict() for e in found], "last_id": found[-1].id if found else since}


def _conflict_or_unavailable(exc: Exception) -> HTTPException:
    if isinstance(exc, StateUnavailable):
        return HTTPException(503, f"nothing changed: {exc}")
    return HTTPException(409, str(exc))


@router.get("/rollout", summary="The current (or last) rollout record")
async def get_rollout(request: Request, _: Annotated[str, Depends(reader)]) -> dict[str, Any]:
    return _rollout_view(request)


@router.post("/rollout", status_code=201, summary="Start a rollout: warm up, then step traffic to the canary, judging each step",
             responses={409: {"description": "a rollout is active, or a pre-rollout webhook refused"}})
async def start_rollout(request: Request, actor: Annotated[str, Depends(writer)], body: RolloutBody | None = None) -> dict[str, Any]:
    body = body or RolloutBody()
    try:
        event = await request.app.state.controller.begin(body.steps, body.interval_s, actor)
    except (CommandRefused, RolloutBlocked, StateUnavailable) as exc:
        raise _conflict_or_unavailable(exc) from exc
    return {"rollout": _rollout_view(request), "event": event.as_dict()}


@router.post("/rollout/{action}", summary="Operator action: pause, resume, promote (skip remaining steps), confirm, rollback",
             responses={404: {"description": "unknown action"}, 409: {"description": "not possible in this phase"}})
async def rollout_action(action: str, request: Request, actor: Annotated[str, Depends(writer)]) -> dict[str, Any]:
    if action not in ("pause", "resume", "promote", "confirm", "rollback"):
        raise HTTPException(404, f"unknown action {action!r}; use pause, resume, promote, confirm or rollback")
    try:
        event = await request.app.state.controller.command(action, actor)
    except (CommandRefused, StateUnavailable) as exc:
        raise _conflict_or_unavailable(exc) from exc
    return {"rollout": _rollout_view(request), "event": event.as_dict()}
