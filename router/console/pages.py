"""Serves the console's and the test page's HTML and their assets, shipped in the package.

The pages are plain files: they read and act only through the admin API and the public API, so they
add nothing to the proxy's path. Their JavaScript lives in files, never inline, so a strict
Content-Security-Policy holds: a backend's text that reaches the page can never run as script.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8"}
# Same origin only, nothing inline, nothing framed: the pages talk to this router and nothing else.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
ASSETS = frozenset(path.name for path in STATIC.iterdir() if path.suffix in CONTENT_TYPES and path.suffix != ".html")

pages = APIRouter(include_in_schema=False)


def render(page: str, token_configured: bool, analytics: bool) -> str:
    """The page's HTML, told whether the router has an admin token (then reads need it too) and
    whether it keeps usage analytics (else the page never asks for them)."""
    html = (STATIC / page).read_text(encoding="utf-8")
    return (html.replace("{{admin_token}}", "configured" if token_configured else "absent")
            .replace("{{analytics}}", "on" if analytics else "off"))


def _page(request: Request, page: str) -> HTMLResponse:
    config = request.app.state.config
    return HTMLResponse(render(page, config.admin_token is not None, config.analytics.enabled), headers=SECURITY_HEADERS)



@pages.get("/console")
async def console(request: Request) -> HTMLResponse:
    return _page(request, "console.html")


@pages.get("/try")
async def try_page(request: Request) -> HTMLResponse:
    return _page(request, "try.html")


@pages.get("/console/static/{name}")
async def asset(name: str) -> FileResponse:
    """One of the shipped assets, by exact name (a fixed set: no path ever reaches the file system)."""
    if name not in ASSETS:
        raise HTTPException(404, f"no console asset {name!r}")
    path = STATIC / name
    return FileResponse(path, media_type=CONTENT_TYPES[path.suffix], headers=SECURITY_HEADERS)
