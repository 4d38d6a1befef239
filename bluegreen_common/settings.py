"""Layered configuration: defaults < YAML file < environment < command-line flags.

Shared by every program in the distribution so each reads its settings the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, YamlConfigSettingsSource

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class ConfigError(ValueError):
    """The configuration file or a setting is invalid; the message says which and why."""


def describe_yaml_error(path: Path, exc: yaml.YAMLError, text: str | None = None) -> str:
    """`config file PATH is not valid YAML at line L, column C: what the parser expected`, on one line.

    yaml's own text names the input "<unicode string>" (it was given the text, not the file) and quotes
    the offending lines with a caret under them; the file, line and column say it better.
    """
    where, what = "", " ".join(str(exc).split())
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        what = ", ".join(str(part) for part in (exc.context, exc.problem) if part) or what
    elif isinstance(exc, yaml.reader.ReaderError) and text is not None:
        line, line_start = text.count("\n", 0, exc.position) + 1, text.rfind("\n", 0, exc.position) + 1
        where = f" at line {line}, column {exc.position - line_start + 1}"
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or " ")
        what = f"character #x{code:04x}: {exc.reason}"
    return f"config file {path} is not valid YAML{where}: {what}"


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read as UTF-8 text: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(describe_yaml_error(path, exc, text)) from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")


def describe_validation_error(exc: ValidationError) -> str:
    """One line per wrong setting: `where: what is wrong`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in exc.errors()
    )


def load_settings(cls: type[SettingsT], config_file: Path | None, **flags: Any) -> SettingsT:
    """Build `cls` from a YAML file, the environment and the flags that were actually given."""
    given = {k: v for k, v in flags.items() if v is not None}
    if config_file is not None:
        _check_file(config_file)

    class _Layered(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls_, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if config_file is not None:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
            return tuple(sources)

    try:
        layered = _Layered(**given)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc
    return cls.model_validate(layered.model_dump())
