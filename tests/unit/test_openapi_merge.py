"""The router's OpenAPI merge takes only the backend schemas its public paths use."""

from __future__ import annotations

from typing import Any

from router.openapi import reachable_schemas, with_public_routes


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(name)}}}


OWN: dict[str, Any] = {"paths": {"/admin/status": {"get": {"responses": {}}}},
                       "components": {"schemas": {"Status": {"type": "object"}, "Message": {"type": "object"}}}}
BACKEND: dict[str, Any] = {
    "paths": {
        "/v1/chat": {"post": {"requestBody": _body("ChatRequest"), "responses": {"200": _body("ChatAnswer")}}},
        "/internal/reload": {"post": {"requestBody": _body("ReloadRequest"), "responses": {}}},
    },
    "components": {"schemas": {
        "ChatRequest": {"type": "object", "properties": {"messages": {"type": "array", "items": _ref("Message")}}},
        "Message": {"type": "object", "properties": {"role": {"type": "string"}}},
        "ChatAnswer": {"type": "object", "properties": {"next": {"anyOf": [_ref("ChatAnswer"), {"type": "null"}]}}},
        "ReloadRequest": {"type": "object", "properties": {"options": _ref("ReloadOptions")}},
        "ReloadOptions": {"type": "object"},
    }},
}


def test_reachable_follows_refs_through_schemas_and_cycles() -> None:
    schemas = BACKEND["components"]["schemas"]
    assert reachable_schemas(BACKEND["paths"]["/v1/chat"], schemas) == {"ChatRequest", "Message", "ChatAnswer"}
    assert reachable_schemas(BACKEND["paths"]["/internal/reload"], schemas) == {"ReloadRequest", "ReloadOptions"}
    assert reachable_schemas({"schema": _ref("Missing")}, schemas) == set()


def test_merge_copies_only_the_schemas_public_paths_use() -> None:
    merged = with_public_routes(OWN, BACKEND, "X-Session")
    assert set(merged["paths"]) == {"/admin/status", "/v1/chat"}
    names = set(merged["components"]["schemas"])
    assert {"ChatRequest", "ChatAnswer", "Status"} <= names
    assert "ReloadRequest" not in names and "ReloadOptions" not in names


def test_merge_renames_a_used_schema_that_clashes_with_the_routers_own() -> None:
    merged = with_public_routes(OWN, BACKEND, "X-Session")
    schemas = merged["components"]["schemas"]
    assert schemas["Message"] == {"type": "object"}  # the router's own stays as it was
    assert schemas["backend_Message"] == BACKEND["components"]["schemas"]["Message"]
    items = schemas["ChatRequest"]["properties"]["messages"]["items"]
    assert items == _ref("backend_Message")
