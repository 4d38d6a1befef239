"""Which key a request's session is: header, then the router's cookie."""

from __future__ import annotations

from router.proxy.session import cookie_value, session_key


def test_session_key_precedence() -> None:
    assert session_key(b"s-1", b"bg_sid=c-1", b"bg_sid").key == "s-1"
    assert session_key(None, b"theme=dark; bg_sid=c-1", b"bg_sid") .key == "c-1"
    assert session_key(b"", b"other=1", b"bg_sid").is_new
    assert cookie_value(b'a=1; bg_sid="q"', b"bg_sid") == "q"
    assert cookie_value(b"bg_sidx=1", b"bg_sid") is None
