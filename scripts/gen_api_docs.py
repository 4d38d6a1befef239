"""Write docs/api.md from the two programs' own OpenAPI documents, so the reference cannot drift.

    .venv/bin/python scripts/gen_api_docs.py           # rewrite docs/api.md (`make docs`)
    .venv/bin/python scripts/gen_api_docs.py --check   # exit 1 when docs/api.md is stale

The documents come from the applications themselves, built in-process with default settings and
never started: the backend's, and the router's as `GET /openapi.json` serves it (its own routes,
plus the backend's public routes with what the proxy answers on its own).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "api.md"
METHODS = ("get", "put", "post", "patch", "delete")
SETTINGS_PREFIXES = ("BLUEGREEN_", "MODEL_BACKEND_")

Schema = dict[str, Any]


@contextmanager
def _default_settings() -> Iterator[None]:
    """Hide this shell's BLUEGREEN_* and MODEL_BACKEND_* variables: the reference shows the defaults."""
    hidden = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith(SETTINGS_PREFIXES)}
    try:
        yield
    finally:
        os.environ.update(hidden)


def backend_document() -> Schema:
    from model_backends.app import create_app
    from model_backends.config import BackendConfig

    with _default_settings():
        document: Schema = create_app(BackendConfig()).openapi()
    return document


def router_document(backend: Schema) -> Schema:
    from router.app import create_app
    from router.config import RouterConfig
    from router.openapi import with_public_routes

    with _default_settings(), tempfile.TemporaryDirectory() as scratch:
        config = RouterConfig(state_path=Path(scratch) / "state.db")
        dispatch = create_app(config)
        api = dispatch.api  # type: ignore[attr-defined]
        try:
            return with_public_routes(api.openapi(), backend, config.session_header)
        finally:
            api.state.store.close()


def documents() -> dict[str, Schema]:
    """Both HTTP APIs by program name: the OpenAPI documents the running programs serve."""
    backend = backend_document()
    return {"bluegreen serve": router_document(backend), "model-backend serve": backend}


# -- rendering ---------------------------------------------------------------------------------


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _anchor(program: str, name: str) -> str:
    return f"{program.split()[0]}-{name}".lower()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def type_of(schema: Schema, program: str) -> str:
    """A schema in one line: its type, with links to named schemas and the constraints that matter."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(program, name)})"
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return " or ".join(type_of(option, program) for option in schema[combinator])
    if "const" in schema:
        return f"`{json.dumps(schema['const'], ensure_ascii=False)}`"
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(value, ensure_ascii=False)}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if "contentSchema" in schema:  # a string that carries JSON (a server-sent event's data)
        return f"JSON {type_of(schema['contentSchema'], program)}"
    if kind == "object" and schema.get("properties"):  # an inline object: its fields, `?` when optional
        required = set(schema.get("required", []))
        fields = [f"{name}{'' if name in required else '?'}: {type_of(spec, program)}"
                  for name, spec in schema["properties"].items()]
        return "{" + ", ".join(fields) + "}"
    if kind == "array":
        text = f"list of {type_of(schema.get('items', {}), program)}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = f"map of string to {type_of(schema['additionalProperties'], program)}"
    else:
        text = str(kind)
    limits = [f"{word} {_number(schema[key])}" for key, word in
              (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"),
               ("minLength", "length ≥"), ("maxLength", "length ≤"), ("minItems", "items ≥"), ("maxItems", "items ≤"))
              if key in schema]
    if "pattern" in schema:
        limits.append(f"pattern `{schema['pattern']}`")
    return f"{text} ({', '.join(limits)})" if limits else text


def _description(schema: Schema) -> str:
    found = schema.get("description")
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found = found or option.get("description")
    return str(found or "")


def _schema_section(name: str, schema: Schema, program: str) -> list[str]:
    lines = [f'<a id="{_anchor(program, name)}"></a>', "", f"#### {name}", ""]
    if schema.get("description"):
        lines += [schema["description"].strip(), ""]
    if "enum" in schema:
        return [*lines, f"One of {type_of(schema, program)}.", ""]
    properties: dict[str, Schema] = schema.get("properties", {})
    if not properties:
        return [*lines, f"Type: {type_of(schema, program)}.", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | default | description |", "|---|---|---|---|---|"]
    for field, spec in properties.items():
        default = f"`{json.dumps(spec['default'], ensure_ascii=False)}`" if "default" in spec else ""
        lines.append(f"| `{field}` | {_cell(type_of(spec, program))} | {'yes' if field in required else ''} | "
                     f"{_cell(default)} | {_cell(_description(spec))} |")
    if schema.get("additionalProperties") is False:
        lines += ["", "Other fields are refused (422)."]
    return [*lines, ""]


def _operation(method: str, path: str, operation: Schema, program: str) -> list[str]:
    lines = [f"#### `{method.upper()} {path}`", ""]
    for key in ("summary", "description"):
        if operation.get(key):
            lines += [operation[key].strip(), ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        lines += [f"| `{p['name']}` | {p['in']} | {_cell(type_of(p.get('schema', {}), program))} | "
                  f"{'yes' if p.get('required') else ''} | {_cell(p.get('description', ''))} |" for p in parameters]
        lines.append("")
    body = operation.get("requestBody")
    if body:
        kinds = [f"{media}: {type_of(content.get('schema', {}), program)}" for media, content in body["content"].items()]
        lines += [f"Body{' (required)' if body.get('required') else ''}: {'; '.join(kinds)}", ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, answer in operation.get("responses", {}).items():
        contents = [f"{media}: {type_of(content.get('schema', {}), program)}"
                    for media, content in answer.get("content", {}).items()]
        headers = [f"header `{name}`" for name in answer.get("headers", {})]
        lines.append(f"| {status} | {_cell(answer.get('description', ''))} | {_cell('; '.join(contents + headers))} |")
    return [*lines, ""]


def render(docs: dict[str, Schema]) -> str:
    lines = ["# HTTP APIs", "",
             "<!-- Generated by scripts/gen_api_docs.py from the programs' OpenAPI documents: do not edit. "
             "`make docs` rewrites it; tests/unit/test_docs.py fails when it is stale. -->", "",
             "Both programs also serve their document live: `GET /openapi.json`, with Swagger UI at `/docs` "
             "and ReDoc at `/redoc`.", ""]
    lines += [f"- [`{program}`](#{program.split()[0]}) — {doc['info']['title']} {doc['info']['version']}"
              for program, doc in docs.items()]
    lines.append("")
    for program, doc in docs.items():
        lines += [f'<a id="{program.split()[0]}"></a>', "", f"## `{program}`: {doc['info']['title']}", ""]
        if doc["info"].get("description"):
            lines += [doc["info"]["description"].strip(), ""]
        operations = [(method, path, op) for path, item in doc["paths"].items()
                      for method, op in item.items() if method in METHODS]
        lines += ["| route | what |", "|---|---|"]
        lines += [f"| `{method.upper()} {path}` | {_cell(op.get('summary', ''))} |" for method, path, op in operations]
        lines += ["", "### Routes", ""]
        for method, path, op in operations:
            lines += _operation(method, path, op, program)
        schemas: dict[str, Schema] = doc.get("components", {}).get("schemas", {})
        if schemas:
            lines += ["### Schemas", ""]
            for name in sorted(schemas):
                lines += _schema_section(name, schemas[name], program)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/api.md differs from the APIs")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write [default: {OUT.relative_to(REPO)}]")
    args = parser.parse_args(argv)
    text = render(documents())
    if args.check:
        if not args.out.is_file() or args.out.read_text(encoding="utf-8") != text:
            print(f"{args.out} is stale: run `make docs` (scripts/gen_api_docs.py)", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
