"""Every error the router raises on purpose, under one root, so callers can catch by meaning.

RouterError
├── StateUnavailable       the SQLite state cannot be read or written (disk full, read-only, locked)
├── RuntimeUnavailable     the runtime cannot run backends at all (no Docker engine, no image, no program)
├── NginxError             nginx refused the config or the reload (nginx's own words)
├── ProviderError          the metrics provider could not be read
├── RolloutBlocked         a gate (a pre-rollout webhook) refused to let a rollout start
├── CommandRefused         an operator command makes no sense in the rollout's phase (also a ValueError)
├── AdminError             the admin API refused or could not be reached (the CLI's side)
│   └── RouterUnreachable  no answer at all
├── CompareFailed          `bluegreen compare` cannot run (bad URL or output folder, a backend never ready)
│   ├── QuestionsError     the questions file cannot be read or used
│   └── Unreachable        nothing answers at a backend's address
└── ProxyError             one proxied request's trouble, handled inside the proxy
    ├── RequestRefused     the router answers the request itself (413, 429)
    ├── ClientGone         the client went away mid-answer
    ├── ConnectFailed      no connection could be made to the backend
    ├── ConnectionBroken   the backend closed the connection or spoke something that is not HTTP/1.1
    ├── UpstreamFailure    a backend attempt failed before its first body chunk (it may be retried)
    └── StreamBroken       the backend stopped after the client already had part of the answer
"""

from __future__ import annotations

from typing import Any


class RouterError(Exception):
    """The root of the router's own errors."""


class StateUnavailable(RouterError):
    """The state could not be read or written (disk full, read-only, locked)."""


class RuntimeUnavailable(RouterError):
    """The runtime cannot run backends at all (no Docker engine, no image); the message says what to do."""


class NginxError(RouterError):
    """nginx refused the config or the reload; the message carries nginx's own words."""


class ProviderError(RouterError):
    """The metrics could not be read."""


class RolloutBlocked(RouterError):
    """A gate (a pre-rollout webhook) refused to let the rollout start."""


class CommandRefused(RouterError, ValueError):
    """The command makes no sense in the rollout's current phase; the message says what would."""


class AdminError(RouterError):
    """The router refused or could not be reached; the message says what to do."""


class RouterUnreachable(AdminError):
    """No answer at all (refused, timed out): a router restarting, or the wrong URL."""


class CompareFailed(RouterError):
    """`bluegreen compare` cannot run; the message says what to fix."""


class ProxyError(RouterError):
    """Trouble with one proxied request; the proxy turns it into an answer or a retry."""


class RequestRefused(ProxyError):
    """The router answers this request itself (413, 429)."""

    def __init__(self, status: int, reason: str, body: dict[str, Any],
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.body, self.headers = status, reason, body, headers or []


class ClientGone(ProxyError):
    """The client disconnected while its answer was being sent."""


class ConnectFailed(ProxyError):
    """No connection could be made to the backend."""


class ConnectionBroken(ProxyError):
    """The backend closed the connection or sent something that is not HTTP/1.1."""

    def __init__(self, message: str, before_response: bool = False) -> None:
        super().__init__(message)
        self.before_response = before_response


class UpstreamFailure(ProxyError):
    """A backend attempt that failed before its first body chunk; `response` is its answer, if any."""

    def __init__(self, kind: str, detail: str, status: int = 502, response: Any = None) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.status, self.response = kind, detail, status, response


class StreamBroken(ProxyError):
    """The backend stopped or went silent after the client already had part of the answer."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
