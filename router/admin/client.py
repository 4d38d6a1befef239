"""The admin API from the operator's side: what the CLI calls, with errors in plain words."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from router.errors import AdminError, RouterUnreachable


def error_message(response: httpx.Response) -> str:
    """The message of the admin API's `{"error": {...}}` envelope (every 4xx and 5xx it answers, its 422s
    included); the raw text when something in between (a proxy) answered instead."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message) if message else response.text


class AdminClient:
    def __init__(self, router_url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.router_url = router_url.rstrip("/")
        token = token if token is not None else os.environ.get("BLUEGREEN_ADMIN_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=self.router_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            request = self._client.build_request(method, path, **kwargs)
        except ValueError as exc:  # nan or ±inf in a JSON body: no JSON can carry them, so nothing is sent
            raise AdminError(f"cannot send {method} {path}: {exc}; give finite numbers") from exc
        try:
            response = self._client.send(request)
        except httpx.HTTPError as exc:
            raise RouterUnreachable(f"cannot reach the router at {self.router_url} ({exc.__class__.__name__}); "
                             "is `bluegreen serve` running there? (--router URL)") from exc
        if response.status_code < 400:
            answer: dict[str, Any] = response.json()
            return answer
        detail = error_message(response)
        hint = {401: " (export BLUEGREEN_ADMIN_TOKEN)", 403: " (check BLUEGREEN_ADMIN_TOKEN)"}.get(response.status_code, "")
        raise AdminError(f"the router answered {response.status_code}: {detail}{hint}")

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/admin/status")

    def events(self, since: int = 0, limit: int = 100) -> dict[str, Any]:
        return self._call("GET", "/admin/events", params={"since": since, "limit": limit})

    def latest_events(self, count: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self._call("GET", "/admin/events", params={"latest": count})["events"]
        return events

    def set_green(self, percent: float, reason: str | None = None) -> dict[str, Any]:
        return self._call("PUT", "/admin/weights", json={"green": percent, **({"reason": reason} if reason else {})})

    def start_rollout(self, steps: list[float] | None, interval_s: float | None) -> dict[str, Any]:
        body = {k: v for k, v in {"steps": steps, "interval_s": interval_s}.items() if v is not None}
        return self._call("POST", "/admin/rollout", json=body)

    def action(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/admin/rollout/{name}")

    def set_model(self, colour: str, model: str, engine: str | None = None, reason: str | None = None) -> dict[str, Any]:
        body = {"model": model, **({"engine": engine} if engine else {}), **({"reason": reason} if reason else {})}
        return self._call("PUT", f"/admin/runtime/{colour}/model", json=body)

    def reset_model(self, colour: str) -> dict[str, Any]:
        return self._call("DELETE", f"/admin/runtime/{colour}/model")

    def note(self, kind: str, message: str) -> dict[str, Any]:
        return self._call("POST", "/admin/events", json={"kind": kind, "message": message})

    def follow_rollout(self, since: int, on_change: Callable[[dict[str, Any], list[dict[str, Any]]], None],
                       poll_s: float = 0.5, reconnect_s: float = 60.0,
                       on_unreachable: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Poll until the rollout reaches a finished phase; the last status. `on_change(status, events
        after `since`)` is called at each poll (the CLI redraws its dashboard there). A router that stops
        answering (a restart: the rollout lives in its state file) is waited for up to `reconnect_s`;
        `on_unreachable` hears about it once per outage."""
        from router.rollout.machine import FINISHED, Phase

        seen: list[dict[str, Any]] = []
        down_since: float | None = None
        while True:
            try:
                current = self.status()
                seen += self.events_after(seen[-1]["id"] if seen else since)
            except RouterUnreachable as exc:
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                    if on_unreachable is not None:
                        on_unreachable(f"{exc}; waiting up to {reconnect_s:g} s for it to come back")
                if now - down_since > reconnect_s:
                    raise
                time.sleep(poll_s)
                continue
            down_since = None
            on_change(current, seen)
            if Phase(current["rollout"]["phase"]) in FINISHED:
                return current
            time.sleep(poll_s)

    def events_after(self, since: int) -> list[dict[str, Any]]:
        """Every event after `since`, a page of 1,000 at a time."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.events(since=since, limit=1000)
            found += page["events"]
            since = page["last_id"]
            if len(page["events"]) < 1000:
                return found
