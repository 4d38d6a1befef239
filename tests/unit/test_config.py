"""Router settings: the example file documents exactly the defaults."""

from __future__ import annotations

from pathlib import Path

from bluegreen_common.settings import load_settings
from router.config import RouterConfig

REPO = Path(__file__).resolve().parents[2]


def test_example_config_is_the_defaults() -> None:
    assert load_settings(RouterConfig, REPO / "bluegreen.example.yaml").model_dump() == RouterConfig().model_dump()
