"""The router's OpenAPI document: its own admin and operations routes, plus the public routes it proxies.

The public routes (`/api/…`, `/v1/…`) belong to the backends, so their entries are taken from the
stable colour's own `/openapi.json` when the document is asked for: they describe exactly what that
backend validates, plus what the proxy answers on its own (400/401/403 for a refused pin, 413, 429,
502, 504), the session header and the QA pin header.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from bluegreen_common.http_errors import ErrorEnvelope
from router.weights import Colour

PUBLIC_PREFIXES = ("/api/", "/v1/")  # the paths the router hands to its proxy
FETCH_TIMEOUT_S = 2.0
PUBLIC_TAG = "public (proxied to blue or green)"

_ENVELOPE = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ErrorEnvelope.__name__}"}}}
PROXY_RESPONSES: dict[str, dict[str, Any]] = {
    "400": {"description": "X-Bluegreen-Pin names no colour", "content": _ENVELOPE},
    "401": {"description": "X-Bluegreen-Pin without a bearer token", "content": _ENVELOPE,
            "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}},
    "403": {"description": "X-Bluegreen-Pin with a token that is not the router's admin token", "content": _ENVELOPE},
    "413": {"description": "the body is over the router's size limit", "content": _ENVELOPE},
    "429": {"description": "the user's tier has spent its hourly requests", "content": _ENVELOPE,
            "headers": {"Retry-After": {"description": "seconds until a request is allowed again", "required": True,
                                        "schema": {"type": "integer", "minimum": 1}}}},
    "502": {"description": "the router could not reach the backend, or it broke off before answering",
            "content": _ENVELOPE},
    "504": {"description": "the backend sent no first byte within the router's timeout", "content": _ENVELOPE},
}

docs = APIRouter(include_in_schema=False)


def _session_parameter(header: str) -> dict[str, Any]:
    return {"name": header, "in": "header", "required": False, "schema": {"type": "string"},
            "description": "session key: the same key keeps the same colour (else the router's cookie)"}


def _pin_parameter() -> dict[str, Any]:
    return {"name": "X-Bluegreen-Pin", "in": "header", "required": False,
            "schema": {"type": "string", "enum": [c.value for c in Colour]},
            "description": "QA: ask this colour whatever the weights; honoured only with the admin token in "
                           "`Authorization: Bearer …`, which then goes no further than the router"}


def _renamed_refs(node: Any, renames: dict[str, str]) -> Any:
    """`node` with `$ref`s to renamed component schemas pointing at their new names."""
    if not renames:
        return node
    text = json.dumps(node)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    return json.loads(text)


def _proxied(operation: dict[str, Any], session_header: str) -> dict[str, Any]:
    """A backend operation as the router serves it: its answers, the proxy's own, and the session header."""
    responses = operation.setdefault("responses", {})
    for status, answer in PROXY_RESPONSES.items():
        theirs = responses.get(status)
        if theirs is None:
            responses[status] = copy.deepcopy(answer)
        else:  # the same envelope from either side
            responses[status] = {**theirs, "description": f"backend: {theirs.get('description', '')}; "
                                                          f"router: {answer['description']}"}
    operation["parameters"] = [*operation.get("parameters", []), _session_parameter(session_header), _pin_parameter()]
    operation["tags"] = [PUBLIC_TAG]
    return operation


SCHEMA_REF = "#/components/schemas/"


def _refs(node: Any) -> set[str]:
    """The component schema names `node` points at with `$ref`, at any depth."""
    if isinstance(node, dict):
        found = {ref[len(SCHEMA_REF):] for key, ref in node.items()
                 if key == "$ref" and isinstance(ref, str) and ref.startswith(SCHEMA_REF)}
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


def reachable_schemas(roots: Any, schemas: dict[str, Any]) -> set[str]:
    """The names in `schemas` that `roots` uses, directly or through other schemas (cycles included)."""
    seen: set[str] = set()
    pending = _refs(roots)
    while pending:
        name = pending.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        pending |= _refs(schemas[name]) - seen
    return seen


def with_public_routes(own: dict[str, Any], backend: dict[str, Any], session_header: str) -> dict[str, Any]:
    """`own` (the router's document) with the backend's public paths and only the schemas they use: the
    backend's admin and internal schemas stay out of the router's document."""
    merged = copy.deepcopy(own)
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    public = {path: operations for path, operations in backend.get("paths", {}).items()
              if path.startswith(PUBLIC_PREFIXES)}
    theirs: dict[str, Any] = backend.get("components", {}).get("schemas", {})
    used = reachable_schemas(public, theirs)
    renames = {name: f"backend_{name}" for name in used if name in schemas and schemas[name] != theirs[name]}
    for name in sorted(used):
        schemas[renames.get(name, name)] = _renamed_refs(theirs[name], renames)
    for path, operations in public.items():
        merged["paths"][path] = {method: _proxied(_renamed_refs(op, renames), session_header)
                                 for method, op in operations.items()}
    return merged


async def backend_document(urls: list[str]) -> dict[str, Any] | None:
    """The first of `urls` that serves its OpenAPI document, or None when none does."""
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S) as client:
        for url in urls:
            try:
                response = await client.get(f"{url.rstrip('/')}/openapi.json")
                if response.status_code == 200:
                    document: dict[str, Any] = response.json()
                    return document
            except (httpx.HTTPError, ValueError):
                continue
    return None


@docs.get("/openapi.json")
async def openapi_document(request: Request) -> JSONResponse:
    app: FastAPI = request.app
    state = app.state
    stable: Colour = state.traffic.stable
    backend = await backend_document([state.config.backend_url(c.value) for c in (stable, stable.other)])
    own = app.openapi()
    if backend is None:
        own = copy.deepcopy(own)
        own["info"]["description"] += ("\n\nThe public routes are missing here: no backend served its "
                                       "`/openapi.json` just now.")
        return JSONResponse(own)
    return JSONResponse(with_public_routes(own, backend, state.config.session_header))


@docs.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - Swagger UI")


@docs.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title=f"{request.app.title} - ReDoc")
