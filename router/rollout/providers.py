"""Metrics providers: where the judge's figures come from.

`builtin` reads the router's own sliding windows; `prometheus` asks a Prometheus server (PromQL
over its HTTP API) about the same metrics, for when the data plane is nginx or several routers.
A provider that cannot answer raises ProviderError; the controller treats that as inconclusive.
"""

from __future__ import annotations

import math
import time
from typing import Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from router.errors import ProviderError
from router.rollout.judge import Evidence
from router.rollout.windows import SlidingWindow, WindowSummary
from router.weights import Colour


class ProviderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["builtin", "prometheus", "nginx_log"] = Field(
        "builtin", description="builtin: the router's windows; prometheus: PromQL; nginx_log: nginx's JSON access log")
    prometheus_url: str = Field("http://127.0.0.1:9090", description="base URL of the Prometheus HTTP API")
    timeout_s: float = Field(5.0, gt=0)
    selector: str = Field("", description='extra label matchers for every query, e.g. job="bluegreen"')
    min_range_s: float = Field(60.0, gt=0, description="shortest PromQL range asked for; at least 4 × the scrape interval")


class MetricsProvider(Protocol):
    async def evidence(self, canary: Colour, span_s: float) -> Evidence: ...

    async def aclose(self) -> None: ...


class BuiltinProvider:
    def __init__(self, windows: dict[Colour, SlidingWindow]) -> None:
        self.windows = windows

    async def evidence(self, canary: Colour, span_s: float) -> Evidence:
        other = canary.other
        now = time.monotonic()  # both colours over the same span
        mine, theirs = self.windows[canary].read(now, span_s), self.windows[other].read(now, span_s)
        return Evidence(mine.summary, theirs.summary, mine.latencies, theirs.latencies,
                        names=(canary.value, other.value))

    async def aclose(self) -> None:
        return None


class PrometheusProvider:
    """PromQL over the router's metrics (`bluegreen_*`), per colour, over the step's span."""

    def __init__(self, options: ProviderOptions) -> None:
        self.options = options
        self._client = httpx.AsyncClient(base_url=options.prometheus_url.rstrip("/"), timeout=options.timeout_s)

    def _match(self, colour: Colour, extra: str = "") -> str:
        parts = [f'colour="{colour.value}"', *(p for p in (self.options.selector, extra) if p)]
        return "{" + ",".join(parts) + "}"

    async def _scalar(self, query: str) -> float | None:
        try:
            response = await self._client.get("/api/v1/query", params={"query": query})
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderError(f"prometheus at {self.options.prometheus_url} did not answer: {exc!r}") from exc
        if response.status_code != 200 or data.get("status") != "success":
            raise ProviderError(f"prometheus refused {query!r}: {data.get('error', response.status_code)}")
        result = data["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    async def summary(self, colour: Colour, span_s: float) -> WindowSummary:
        window = f"[{max(1, round(max(span_s, self.options.min_range_s)))}s]"
        total = await self._scalar(f"sum(increase(bluegreen_requests_total{self._match(colour)}{window}))") or 0.0
        failed = self._match(colour, 'code=~"5.."')
        errors = await self._scalar(f"sum(increase(bluegreen_requests_total{failed}{window}))") or 0.0

        async def quantile(metric: str, q: float) -> float | None:
            return await self._scalar(
                f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{self._match(colour)}{window})))")

        requests = round(total)
        return WindowSummary(
            span_s=span_s, requests=requests, errors=round(errors), error_rate=errors / total if total else 0.0,
            rps=total / span_s if span_s else 0.0,
            latency_p50_s=await quantile("bluegreen_request_duration_seconds", 0.5),
            latency_p95_s=await quantile("bluegreen_request_duration_seconds", 0.95),
            latency_p99_s=await quantile("bluegreen_request_duration_seconds", 0.99),
            ttft_p95_s=await quantile("bluegreen_time_to_first_token_seconds", 0.95),
        )

    async def evidence(self, canary: Colour, span_s: float) -> Evidence:
        return Evidence(await self.summary(canary, span_s), await self.summary(canary.other, span_s),
                        names=(canary.value, canary.other.value))

    async def aclose(self) -> None:
        await self._client.aclose()


def make_provider(options: ProviderOptions, windows: dict[Colour, SlidingWindow]) -> MetricsProvider:
    return PrometheusProvider(options) if options.kind == "prometheus" else BuiltinProvider(windows)
