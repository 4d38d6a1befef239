"""Session keys: `X-Session-ID`, else the router's cookie, else a new cookie for the client.

Pure functions over raw ASGI headers, so the hot path does no header-object building.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class SessionKey:
    key: str
    source: str  # "header" | "cookie" | "new"

    @property
    def is_new(self) -> bool:
        return self.source == "new"


def cookie_value(cookie_header: bytes, name: bytes) -> str | None:
    """The value of cookie `name` in a `Cookie:` header, or None."""
    for part in cookie_header.split(b";"):
        key, sep, value = part.strip().partition(b"=")
        if sep and key == name:
            return value.strip(b'"').decode("latin-1") or None
    return None


def session_key(header_value: bytes | None, cookie_header: bytes | None, cookie_name: bytes) -> SessionKey:
    if header_value:
        return SessionKey(header_value.decode("latin-1"), "header")
    if cookie_header:
        found = cookie_value(cookie_header, cookie_name)
        if found:
            return SessionKey(found, "cookie")
    return SessionKey(os.urandom(16).hex(), "new")


def set_cookie_header(name: str, value: str, max_age_s: int) -> tuple[bytes, bytes]:
    return (b"set-cookie", f"{name}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Lax".encode("latin-1"))
