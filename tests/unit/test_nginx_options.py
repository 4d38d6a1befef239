"""The nginx settings are checked before they reach a config file, and `render-nginx` neither creates
state nor shows a traceback for an unwritable --out."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from bluegreen_common.settings import ConfigError, load_settings
from router.admin.cli import app
from router.config import RouterConfig
from router.dataplanes.nginx import NginxOptions, render_nginx


@pytest.mark.parametrize(("setting", "value", "words"), [
    ("worker_processes", "auto; user root", "`auto` or a positive integer"),
    ("worker_processes", "0", "`auto` or a positive integer"),
    ("worker_processes", "two", "`auto` or a positive integer"),
    ("limit_req_rate", "abc", "r/s or r/m"),
    ("limit_req_rate", "10r/h", "r/s or r/m"),
    ("limit_req_rate", "0r/s", "r/s or r/m"),
    ("limit_req_rate", "10r/s; user root", "r/s or r/m"),
    ("client_max_body_size", "zz", "size syntax"),
    ("client_max_body_size", "1g", "write 1024m"),
    ("client_max_body_size", "64k;", "size syntax"),
    ("listen", "127.0.0.1:99999", "PORT 1–65535"),
    ("listen", "127.0.0.1:0", "PORT 1–65535"),
    ("listen", "127.0.0.1", "PORT 1–65535"),
    ("listen", "999.0.0.1:80", "not an IPv4 address"),
    ("listen", "[nope]:80", "not an IPv6 address"),
    ("listen", "unix:", "no socket path"),
    ("listen", "8081 default_server", "must not contain spaces"),
    ("listen", "8081;}", "must not contain"),
    ("prefix", "runs/my nginx", "must not contain spaces"),
    ("prefix", "runs/x;user", "';'"),
    ("prefix", "runs/\"x", "quotes"),
    ("prefix", "runs/x\nuser", "newlines"),
    ("conf_path", "runs/{x}/nginx.conf", "'{'"),
])
def test_a_setting_nginx_would_reject_or_that_injects_is_refused_saying_what_is_allowed(
        setting: str, value: str, words: str) -> None:
    with pytest.raises(ValidationError) as raised:
        NginxOptions(**{setting: value})
    assert raised.value.errors()[0]["loc"] == (setting,)
    assert words in str(raised.value)


@pytest.mark.parametrize(("setting", "value"), [
    ("worker_processes", "auto"), ("worker_processes", "4"), ("worker_processes", 1),
    ("limit_req_rate", "10r/s"), ("limit_req_rate", "600r/m"),
    ("client_max_body_size", "0"), ("client_max_body_size", "64k"), ("client_max_body_size", "1M"),
    ("client_max_body_size", "1048576"),
    ("listen", "8081"), ("listen", 8081), ("listen", "127.0.0.1:8081"), ("listen", "*:80"), ("listen", "localhost:65535"),
    ("listen", "[::1]:8081"), ("listen", "[::]:80"), ("listen", "unix:/run/bluegreen/nginx.sock"),
    ("prefix", "/var/lib/bluegreen/nginx"), ("conf_path", "runs/nginx/nginx.conf"),
])
def test_what_nginx_accepts_is_accepted(setting: str, value: object) -> None:
    options = NginxOptions(**{setting: value})
    text = render_nginx(options, "http://127.0.0.1:8001", "http://127.0.0.1:8002", 2500)
    assert str(getattr(options, setting)) in text or setting == "conf_path"


def test_an_integer_worker_processes_from_yaml_is_taken(tmp_path: Path) -> None:
    config = tmp_path / "bluegreen.yaml"
    config.write_text("nginx:\n  worker_processes: 1\n  listen: 8081\n")
    settings = load_settings(RouterConfig, config)
    assert settings.nginx.worker_processes == "1" and settings.nginx.listen == "8081"
    assert "worker_processes 1;" in render_nginx(settings.nginx, "http://127.0.0.1:8001", "http://127.0.0.1:8002", 0)


def test_booleans_are_not_worker_counts() -> None:
    with pytest.raises(ValidationError):
        NginxOptions(worker_processes=True)


def test_a_prefix_that_resolves_to_a_path_with_a_space_is_refused(tmp_path: Path, monkeypatch) -> None:
    spaced = tmp_path / "my runs"
    spaced.mkdir()
    monkeypatch.chdir(spaced)  # the config names the prefix resolved against the working directory
    with pytest.raises(ValidationError, match="resolved against the working directory"):
        NginxOptions(prefix=Path("nginx"))


def test_a_bad_setting_in_the_config_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "bluegreen.yaml"
    config.write_text('nginx:\n  worker_processes: "auto; user root"\n')
    with pytest.raises(ConfigError, match=r"nginx\.worker_processes: .*`auto` or a positive integer"):
        load_settings(RouterConfig, config)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BLUEGREEN_NGINX__PREFIX", str(tmp_path / "prefix"))
    return tmp_path


def test_render_nginx_exits_2_naming_a_bad_setting(workdir: Path) -> None:
    config = workdir / "bluegreen.yaml"
    config.write_text("nginx:\n  limit_req_rate: fast\n")
    result = CliRunner().invoke(app, ["render-nginx", "--config", str(config), "--green", "5"])
    assert result.exit_code == 2
    assert "nginx.limit_req_rate" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("target", ["/proc/nope/nginx.conf", "afile/nginx.conf", "afile/deeper/nginx.conf"])
def test_render_nginx_to_an_unwritable_path_is_one_sentence_and_exit_2(workdir: Path, target: str) -> None:
    (workdir / "afile").write_text("a file, not a folder")
    result = CliRunner().invoke(app, ["render-nginx", "--green", "5", "--out", target, "--state", "s.db"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cannot render: cannot write {target}: "), result.stderr


def test_render_nginx_does_not_create_a_missing_state_file(workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("BLUEGREEN_INITIAL_GREEN_WEIGHT", "25")
    typo = workdir / "typo.db"
    result = CliRunner().invoke(app, ["render-nginx", "--state", str(typo), "--out", "nginx.conf"])
    assert result.exit_code == 0, result.output
    assert not typo.exists()
    assert f"no state file at {typo}: rendering the initial weights (green 25 %)" in " ".join(result.stderr.split())
    text = (workdir / "nginx.conf").read_text()
    assert "green 25.0 %, blue stable" in text and "25.00% green;" in text
    # With --green and --stable nothing is read: no note, no file.
    given = CliRunner().invoke(app, ["render-nginx", "--state", str(typo), "--green", "5", "--stable", "green"])
    assert given.exit_code == 0 and "no state file" not in given.stderr and not typo.exists()
