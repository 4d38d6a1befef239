"""Audit events: what changed, who changed it and why; appended in the same transaction as the change.

Plain values, so the pure rollout machine can describe its changes without knowing where they are stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    id: int
    at: float
    actor: str
    kind: str
    message: str
    before: Any = None
    after: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EventDraft:
    """An event to append in the same transaction as a change."""

    actor: str
    kind: str
    message: str
    before: Any = None
    after: Any = None
