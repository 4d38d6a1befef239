"""Which admin bodies are refused before they are read."""

from __future__ import annotations

import pytest

from router.admin.guard import ADMIN_MAX_BODY_BYTES, body_refusal, is_json_media_type


@pytest.mark.parametrize(("content_type", "json"), [
    ("application/json", True), ("Application/JSON; charset=utf-8", True), ("application/merge-patch+json", True),
    ("application/x-www-form-urlencoded", False), ("text/plain", False), ("text/json", False), ("", False),
])
def test_json_media_types(content_type: str, json: bool) -> None:
    assert is_json_media_type(content_type) is json


def test_refusals() -> None:
    assert body_refusal("application/json", 10) is None
    assert body_refusal(None, None) is None  # no type: the framework reads JSON
    assert body_refusal("text/plain", 0) is None  # an empty body has no type to speak of
    status, message = body_refusal("application/json", ADMIN_MAX_BODY_BYTES + 1) or (0, "")
    assert status == 413 and "64 KiB" in message
    status, message = body_refusal("application/x-www-form-urlencoded", 13) or (0, "")
    assert status == 415 and "-H 'Content-Type: application/json'" in message
    refusal = body_refusal("text/plain", ADMIN_MAX_BODY_BYTES + 1)
    assert refusal is not None and refusal[0] == 413  # the size is told first
