"""The console's pages and assets as the router serves them, and the QA pin's decision."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from router.config import RouterConfig
from router.console.pages import ASSETS, CSP, STATIC, pages
from router.proxy.routing import PinRefusal, pinned_colour
from router.weights import Colour

TOKEN = b"s3cret"


def client(token: str | None) -> TestClient:
    app = FastAPI()
    app.state.config = RouterConfig(state_path=Path("unused.db"), admin_token=SecretStr(token) if token else None)
    app.include_router(pages)
    return TestClient(app)


@pytest.mark.parametrize("token", [None, "s3cret"])
@pytest.mark.parametrize("path", ["/console", "/try"])
def test_pages_say_whether_reads_need_the_token_and_carry_a_strict_csp(path: str, token: str | None) -> None:
    response = client(token).get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP and "script-src 'self'" in CSP
    assert "'unsafe-inline'" not in CSP
    assert f'data-admin-token="{"configured" if token else "absent"}"' in response.text
    assert "{{" not in response.text
    assert '<meta name="viewport"' in response.text


def test_pages_have_no_inline_script_or_style_and_load_only_shipped_assets() -> None:
    for page in STATIC.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), f"{page.name}: inline script"
        assert not re.search(r"\sstyle=|\son[a-z]+=", html), f"{page.name}: inline style or handler"
        for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert asset.startswith("/console/static/") and asset.rsplit("/", 1)[1] in ASSETS, asset


def test_scripts_never_parse_data_as_html() -> None:
    for script in STATIC.glob("*.js"):
        code = script.read_text()
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", code), script.name


def test_assets_are_served_by_exact_name_only() -> None:
    served = client(None)
    script = served.get("/console/static/console.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert served.get("/console/static/style.css").headers["content-type"].startswith("text/css")
    for missing in ("/console/static/console.html", "/console/static/nope.js", "/console/static/..%2Fpages.py"):
        assert served.get(missing).status_code == 404, missing


@pytest.mark.parametrize(("pin", "authorization", "token", "expected"), [
    (b"green", b"Bearer s3cret", TOKEN, Colour.green),
    (b" Blue ", b"bearer s3cret", TOKEN, Colour.blue),
    (b"green", None, TOKEN, 401),
    (b"green", b"Basic s3cret", TOKEN, 401),
    (b"green", b"Bearer ", TOKEN, 401),
    (b"green", b"Bearer s3cre", TOKEN, 403),
    (b"green", b"Bearer s3cret", None, 403),  # no token configured: nobody may pin
    (b"purple", b"Bearer s3cret", TOKEN, 400),
    (b"", b"Bearer s3cret", TOKEN, 400),
])
def test_a_colour_is_pinned_only_with_the_admin_token(pin: bytes, authorization: bytes | None, token: bytes | None,
                                                      expected: Colour | int) -> None:
    verdict = pinned_colour(pin, authorization, token)
    if isinstance(expected, Colour):
        assert verdict is expected
    else:
        assert isinstance(verdict, PinRefusal) and verdict.status == expected and "X-Bluegreen-Pin" in verdict.message


def test_a_wrong_token_is_refused_before_the_colour_is_read() -> None:
    """A caller without the token learns nothing about which values are accepted."""
    verdict = pinned_colour(b"purple", b"Bearer nope", TOKEN)
    assert isinstance(verdict, PinRefusal) and verdict.status == 403
