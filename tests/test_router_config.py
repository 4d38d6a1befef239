"""Router settings: the example file documents the defaults, and bad settings stop the start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from model_backends.settings_loader import load_settings
from router.config import RouterConfig

REPO = Path(__file__).resolve().parents[1]


def test_example_config_is_the_defaults() -> None:
    assert load_settings(RouterConfig, REPO / "bluegreen.example.yaml").model_dump() == RouterConfig().model_dump()


def test_bad_settings_exit_2_naming_each(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("initial_green_weight: 12.345\nblue: {url: ftp://x}\nretries: 3\n")
    done = subprocess.run([sys.executable, "-m", "router.cli", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    for part in ("initial_green_weight", "more than two decimals", "blue.url", "http://", "retries"):
        assert part in message, message
