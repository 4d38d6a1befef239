"""Warm-up: golden legal questions sent to the canary only, before any user is routed to it."""

from __future__ import annotations

import httpx

from router.rollout.machine import WarmupOptions


async def warm_up(base_url: str, options: WarmupOptions) -> str | None:
    """None when every golden question got a non-empty answer in time; else what went wrong."""
    async with httpx.AsyncClient(timeout=options.timeout_s) as client:
        for number, question in enumerate(options.questions, 1):
            label = f"golden question {number}/{len(options.questions)}"
            try:
                response = await client.post(f"{base_url}/api/v1/chat/legal",
                                             json={"question": question, "max_tokens": options.max_tokens})
            except httpx.TimeoutException:
                return f"{label}: no answer within {options.timeout_s:g} s"
            except httpx.HTTPError as exc:
                return f"{label}: {exc!r}"
            if response.status_code != 200:
                return f"{label}: answered {response.status_code}: {response.text[:200]}"
            try:
                answer = response.json().get("answer", "")
            except ValueError:
                return f"{label}: the answer is not JSON"
            if not str(answer).strip():
                return f"{label}: empty answer"
    return None
