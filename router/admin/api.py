"""The admin API (`/admin`): status, weights and the audit trail, behind a bearer token."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bluegreen_common.http_errors import error_responses
from router.admin.bodies import ModelBody, NoteBody, RolloutBody, WeightsBody
from router.analytics.reader import RecordCache
from router.analytics.summary import MAX_DAYS, By
from router.errors import CommandRefused, NginxError, RolloutBlocked, StateUnavailable
from router.events import EventDraft
from router.rollout.machine import FINISHED, Phase
from router.weights import Colour

bearer = HTTPBearer(auto_error=False, description="BLUEGREEN_ADMIN_TOKEN")

NO_TOKEN = ("no admin token is configured, so changes are refused; set BLUEGREEN_ADMIN_TOKEN in the router's "
            "environment and restart the router")


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
    400: "the body is not readable JSON", 413: "the body is over 64 KiB; nothing changed",
    415: "the body is not sent as JSON (Content-Type: application/json); nothing changed",
    422: "an invalid field (the message names it); nothing changed"}
ACTIONS = {
    "pause": "Pause the rollout: traffic holds at the current step",
    "resume": "Resume a paused rollout: the step's weights apply again (over any set while paused) and its interval starts over",
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
        raise HTTPException(409, "a rollout is driving the weights; pause it (`bluegreen pause`, POST "
                                 "/admin/rollout/pause) or roll it back first")
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


# -- the canary's model (bluegreen update) and operator notes -------------------------------------

NO_RUNTIME = ("runtime.kind is none: the router does not start the backends, so it cannot change their model; "
              "start the new model behind the canary's URL yourself and run `bluegreen cutover`, or let the router "
              "run the backends (runtime.kind local or docker)")
MODEL_CONFLICTS = "runtime.kind is none, the colour is the stable one, or a rollout (or its fast-rollback window) is on"


def _model_refusal(request: Request, colour: Colour) -> str | None:
    """Why the model of `colour` cannot change now, or None. Only the colour no session depends on may change."""
    state = request.app.state
    if state.runtime is None:
        return NO_RUNTIME
    if colour is state.traffic.stable:
        return (f"{colour.value} is the stable colour and serves the sessions; set the model of "
                f"{colour.other.value}, the next canary")
    rollout = state.controller.rollout
    if rollout is not None and rollout.phase not in FINISHED:
        return f"a rollout is {rollout.phase.value}; let it end, or roll it back, first"
    if rollout is not None and rollout.phase is Phase.promoted and not rollout.old_stopped \
            and rollout.old_stop_at is not None and rollout.old_stop_at > time.time():
        return (f"{colour.value} is kept for a fast rollback for another {rollout.old_stop_at - time.time():.0f} s "
                "(rollout.keep_old_s); try again after the event old_colour_released")
    return None


async def _set_model(request: Request, colour: Colour, chosen: dict[str, str] | None, actor: str,
                     reason: str | None) -> dict[str, Any]:
    runtime, store = request.app.state.runtime, request.app.state.store
    before = runtime.models.get(colour.value)
    models = {**runtime.models, colour.value: chosen} if chosen else \
        {key: value for key, value in runtime.models.items() if key != colour.value}
    if chosen:
        engine = chosen.get("engine", runtime.options.spec(colour).engine)
        message = f"{colour.value} starts on {chosen['model']} ({engine}) from its next start"
        kind = "model_set"
    else:
        message, kind = f"{colour.value} starts on its configured model again", "model_reset"
    message += f" ({reason})" if reason else ""
    try:
        event = await asyncio.to_thread(store.commit, {"models": models},
                                        EventDraft(actor, kind, message, before=before, after=chosen))
    except StateUnavailable as exc:
        raise HTTPException(503, f"model unchanged: {exc}") from exc
    await runtime.set_model(colour, chosen)
    return {"colour": colour.value, "model": chosen, "before": before, "event": event.as_dict()}


@router.put("/runtime/{colour}/model", summary="Set the model the runtime starts the canary colour with at the next "
                                               "rollout (persisted; its running backend is stopped)",
            responses=error_responses({**WRITE_ERRORS, **BODY_ERRORS, 409: MODEL_CONFLICTS}))
async def put_model(colour: Colour, body: ModelBody, request: Request,
                    actor: Annotated[str, Depends(writer)]) -> dict[str, Any]:
    refusal = _model_refusal(request, colour)
    if refusal is not None:
        raise HTTPException(409, refusal)
    engine = body.engine or request.app.state.runtime.options.spec(colour).engine
    if engine != "openai_upstream" and not await asyncio.to_thread(Path(body.model).exists):
        raise HTTPException(422, f"model: no file or directory {body.model} on the router's machine; give a path "
                                 "the router can read (the models directory must be shared with it)")
    return await _set_model(request, colour, body.chosen(), actor, body.reason)


@router.delete("/runtime/{colour}/model", summary="Start the colour on its configured model again",
               responses=error_responses({**WRITE_ERRORS, 409: MODEL_CONFLICTS}))
async def delete_model(colour: Colour, request: Request, actor: Annotated[str, Depends(writer)]) -> dict[str, Any]:
    refusal = _model_refusal(request, colour)
    if refusal is not None:
        raise HTTPException(409, refusal)
    return await _set_model(request, colour, None, actor, None)


@router.post("/events", status_code=201, summary="Append an operator tool's step (`note`, `update_*`) to the audit trail",
             responses=error_responses({**WRITE_ERRORS, **BODY_ERRORS}))
async def post_event(body: NoteBody, request: Request, actor: Annotated[str, Depends(writer)]) -> dict[str, Any]:
    try:
        event = await asyncio.to_thread(request.app.state.store.record, EventDraft(actor, body.kind, body.message))
    except StateUnavailable as exc:
        raise HTTPException(503, f"not recorded: {exc}") from exc
    return {"event": event.as_dict()}


# -- usage analytics: the console's "by category" panel (`bluegreen analytics` reads the same files) ----------


@router.get("/analytics", summary="Usage analytics summed up by colour, category, day or tier",
            responses=error_responses({**READ_ERRORS, 404: "analytics are off (analytics.enabled)",
                                       422: "an invalid parameter (the message names it)"}))
async def analytics(request: Request, _: Annotated[str, Depends(reader)],
                    by: Annotated[By, Query(description="how to group the requests")] = "category",
                    days: Annotated[float | None, Query(gt=0, le=MAX_DAYS, description="only the last N days")] = None,
                    ) -> dict[str, Any]:
    """The same figures as `bluegreen analytics --json`, read from analytics.path (and its rotated files)."""
    options = request.app.state.config.analytics
    if not options.enabled:
        raise HTTPException(404, "analytics are off; set analytics.enabled (BLUEGREEN_ANALYTICS__ENABLED=true) "
                                 "and restart the router")
    since = None if days is None else datetime.now(UTC) - timedelta(days=days)
    cache = getattr(request.app.state, "analytics_records", None)
    if cache is None or cache.path != options.path:  # one per router, whoever asks: only new bytes are read
        cache = request.app.state.analytics_records = RecordCache(options.path)
    total, rows = await asyncio.to_thread(cache.summary, by, since)
    return {"path": str(options.path), "days": days, "by": by, "total": total.to_dict(),
            "rows": [row.to_dict() for row in rows]}
