"""One error envelope for every HTTP answer of both programs: OpenAI's, so SDK clients show the message.

The envelope is also a schema (`ErrorEnvelope`), so each route's OpenAPI entry names the statuses it
can answer and what their bodies look like (`error_responses`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

# The envelope's `type` for the statuses the frameworks answer on their own (unknown path, wrong
# method, an unreadable body) and for the admin API's refusals.
ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    405: "invalid_request_error", 409: "conflict_error", 413: "request_too_large", 415: "invalid_request_error",
    422: "invalid_request_error", 429: "rate_limit_exceeded", 503: "unavailable",
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(BaseModel):
    """Every error body: `{"error": {"message", "type", "param", "code"}}`."""

    error: ErrorDetail


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI-style error envelope, so SDK clients surface the message as is."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_responses(descriptions: Mapping[int | str, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error statuses: each one's description, with the envelope as its JSON body."""
    return {status: {"model": ErrorEnvelope, "description": text} for status, text in descriptions.items()}


def field_errors(exc: RequestValidationError) -> tuple[str, str | None]:
    """`field: problem` for each invalid field, and the first field's name for `param`."""
    parts, first = [], None
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if p != "body"]
        field = ".".join(loc) or "body"
        first = first or field
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field; remove it"
        elif err["type"] == "missing":
            message = "required field is missing"
        parts.append(f"{field}: {message}")
    return "; ".join(parts), first


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each wrong field, in the error envelope."""
    assert isinstance(exc, RequestValidationError)
    message, param = field_errors(exc)
    return JSONResponse(error_body(message, "invalid_request_error", param=param), status_code=422)


def allowed_methods(openapi: dict[str, Any], path: str) -> list[str]:
    """The methods the OpenAPI schema lists for `path`, all of them, whichever route the framework matched."""
    for template, operations in openapi.get("paths", {}).items():
        parts = re.split(r"(\{[^/}]+\})", template)
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        if re.fullmatch(pattern, path):
            return sorted(method.upper() for method in operations)
    return []


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Refusals raised as `HTTPException` (and the framework's 404/405/400) in the same envelope.

    A 405's `Allow` names every method of the path: the framework's own names only the first route it matched.
    """
    assert isinstance(exc, HTTPException)
    type_ = ERROR_TYPES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "invalid_request_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        methods = allowed_methods(request.app.openapi(), request.url.path)
        if methods:
            headers["Allow"] = ", ".join(methods)
    return JSONResponse(error_body(str(exc.detail), type_), status_code=exc.status_code, headers=headers)
