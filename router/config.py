"""Settings of the router: backends, timeouts, retries, probes, rate limits, admin token.

Loaded from one YAML file, then `BLUEGREEN_*` environment variables (nested with `__`), then
flags. Every option has a default that works on a laptop.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from router.analytics.options import AnalyticsOptions
from router.dataplanes.nginx import NginxOptions
from router.rollout.machine import RolloutOptions
from router.rollout.providers import ProviderOptions
from router.rollout.webhooks import WebhookOptions
from router.runtimes.options import RuntimeOptions
from router.weights import percent_to_bp


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackendTarget(_Strict):
    url: str = Field(description="base URL of the backend, e.g. http://127.0.0.1:8001")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class TimeoutOptions(_Strict):
    """Split timeouts: a long generation streams for minutes, so there is no blanket read limit."""

    connect_s: float = Field(2.0, gt=0, description="TCP connect to a backend")
    first_byte_s: float = Field(60.0, gt=0, description="request sent → response headers")
    idle_s: float = Field(60.0, gt=0, description="longest silence between two chunks of a response")


class RetryOptions(_Strict):
    """Retry a green failure once on blue, within Envoy's retry budget."""

    enabled: bool = True
    budget_percent: float = Field(20.0, ge=0, le=100, description="retries in flight ≤ this share of requests in flight")
    min_concurrency: int = Field(3, ge=0, description="retries always allowed in flight, whatever the share")
    blue_headroom: bool = Field(
        True, description="beyond the budget, retry on blue while blue carries no more than every client request in "
                          "flight (what it carried before the rollout) and is not failing itself")
    blue_in_flight_ceiling: int | None = Field(
        None, ge=1, description="a fixed ceiling for blue's requests in flight instead (null: the client load)")


class OutlierOptions(_Strict):
    """Envoy's outlier detection: a colour that keeps failing is ejected from new traffic at once."""

    enabled: bool = True
    consecutive_failures: int = Field(5, ge=1, description="failures in a row (5xx, connect error, timeout) that eject")
    failure_rate_percent: float = Field(50.0, gt=0, le=100, description="... or this share of attempts failing")
    rate_window_s: float = Field(2.0, gt=0, description="over this window")
    rate_min_requests: int = Field(10, ge=1, description="with at least this many attempts in it")
    base_ejection_s: float = Field(5.0, gt=0, description="first ejection; doubles with each repeat")
    max_ejection_s: float = Field(300.0, gt=0, description="longest ejection; healthy this long resets the doubling")


class ProbeOptions(_Strict):
    interval_s: float = Field(1.0, gt=0, description="time between two /ready probes of a backend")
    timeout_s: float = Field(2.0, gt=0)
    failures_to_unready: int = Field(1, ge=1, description="failed probes in a row before a backend takes no traffic")


class RateLimitOptions(_Strict):
    """Requests per hour by user tier (the seed's free/premium/enterprise)."""

    enabled: bool = True
    user_header: str = Field("X-User-ID", description="who is asking; requests without it are anonymous")
    tier_header: str = Field("X-User-Tier", description="set by the auth gateway in front of the router")
    default_tier: str = "free"
    anonymous_tier: str | None = Field(None, description="tier for requests with no user header; null: not limited")
    tiers: dict[str, int] = Field(default_factory=lambda: {"free": 10, "premium": 100, "enterprise": 1000})

    @field_validator("tiers")
    @classmethod
    def _positive(cls, tiers: dict[str, int]) -> dict[str, int]:
        bad = [name for name, limit in tiers.items() if limit < 1]
        if bad:
            raise ValueError(f"limits must be at least 1 request per hour: {', '.join(bad)}")
        return tiers


class RouterConfig(BaseSettings):
    """Everything `bluegreen serve` reads (file, then `BLUEGREEN_*` env, then flags)."""

    model_config = SettingsConfigDict(env_prefix="BLUEGREEN_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    state_path: Path = Field(Path("runs/bluegreen.db"), description="SQLite file with weights, rollout and events")
    blue: BackendTarget = BackendTarget(url="http://127.0.0.1:8001")
    green: BackendTarget = BackendTarget(url="http://127.0.0.1:8002")
    initial_green_weight: float = Field(0.0, description="green's share on the very first start (0–100)")
    admin_token: SecretStr | None = Field(None, description="bearer token of /admin; set BLUEGREEN_ADMIN_TOKEN")
    session_header: str = Field("X-Session-ID", description="request header holding the session key (letters, "
                                                            "digits and '-')")
    session_cookie: str = Field("bg_sid", description="cookie holding the session key (letters, digits and '_')")
    cookie_max_age_s: int = Field(30 * 24 * 3600, ge=0)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    window_s: float = Field(60.0, gt=0, description="length of the sliding windows the judge reads")
    timeouts: TimeoutOptions = TimeoutOptions()
    retry: RetryOptions = RetryOptions()
    outliers: OutlierOptions = OutlierOptions()
    probes: ProbeOptions = ProbeOptions()
    rate_limit: RateLimitOptions = RateLimitOptions()
    rollout: RolloutOptions = RolloutOptions()
    metrics_provider: ProviderOptions = ProviderOptions()
    webhooks: list[WebhookOptions] = Field(default_factory=list)
    data_plane: Literal["builtin", "nginx"] = Field(
        "builtin", description="builtin: this process proxies; nginx: weights are rendered into nginx and reloaded")
    nginx: NginxOptions = NginxOptions()
    runtime: RuntimeOptions = RuntimeOptions()
    analytics: AnalyticsOptions = AnalyticsOptions()

    @model_validator(mode="after")
    def _analytics_beside_state(self) -> RouterConfig:
        """Unless set, analytics go beside the state file: one folder holds what a router keeps, and two
        routers with their own state never share (and rotate) one analytics file."""
        if "path" not in self.analytics.model_fields_set:
            self.analytics = self.analytics.model_copy(update={"path": self.state_path.parent / "analytics.jsonl"})
        return self

    @model_validator(mode="after")
    def _runtime_urls(self) -> RouterConfig:
        """When the router starts the backends (local or docker runtime), their URLs follow its ports."""
        if self.runtime.kind != "none":
            if self.runtime.blue is None or self.runtime.green is None:
                raise ValueError(f"runtime.kind {self.runtime.kind} needs runtime.blue and runtime.green "
                                 "(engine, model, port)")
            self.blue = BackendTarget(url=f"http://127.0.0.1:{self.runtime.blue.port}")
            self.green = BackendTarget(url=f"http://127.0.0.1:{self.runtime.green.port}")
        return self
    max_connections_per_backend: int = Field(256, ge=1, description="pooled keep-alive connections kept per backend")
    upstream_client: Literal["http1", "httpx"] = Field(
        "http1", description="http1: the lean built-in client (plain http only); httpx: general-purpose, also https")

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("initial_green_weight")
    @classmethod
    def _weight(cls, value: float) -> float:
        percent_to_bp(value)
        return value

    @field_validator("session_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        """Also a variable name in nginx's config ($http_x_session_id): nothing there but what names allow."""
        if not re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", value):
            raise ValueError(f"session_header must be letters and digits joined by '-' (got {value!r})")
        return value

    @field_validator("session_cookie")
    @classmethod
    def _cookie_name(cls, value: str) -> str:
        """Also a variable name in nginx's config ($cookie_bg_sid)."""
        if not re.fullmatch(r"[A-Za-z0-9_]+", value):
            raise ValueError(f"session_cookie must be letters, digits and '_' (got {value!r})")
        return value

    def backend_url(self, colour: str) -> str:
        return (self.blue if colour == "blue" else self.green).url
