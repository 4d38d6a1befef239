"""The `bluegreen` program as operators and scripts run it: exit codes and the words that go with them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bluegreen_common.processes import free_port


def test_bad_settings_exit_2_naming_each(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("initial_green_weight: 12.345\nblue: {url: ftp://x}\nretries: 3\n"
                      "session_header: 'X-Session; evil'\nsession_cookie: bg-sid\n")
    done = subprocess.run([sys.executable, "-m", "router.admin.cli", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    for part in ("initial_green_weight", "more than two decimals", "blue.url", "http://", "retries",
                 "session_header must be letters", "session_cookie must be letters"):
        assert part in message, message


def _bluegreen(*args: str, program: str = "router.admin.cli") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", program, *args], capture_output=True, text=True, timeout=60)


# No router listens on port 9: a command that got as far as sending would say "cannot reach the router".
NOWHERE = ["--router", "http://127.0.0.1:9"]


@pytest.mark.parametrize("args", [
    ["weights", "set", "nan", *NOWHERE], ["weights", "set", "inf", *NOWHERE], ["weights", "set", *NOWHERE, "--", "-inf"],
    ["cutover", "--interval", "nan", "--yes", *NOWHERE], ["cutover", "--steps", "5,inf", "--yes", *NOWHERE],
    ["analytics", "--days", "nan"], ["analytics", "--days", "0"], ["analytics", "--days", "4000"],
    ["render-nginx", "--green", "nan"], ["compare", "--blue", "http://127.0.0.1:9", "--green", "http://127.0.0.1:9",
                                         "--min-gap", "inf"],
    ["update", "--source", "x", "--name", "m", "--models-dir", "/nonexistent", "--interval", "-inf", *NOWHERE],
    ["update", "--source", "x", "--name", "m", "--models-dir", "/nonexistent", "--sha256", "xyz", *NOWHERE],
])
def test_numbers_json_cannot_carry_are_usage_errors(args: list[str]) -> None:
    done = _bluegreen(*args)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "cannot reach" not in done.stderr, done.stderr
    assert "Invalid value" in done.stderr, done.stderr


@pytest.mark.parametrize("program", ["router.admin.cli", "model_backends.cli"])
def test_a_yaml_syntax_error_names_the_file_and_where(tmp_path: Path, program: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("port: 8080\nx: !!binary [\n")
    done = _bluegreen("serve", "--config", str(config), program=program)
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert message.startswith(f"invalid configuration: config file {config} is not valid YAML at line 3, column 1: ")
    assert "expected the node content" in message and "<unicode string>" not in message, message


def test_config_errors_are_printed_as_text_not_markup(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text('"[/]": 1\n"[b]": 2\n')  # Rich read "[/]" as a closing tag and crashed, and ate "[b]"
    done = _bluegreen("serve", "--config", str(config))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    message = " ".join(done.stderr.split())
    assert message.startswith("invalid configuration: [/]: ") and "[b]: " in message, message


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """A second `serve` on a busy port exits 3 at once: no backend started, no model loaded."""
    runtime = {"kind": "local", "logs_dir": str(tmp_path / "backends"),
               "blue": {"engine": "mock", "model": "m", "port": free_port()},
               "green": {"engine": "mock", "model": "m", "port": free_port()}}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        router = subprocess.run([sys.executable, "-m", "router.admin.cli", "serve", "--port", port,
                                 "--state", str(tmp_path / "state.db")], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "BLUEGREEN_RUNTIME": json.dumps(runtime)})
        backend = _bluegreen("serve", "--engine", "mock", "--model", "m", "--port", port,
                             program="model_backends.cli")
    for done in (router, backend):
        message = " ".join(done.stderr.split())
        assert done.returncode == 3 and "Traceback" not in message, message
        assert f"cannot listen on 127.0.0.1:{port}" in message and "pick another --port" in message, message
    assert not (tmp_path / "backends").exists()  # the runtime never started blue
