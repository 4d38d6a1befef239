"""Webhooks: POST JSON to operators' systems at rollout moments; some of them gate the rollout.

`pre-rollout` and `confirm-promotion` are gates (a non-2xx answer blocks); `step`, `promotion`
and `rollback` are notifications whose failures are logged and never stop a rollback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("bluegreen.webhooks")

RETRY_PAUSE_S = 0.2
HookKind = Literal["pre-rollout", "step", "promotion", "rollback", "confirm-promotion"]


class WebhookOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    kinds: list[HookKind] = Field(description="which moments call this hook")
    timeout_s: float = Field(5.0, gt=0)
    attempts: int = Field(3, ge=1, le=10, description="tries when the connection fails (a non-2xx answer is final)")


class Webhooks:
    def __init__(self, hooks: list[WebhookOptions]) -> None:
        self.hooks = hooks
        self._client = httpx.AsyncClient()
        self._background: set[asyncio.Task[None]] = set()

    async def _post(self, hook: WebhookOptions, kind: str, payload: dict[str, Any]) -> str | None:
        """None when the hook answered 2xx, else what went wrong. A broken connection (the receiver
        closed a pooled one, say) is tried again; an answer, even a refusal, is final."""
        for attempt in range(1, hook.attempts + 1):
            try:
                response = await self._client.post(hook.url, json={"kind": kind, **payload}, timeout=hook.timeout_s)
                break
            except httpx.TransportError as exc:
                if attempt == hook.attempts:
                    return f"{hook.url}: {exc!r} (after {attempt} tries)"
                await asyncio.sleep(RETRY_PAUSE_S * attempt)
        if not 200 <= response.status_code < 300:
            return f"{hook.url} answered {response.status_code}: {response.text[:200]}"
        return None

    async def gate(self, kind: HookKind, payload: dict[str, Any]) -> str | None:
        """Call every hook of a gating kind; the first refusal, or None when all agree (or none exist)."""
        for hook in self.hooks:
            if kind in hook.kinds:
                refusal = await self._post(hook, kind, payload)
                if refusal:
                    return refusal
        return None

    def has(self, kind: HookKind) -> bool:
        return any(kind in hook.kinds for hook in self.hooks)

    def notify(self, kind: str, payload: dict[str, Any]) -> None:
        """Fire and forget: a slow or failing receiver never delays the controller."""
        for hook in self.hooks:
            if kind in hook.kinds:
                task = asyncio.create_task(self._notify_one(hook, kind, payload))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _notify_one(self, hook: WebhookOptions, kind: str, payload: dict[str, Any]) -> None:
        problem = await self._post(hook, kind, payload)
        if problem:
            log.warning("%s webhook failed: %s", kind, problem)

    async def aclose(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._client.aclose()
