"""The `bluegreen` program as operators and scripts run it: exit codes and the words that go with them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_bad_settings_exit_2_naming_each(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("initial_green_weight: 12.345\nblue: {url: ftp://x}\nretries: 3\n")
    done = subprocess.run([sys.executable, "-m", "router.admin.cli", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    for part in ("initial_green_weight", "more than two decimals", "blue.url", "http://", "retries"):
        assert part in message, message
