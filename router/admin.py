"""The admin API (`/admin`): status, weights and the audit trail, behind a bearer token."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

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


def _status(request: Request) -> dict[str, Any]:
    state = request.app.state
    traffic = state.traffic
    return {
        "weights": traffic.weights(),
        "stable": traffic.stable.value,
        "phase": (state.rollout or {}).get("phase", "idle"),
        "data_plane": "builtin",
        "backends": {
            colour.value: {
                "url": state.config.backend_url(colour.value),
                "ready": traffic.health[colour].ready,
                "reason": traffic.health[colour].reason,
                "window": state.windows[colour].summary().as_dict(),
            }
            for colour in Colour
        },
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
    try:
        event = await request.app.state.control.set_green_weight(green_bp, actor, body.reason)
    except StateUnavailable as exc:
        raise HTTPException(503, f"weights unchanged: {exc}; traffic keeps the last good weights") from exc
    return {"weights": request.app.state.traffic.weights(), "event": event.as_dict()}


@router.get("/events", summary="The audit trail, oldest first, after event `since`")
async def events(request: Request, _: Annotated[str, Depends(reader)],
                 since: Annotated[int, Query(ge=0, description="return events with a larger id")] = 0,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    try:
        found = await asyncio.to_thread(request.app.state.store.events, since, limit)
    except StateUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    return {"events": [e.as_dict() for e in found], "last_id": found[-1].id if found else since}
