"""The admin API's request bodies, written so that their JSON Schema states every rule they check.

A body the OpenAPI schema allows is accepted, and one it forbids is refused with 422: operators and
generated clients can trust the schema (tests/e2e/test_openapi.py fuzzes it against a live router).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from router.rollout.machine import validate_steps
from router.weights import FULL_WEIGHT_BP, percent_to_bp

# Two decimals at most, as JSON Schema says it; the check itself is exact (`percent_to_bp`), never a
# float remainder.
TWO_DECIMALS: dict[str, Any] = {"multipleOf": 0.01}

Percent = Annotated[float, Field(ge=0, le=100, strict=True, allow_inf_nan=False, json_schema_extra=TWO_DECIMALS)]
Step = Annotated[float, Field(gt=0, le=100, strict=True, allow_inf_nan=False, json_schema_extra=TWO_DECIMALS)]


def _no_default(schema: dict[str, Any]) -> None:
    """An optional share has no default to show: it is absent, never null."""
    schema.pop("default", None)


def _two_decimals(value: float | None) -> float | None:
    if value is not None:
        percent_to_bp(value)
    return value


class WeightsBody(BaseModel):
    """One colour's share in percent (0–100, two decimals at most); the other colour gets the rest.

    Exactly one of `green` and `blue`: a pair would have to add up to 100, a rule JSON Schema cannot
    state, and one number says it all.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["green"]}, {"required": ["blue"]}],
        "examples": [{"green": 25}, {"blue": 99.5, "reason": "canary"}],
    })

    # Optional, but never null: the schema shows a number (`SkipJsonSchema`), and a null is refused.
    green: Percent | SkipJsonSchema[None] = Field(None, description="percent of sessions on green; blue gets the rest",
                                                  json_schema_extra=_no_default)
    blue: Percent | SkipJsonSchema[None] = Field(None, description="percent of sessions on blue; green gets the rest",
                                                 json_schema_extra=_no_default)
    reason: str | None = Field(None, max_length=500, description="kept in the audit trail")

    _checked = field_validator("green", "blue")(_two_decimals)

    @model_validator(mode="after")
    def _one_colour(self) -> WeightsBody:
        given = {"green", "blue"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError('give exactly one colour\'s share: {"green": 25} or {"blue": 75}')
        if getattr(self, given.pop()) is None:
            raise ValueError("the share must be a number from 0 to 100")
        return self

    def green_bp(self) -> int:
        if self.green is not None:
            return percent_to_bp(self.green)
        assert self.blue is not None
        return FULL_WEIGHT_BP - percent_to_bp(self.blue)


class RolloutBody(BaseModel):
    """Start a rollout of the colour that is not stable; omitted fields take the configured defaults."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"steps": [5, 25, 50, 100], "interval_s": 30}]})

    steps: Annotated[list[Step], Field(min_length=1, json_schema_extra={"uniqueItems": True})] | None = Field(
        None,
        description="canary percents, each step held for interval_s; a rollout only climbs, so they are taken "
                    "in increasing order, e.g. [5, 25, 50, 100]",
    )
    interval_s: float | None = Field(None, gt=0, le=86_400, strict=True, allow_inf_nan=False,
                                     description="seconds each step is held")

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[float] | None) -> list[float] | None:
        if steps is None:
            return None
        points = [percent_to_bp(step) for step in steps]
        if len(set(points)) != len(points):
            raise ValueError("each step once, e.g. [5, 25, 50, 100]")
        return validate_steps(sorted(steps))


class ModelBody(BaseModel):
    """The model (and engine) the runtime starts a colour with from now on; `bluegreen update` sets it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"model": "/srv/models/saiga/2026-11-29/saiga.gguf"},
                     {"model": "/srv/models/vistral/3", "engine": "transformers", "reason": "update 3"}]})

    model: str = Field(min_length=1, max_length=4096,
                       description="GGUF file or HF checkpoint directory on the router's machine, or an upstream "
                                   "model name (engine openai_upstream)")
    engine: Literal["llama_cpp", "transformers", "openai_upstream"] | SkipJsonSchema[None] = Field(
        None, description="engine to serve it with [default: the colour's configured engine]",
        json_schema_extra=_no_default)
    reason: str | None = Field(None, max_length=500, description="kept in the audit trail")

    def chosen(self) -> dict[str, str]:
        return {"model": self.model, **({"engine": self.engine} if self.engine else {})}


class NoteBody(BaseModel):
    """An operator tool's step in the audit trail (what `bluegreen update` checked, downloaded, verified)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"kind": "update_downloaded", "message": "saiga 2026-11-29: 4.1 GB in 212 s"}]})

    kind: str = Field(pattern=r"^(note|update_[a-z][a-z0-9_]{0,39})$",
                      description="`note`, or `update_<step>`; the router's own kinds cannot be posed as")
    message: str = Field(min_length=1, max_length=2000)
