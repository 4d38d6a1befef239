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


# How pydantic-core names a union's members in `loc` (`int | str` fails at ('x', 'int') and ('x', 'str')):
# its validator names, hyphenated (`constrained-float`, `multi-host-url`) or with their arguments in brackets
# (`list[int]`, `function-after[f(), int]`, `literal['a','b']`, `enum[Colour]`), one of the bare names of its
# scalar validators (`int`, `none`), or a model's class name (`CatBody`). Labels a model gives its members
# itself (`Tag("text")`, `Tag("list")` in model_backends/schemas.py) are words it chose to show: they stay.
# No body here has free-form keys; a hyphenated lowercase key of a dict body would be taken for a name.
_CORE_NAME = re.compile(r"[a-z]+(?:-[a-z]+)+|[a-z][a-z-]*\[.*\]", re.DOTALL)
_BARE_NAME = re.compile(r"none|int|float|str|bool|bytes|date|time|datetime|timedelta|decimal|uuid|url|any|callable"
                        r"|complex|json|[A-Z][A-Za-z0-9_]*")


def _union_tags(errors: list[dict[str, Any]]) -> set[tuple[int, int]]:
    """(error index, loc position) of each loc part that names a union member rather than a field.

    A hyphenated or bracketed core name is one whatever the context. A bare one (`int`, `none`, `CatBody`)
    could also be a field or a key, so it counts only beside a sibling: another error with the same loc
    before it, the same input, another member's name in its place, and another way of failing (members
    fail differently, `less_than_equal` beside `none_required`; two missing fields `url` and `time` fail
    alike). Only a body has members to fold: a header's or a query parameter's name stays as it is.
    """
    tags: set[tuple[int, int]] = set()
    for i, err in enumerate(errors):
        loc = err["loc"]
        if not loc or loc[0] != "body":  # a header's or a query parameter's name is only ever a name
            continue
        for pos, part in enumerate(loc):
            if not isinstance(part, str) or pos == 0:
                continue
            if _CORE_NAME.fullmatch(part):
                tags.add((i, pos))
            elif _BARE_NAME.fullmatch(part) and any(
                    j != i and len(other["loc"]) > pos and tuple(other["loc"][:pos]) == tuple(loc[:pos])
                    and isinstance(other["loc"][pos], str) and other["loc"][pos] != part
                    and (_CORE_NAME.fullmatch(other["loc"][pos]) or _BARE_NAME.fullmatch(other["loc"][pos]))
                    and _same(other.get("input"), err.get("input")) and other.get("type") != err.get("type")
                    for j, other in enumerate(errors)):
                tags.add((i, pos))
    return tags


def _same(a: Any, b: Any) -> bool:
    """Equal inputs, NaN included (`{"green": NaN}` fails every member with the same NaN)."""
    return a is b or a == b


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field; remove it"
    if err["type"] == "missing":
        return "required field is missing"
    return str(err["msg"])


def _position(body: Any, where: int) -> str:
    """Where the decoder stopped, counted from 1: its line and column in the body, or its character."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not isinstance(text, str) or where > len(text):
        return f", at character {where + 1}"
    line, column = text.count("\n", 0, where) + 1, where - text.rfind("\n", 0, where)
    return f", at line {line}, column {column}"


def field_errors(exc: RequestValidationError) -> tuple[str, str | None]:
    """`field: problem` for each invalid field, and the first field's name for `param`.

    A body that is not JSON at all is said so, with the decoder's words and where it stopped. A union's
    failed members are folded into their field: `green` is a number from 0 to 100 or absent, so
    `{"green": 101}` reads "green: Input should be less than or equal to 100", not one line per member
    (`green.constrained-float: ...; green.none: Input should be None`).
    """
    errors = list(exc.errors())
    for err in errors:
        if err["type"] == "json_invalid":
            where = err["loc"][-1] if err["loc"] and isinstance(err["loc"][-1], int) else None
            reason = str((err.get("ctx") or {}).get("error") or err["msg"])
            at = _position(exc.body, where) if where is not None else ""
            return f"the body is not valid JSON ({reason}{at})", "body"
    tags = _union_tags(errors)
    found: list[tuple[str, str, bool]] = []  # field, message, is a union's `None` alternative
    for i, err in enumerate(errors):
        loc = [str(p) for pos, p in enumerate(err["loc"]) if (i, pos) not in tags and not (pos == 0 and p == "body")]
        folded = any(index == i for index, _ in tags)
        found.append((".".join(loc) or "body", _message(err), folded and err["type"] == "none_required"))
    # `X | None` where neither fits: "should be None" is the alternative nobody meant, once another is said.
    said = {field for field, _, is_none in found if not is_none}
    messages: dict[str, list[str]] = {}
    for field, message, is_none in found:
        if is_none and field in said:
            continue
        if message not in messages.setdefault(field, []):
            messages[field].append(message)
    parts = [f"{field}: {', or '.join(texts)}" for field, texts in messages.items()]
    return "; ".join(parts), next(iter(messages), None)


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
