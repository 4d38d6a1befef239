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


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
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
