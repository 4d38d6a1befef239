"""Analytics settings (`analytics:` in the config): where the JSONL goes, how it rotates, what it holds."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class AnalyticsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="write one JSON line per public request")
    path: Path = Field(Path("runs/analytics.jsonl"), description="the current file; rotated ones are PATH.1, PATH.2, "
                                                                 "…; unset: analytics.jsonl beside state_path")
    rotate_mb: float = Field(64.0, gt=0, description="start a new file when the current one would grow past this")
    keep: int = Field(5, ge=0, description="rotated files kept beside the current one (older ones are deleted)")
    log_text: bool = Field(False, description="also write the question and the answer (personal data: off by default)")
    salt: SecretStr | None = Field(
        None, description="key of the user-id hash; set BLUEGREEN_ANALYTICS__SALT. Unset: a random one is made once "
                          "and kept beside the file in PATH.salt")
    queue_size: int = Field(10000, ge=1, description="records waiting for the writer; beyond this they are dropped "
                                                     "and counted, never waited for")
    flush_s: float = Field(0.5, gt=0, description="how often waiting records are made into lines and written")

    @field_validator("salt", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value in ("", None) else value

    def salt_path(self) -> Path:
        return self.path.with_name(self.path.name + ".salt")
