"""The admin API (`/admin`): status, weights and the audit trail, behind a bearer token."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bluegreen_common.http_errors import error_responses
from router.admin.bodies import RolloutBody, WeightsBody
from router.errors import CommandRefused, NginxError, RolloutBlocked, StateUnavailable
from router.weights import Colour

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


# The statuses each kind of admin route can answer besides its success, for its OpenAPI entry.
READ_ERRORS: dict[int | str, str] = {401: "no bearer token", 403: "not the router's admin token"}
WRITE_ERRORS: dict[int | str, str] = {
    **READ_ERRORS, 503: "no admin token is configured, or the state could not be written; nothing changed"}
BODY_ERRORS: dict[int | str, str] = {
    400: "the body is not readable JSON", 422: "an invalid field (the message names it); nothing changed"}
ACTIONS = {
    "pause": "Pause the rollout: traffic holds at the current step",
    "resume": "Resume a paused rollout",
    "promote": "Promote the canary now, skipping the remaining steps",
    "confirm": "Confirm a promotion that waits for confirmation (confirm_promotion)",
    "rollback": "Roll back: every session returns to the stable colour",
}

router = APIRouter(prefix="/admin", tags=["admin"])


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
                "ejection": traffic.health[colour].ejection,  # why outlier detection took it out; null: admitted
                "window": state.windows[colour].summary().as_dict(),
            }
            for colour in Colour
        },
        **({"runtime": state.runtime.status()} if state.runtime is not None else {}),
        **({"shadow": state.mirror.tally.as_dict()} if getattr(state, "mirror", None) is not None else {}),
        "time": time.time(),
    }


@router.get("/status", summary="Weights, stable colour, rollout phase and per-colour window figures",
            responses=error_responses(READ_ERRORS))
async def status(request: Request, _: Annotated[str, Depends(reader)]) -> dict[str, Any]:
    return _status(request)


@router.put("/weights", summary="Set one colour's share (the other gets the rest); committed before it takes effect",
            responses=error_responses({**WRITE_ERRORS, **BODY_ERRORS,
                                       409: "a rollout drives the weights, or nginx refused the new config"}))
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


@router.get("/events", summary="The audit trail, oldest first, after event `since`",
            responses=error_responses({**READ_ERRORS, 422: "an invalid parameter (the message names it)",
                                       503: "the state could not be read"}))
async def events(request: Request, _: Annotated[str, Depends(reader)],
                 since: Annotated[int, Query(ge=0, le=2**63 - 1, description="return events with a larger id")] = 0,
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


@router.get("/rollout", summary="The current (or last) rollout record", responses=error_responses(READ_ERRORS))
async def get_rollout(request: Request, _: Annotated[str, Depends(reader)]) -> dict[str, Any]:
    return _rollout_view(request)


@router.post("/rollout", status_code=201, summary="Start a rollout: warm up, then step traffic to the canary, judging each step",
             responses=error_responses({**WRITE_ERRORS, **BODY_ERRORS,
                                        409: "a rollout is active, or a pre-rollout webhook refused"}))
async def start_rollout(request: Request, actor: Annotated[str, Depends(writer)], body: RolloutBody | None = None) -> dict[str, Any]:
    body = body or RolloutBody()
    try:
        event = await request.app.state.controller.begin(body.steps, body.interval_s, actor)
    except (CommandRefused, RolloutBlocked, StateUnavailable) as exc:
        raise _conflict_or_unavailable(exc) from exc
    return {"rollout": _rollout_view(request), "event": event.as_dict()}


async def _command(action: str, request: Request, actor: str) -> dict[str, Any]:
    try:
        event = await request.app.state.controller.command(action, actor)
    except (CommandRefused, StateUnavailable) as exc:
        raise _conflict_or_unavailable(exc) from exc
    return {"rollout": _rollout_view(request), "event": event.as_dict()}


def _action(action: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def act(request: Request, actor: Annotated[str, Depends(writer)]) -> dict[str, Any]:
        return await _command(action, request, actor)

    return act


# One documented operation per action, so the schema lists exactly the actions there are.
for _name, _summary in ACTIONS.items():
    router.add_api_route(f"/rollout/{_name}", _action(_name), methods=["POST"], name=f"rollout_{_name}",
                         summary=_summary, responses=error_responses({**WRITE_ERRORS, 409: "not possible in this phase"}))


@router.post("/rollout/{action}", include_in_schema=False)
async def unknown_action(action: str) -> None:
    raise HTTPException(404, f"unknown action {action!r}; use {', '.join(ACTIONS)}")
