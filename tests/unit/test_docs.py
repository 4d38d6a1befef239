"""The guide matches the code: every command, setting and route that README.md and docs/ name
exists, docs/api.md is what scripts/gen_api_docs.py makes, and the rollout diagram has the
state machine's phases.

What exists is asked of the programs themselves (the typer apps, the settings models, the
FastAPI apps' routing), never listed here.
"""

from __future__ import annotations

import re
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, Union

import pytest
import typer.main
from pydantic import BaseModel
from starlette.routing import Match

from model_backends.cli import app as backend_cli
from model_backends.config import BackendConfig
from router.admin.cli import app as router_cli
from router.config import RouterConfig
from router.rollout.machine import Phase
from scripts import gen_api_docs

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PROGRAMS = {"bluegreen": router_cli, "model-backend": backend_cli}
SETTINGS: tuple[type[BaseModel], ...] = (RouterConfig, BackendConfig)
ENV_PREFIXES = {"BLUEGREEN_": RouterConfig, "MODEL_BACKEND_": BackendConfig}
FILE_SUFFIXES = {"py", "md", "yaml", "yml", "json", "jsonl", "toml", "conf", "j2", "db", "gguf", "sh", "txt", "html",
                 "tsv", "whl", "service", "cfg", "ini", "pid", "log", "previous"}
METHODS = r"GET|POST|PUT|PATCH|DELETE"
SHELL_BREAKS = {"|", "||", "&&", ";", "#", ">", ">>", "2>&1", "\\"}


# -- what the docs say -------------------------------------------------------------------------


def code_of(text: str) -> tuple[list[str], list[str]]:
    """Inline code spans (outside fences, joined across line breaks) and the lines of fenced blocks."""
    prose, fenced, fence = [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        elif fence:
            fenced.append(line)
        else:
            prose.append(line)
    spans = [span.replace("\n", " ").strip() for span in re.findall(r"`([^`]+)`", "\n".join(prose))]
    return spans, fenced


# -- commands ----------------------------------------------------------------------------------


@cache
def commands() -> dict[str, Any]:
    """The programs' command trees (typer's own click: groups have `commands`, commands `params`)."""
    return {name: typer.main.get_command(app) for name, app in PROGRAMS.items()}


def _subcommands(command: Any) -> dict[str, Any]:
    return dict(getattr(command, "commands", {}))


def _options(command: Any) -> set[str]:
    return {"--help", *(opt for p in command.params for opt in [*p.opts, *p.secondary_opts])}


def cli_problems(code: str) -> list[str]:
    """Each `bluegreen …` / `model-backend …` invocation in `code` that names a missing command or option."""
    tokens = re.sub(r"(^|\s)#.*", "", code).split()  # not the words of a shell comment
    problems = []
    for at, token in enumerate(tokens):
        program = token.rsplit("/", 1)[-1]
        if program not in PROGRAMS or (at and tokens[at - 1] in ("-n", "--namespace")):
            continue
        command, path = commands()[program], [program]
        for word in tokens[at + 1:]:
            word = word.strip("[](),.")
            if word in SHELL_BREAKS or word.startswith(("#", "$(")):
                break
            if _subcommands(command) and re.fullmatch(r"[a-z][a-z-]*", word):
                if word not in _subcommands(command):
                    problems.append(f"`{' '.join(path)} {word}`: no such command")
                    break
                command, path = _subcommands(command)[word], [*path, word]
            elif word.startswith("--") and word.split("=", 1)[0] not in _options(command):
                problems.append(f"`{' '.join(path)}` has no option {word.split('=', 1)[0]}")
    return problems


# -- settings ----------------------------------------------------------------------------------


def _resolves(annotation: Any, parts: list[str]) -> bool:
    """Whether the dotted `parts` lead somewhere inside a settings type."""
    if not parts:
        return True
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_resolves(arg, parts) for arg in typing.get_args(annotation) if arg is not type(None))
    if origin is list:
        return _resolves(typing.get_args(annotation)[0], parts)
    if origin is dict:
        return _resolves(typing.get_args(annotation)[1], parts[1:])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(parts[0])
        return field is not None and _resolves(field.annotation, parts[1:])
    return False


def setting_problems(span: str) -> list[str]:
    """A span like `rollout.keep_old_s` or `runtime.kind: none` that names no setting of either program."""
    found = re.fullmatch(r"([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?::\s.*)?", span)
    if found is None:
        return []
    parts = found.group(1).split(".")
    if parts[-1] in FILE_SUFFIXES or not any(parts[0] in cls.model_fields for cls in SETTINGS):
        return []  # a file name or a module path, not a setting
    if any(_resolves(cls, parts) for cls in SETTINGS):
        return []
    return [f"`{found.group(1)}`: no such setting in RouterConfig or BackendConfig"]


@cache
def other_variables() -> set[str]:
    """Variables named BLUEGREEN_… that are not settings: the CLI's own and the compose files'."""
    names = {p.envvar for cmd in commands().values() for p in _walk_params(cmd) if isinstance(p.envvar, str)}
    for compose in (REPO / "compose").glob("*.yml"):
        names |= set(re.findall(r"\$\{(\w+)", compose.read_text()))
    return names


def _walk_params(command: Any) -> list[Any]:
    return [*command.params, *(p for sub in _subcommands(command).values() for p in _walk_params(sub))]


def variable_problems(code: str) -> list[str]:
    problems = []
    for prefix, name in re.findall(r"\b(BLUEGREEN_|MODEL_BACKEND_)([A-Z0-9_]+)\b", code):
        if prefix + name in other_variables():
            continue
        if not _resolves(ENV_PREFIXES[prefix], name.lower().split("__")):
            problems.append(f"${prefix}{name}: no such setting")
    return problems


# -- routes ------------------------------------------------------------------------------------


@cache
def apps() -> list[Any]:
    """Both programs' FastAPI apps, built with default settings and never started."""
    import tempfile

    from model_backends.app import create_app as create_backend
    from router.app import create_app as create_router

    scratch = tempfile.mkdtemp(prefix="docs-test-")
    return [create_backend(BackendConfig()), create_router(RouterConfig(state_path=Path(scratch) / "state.db")).api]


def served(method: str | None, path: str) -> bool:
    scope = {"type": "http", "path": path, "method": method or "GET", "root_path": "", "headers": [],
             "query_string": b""}
    matches = [route.matches(scope)[0] for app in apps() for route in app.router.routes]
    return Match.FULL in matches or (method is None and Match.PARTIAL in matches)


@cache
def documented_paths() -> set[str]:
    return {path for document in gen_api_docs.documents().values() for path in document["paths"]}


@cache
def route_roots() -> set[str]:
    """First path segments the programs serve (`admin`, `api`, `v1`, `ready`, …)."""
    return {"openapi.json", "docs", "redoc"} | {path.strip("/").split("/")[0] for path in documented_paths()}


def _normal(path: str) -> str:
    path = re.sub(r"\{[^}]*\}", "x", path.split("?", 1)[0]).rstrip(".,:;)")
    return path if path == "/" else path.rstrip("/")


def route_problems(code: str) -> list[str]:
    claims: list[tuple[str | None, str]] = [(m, p) for m, p in re.findall(rf"\b({METHODS})\s+(/[^\s`'\"]*)", code)]
    claims += [(None, p) for p in re.findall(r"(?:https?://|localhost)[^/\s`'\"]*(/[^\s`'\"]*)", code)]
    if re.fullmatch(r"/[\w.{}|?=&/-]*", code.strip()):
        claims.append((None, code.strip()))
    problems = []
    for method, raw in claims:
        path = _normal(raw)
        family = method is None and any(known.startswith(path + "/") for known in documented_paths())
        if path.strip("/").split("/")[0] in route_roots() and not served(method, path) and not family:
            problems.append(f"`{(method or '') + ' ' + raw if method else raw}`: no such route")
    return problems


def doc_problems(text: str) -> list[str]:
    spans, fenced = code_of(text)
    problems = []
    for code in [*spans, *fenced]:
        problems += cli_problems(code) + variable_problems(code) + route_problems(code)
    for span in spans:
        problems += setting_problems(span)
    return problems


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_command_setting_and_route_named_exists(doc: Path) -> None:
    problems = doc_problems(doc.read_text(encoding="utf-8"))
    assert not problems, f"{doc.relative_to(REPO)} names what does not exist:\n" + "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_lead_to_files(doc: Path) -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8"))
    missing = [t for t in targets if "://" not in t and not t.startswith("mailto:") and not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(REPO)} links to missing files: {missing}"


def test_the_checks_catch_what_does_not_exist() -> None:
    assert cli_problems("bluegreen frobnicate") and cli_problems(".venv/bin/bluegreen cutover --nope")
    assert cli_problems("bluegreen weights sett 25") and cli_problems("model-backend serve --engin x")
    assert not cli_problems("bluegreen weights set 25 --reason drill && bluegreen status --json | jq .")
    assert not cli_problems("kubectl -n bluegreen get pods")
    assert setting_problems("rollout.keep_old") and setting_problems("nginx.listen_port: 80")
    assert not setting_problems("runtime.green.resources.gpus") and not setting_problems("rate_limit.tiers.free")
    assert not setting_problems("transformers.max_memory") and not setting_problems("nginx.conf")
    assert variable_problems("BLUEGREEN_ROLLOUT__KEEP_OLD") and not variable_problems("BLUEGREEN_ROLLOUT__KEEP_OLD_S=1")
    assert not variable_problems("MODEL_BACKEND_TRANSFORMERS__QUANTIZATION=8bit BLUEGREEN_ROUTER=http://x")
    assert route_problems("POST /admin/weights") and route_problems("curl localhost:8080/admin/nope")
    assert not route_problems("POST /admin/rollout/{pause|resume}") and not route_problems("/v1/chat/completions")
    assert not route_problems("GET /admin/events?since=ID") and not route_problems("/nginx-health")
    assert not route_problems("/admin") and route_problems("GET /admin") and route_problems("/admin/nope/")


def test_the_rollout_diagram_has_the_state_machine_s_phases() -> None:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    diagrams = re.findall(r"```mermaid\n(stateDiagram-v2\n.*?)```", text, re.S)
    assert len(diagrams) == 1, "docs/architecture.md has one Mermaid stateDiagram-v2 of the rollout"
    states = set(re.findall(r"(\w+)\s*-->", diagrams[0])) | set(re.findall(r"-->\s*(\w+)", diagrams[0]))
    assert states == {phase.value for phase in Phase}


def test_api_reference_is_generated_from_the_openapi_documents() -> None:
    expected = gen_api_docs.render(gen_api_docs.documents())
    assert gen_api_docs.OUT.read_text(encoding="utf-8") == expected, "docs/api.md is stale: run `make docs`"
