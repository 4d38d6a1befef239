"""The nginx data plane: render the config for given weights, validate it, swap it in, reload.

Rendering is pure (`render_nginx`). Applying never installs a config that `nginx -t` rejects: the
new file is written beside the live one, tested, then moved over it atomically and nginx is
reloaded (graceful: old workers finish their streams, up to `worker_shutdown_timeout`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from router.errors import NginxError
from router.weights import FULL_WEIGHT_BP, Colour, weights_for

# A source checkout's nginx/, else where an installed package put it (pyproject's data-files).
TEMPLATES = [Path(__file__).resolve().parents[2] / "nginx", Path(sys.prefix) / "share" / "bluegreen" / "nginx"]


class NginxOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str = Field("127.0.0.1:8081", description="where nginx serves the shared endpoint")
    prefix: Path = Field(Path("runs/nginx"), description="nginx's prefix: logs, pid and temp files live here")
    conf_path: Path = Field(Path("runs/nginx/nginx.conf"), description="the live config the router rewrites")
    binary: str = "nginx"
    reload_command: list[str] | None = Field(
        None, description="how to reload; default `nginx -s reload -c CONF -p PREFIX`; e.g. a `docker exec` command")
    test_command: list[str] | None = Field(None, description="how to validate a file; {conf} is replaced by its path")
    worker_processes: str = "auto"
    worker_connections: int = Field(4096, ge=16)
    worker_shutdown_timeout_s: int = Field(30, ge=1, description="open streams get this long after a reload")
    upstream_keepalive: int = Field(64, ge=1)
    connect_timeout_s: int = Field(2, ge=1)
    read_timeout_s: int = Field(300, ge=1, description="longest silence from a backend (long generations)")
    client_body_timeout_s: int = Field(30, ge=1)
    client_header_timeout_s: int = Field(30, ge=1)
    keepalive_timeout_s: int = Field(
        0, ge=0, description="client keep-alive; 0 (default) so no request races a reload closing idle connections")
    client_max_body_size: str = "64k"
    limit_conn: int = Field(10, ge=1, le=65_535, description="concurrent connections per client address (the seed's 10)")
    limit_req_rate: str = Field("10r/s", description="requests per client address (the seed's 10r/s)")
    limit_req_burst: int = Field(20, ge=0)

    @property
    def access_log(self) -> Path:
        return self.prefix / "logs" / "access.json"


def address_of(url: str) -> str:
    """host:port as the config names it (nginx resolves a name when it loads the config)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 80}"


def upstream_addresses(urls: dict[Colour, str]) -> dict[str, Colour]:
    """Every address nginx may write in $upstream_addr for each colour: the configured host:port and,
    for a DNS name (a Kubernetes Service, a compose service), each address it resolves to now."""
    found: dict[str, Colour] = {}
    for colour, url in urls.items():
        parts = urlsplit(url)
        port = parts.port or 80
        found[address_of(url)] = colour
        try:
            resolved = socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM)
        except OSError:  # not resolvable now: the configured form still matches, and the follower asks again
            continue
        for family, *_rest, sockaddr in resolved:
            host = str(sockaddr[0])
            found[f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"] = colour
    return found


def split_lines(green_bp: int) -> list[tuple[str, str]]:
    """split_clients entries: green first with its share; a colour at 0 % is left out."""
    if green_bp <= 0:
        return [("*", "blue")]
    if green_bp >= FULL_WEIGHT_BP:
        return [("*", "green")]
    return [(f"{green_bp // 100}.{green_bp % 100:02d}%", "green"), ("*", "blue")]


def nginx_fail_timeout_s(ejection_s: float) -> int:
    """nginx's `fail_timeout` for an ejection time: whole seconds, at least one."""
    return max(1, round(ejection_s))


def render_nginx(options: NginxOptions, blue_url: str, green_url: str, green_bp: int, session_header: str = "X-Session-ID",
                 cookie_name: str = "bg_sid", cookie_max_age_s: int = 2_592_000, eject_after_failures: int = 5,
                 ejection_s: float = 5.0, stable: Colour = Colour.blue) -> str:
    """The config for `green_bp` with `stable` the colour that has served before this rollout: the
    other one (the canary) is retried on it and ejected (nginx's passive health check) after
    `eject_after_failures` failed attempts within `ejection_s`, for `ejection_s` (0 failures: never)."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True)
    prefix = options.prefix.resolve()
    return environment.get_template("nginx.conf.j2").render(
        nginx=options,
        weights=weights_for(green_bp),
        split=split_lines(green_bp),
        backends={"blue": {"address": address_of(blue_url)}, "green": {"address": address_of(green_url)}},
        stable=stable.value, canary=stable.other.value,
        session_header_var=session_header.lower().replace("-", "_"),
        cookie_name=cookie_name, cookie_max_age_s=cookie_max_age_s,
        ejection={"max_fails": eject_after_failures, "fail_timeout_s": nginx_fail_timeout_s(ejection_s)},
        paths={"pid": prefix / "nginx.pid", "error_log": prefix / "logs" / "error.log",
               "access_log": options.access_log.resolve(), "temp": prefix / "temp"},
    )


def prepare_prefix(options: NginxOptions) -> None:
    """Create the folders the rendered config names (nginx makes only the last level of each)."""
    for sub in ("logs", "temp"):
        (options.prefix / sub).mkdir(parents=True, exist_ok=True)
    options.conf_path.parent.mkdir(parents=True, exist_ok=True)


class NginxDataPlane:
    """nginx on given weights and stable colour: what it serves is `applied` once a reload took it."""

    def __init__(self, options: NginxOptions, render: Callable[[int, Colour], str]) -> None:
        self.options = options
        self.render = render  # (green_bp, stable) -> config text
        self.applied: tuple[int, Colour] | None = None

    @property
    def applied_bp(self) -> int | None:
        return None if self.applied is None else self.applied[0]

    def validate(self, green_bp: int, stable: Colour = Colour.blue) -> Path:
        """Write the config beside the live one and `nginx -t` it; the tested file's path."""
        prepare_prefix(self.options)
        fd, name = tempfile.mkstemp(prefix=".nginx-", suffix=".conf", dir=self.options.conf_path.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.render(green_bp, stable))
        candidate = Path(name)
        command = ([part.replace("{conf}", str(candidate)) for part in self.options.test_command]
                   if self.options.test_command else
                   [self.options.binary, "-t", "-q", "-c", str(candidate.resolve()), "-p", str(self.options.prefix.resolve())])
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            candidate.unlink(missing_ok=True)
            raise NginxError(f"nginx rejected the config: {(done.stderr or done.stdout).strip()}")
        return candidate

    def install(self, candidate: Path, green_bp: int, stable: Colour = Colour.blue) -> None:
        """Swap the tested file in and reload; the old config stays live if the reload fails."""
        live = self.options.conf_path
        backup = live.with_suffix(".previous")
        if live.exists():
            os.replace(live, backup)
        os.replace(candidate, live)
        command = self.options.reload_command or [
            self.options.binary, "-s", "reload", "-c", str(live.resolve()), "-p", str(self.options.prefix.resolve())]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            if backup.exists():
                os.replace(backup, live)
            raise NginxError(f"nginx did not reload: {(done.stderr or done.stdout).strip()}")
        self.applied = (green_bp, stable)

    async def check(self, green_bp: int, stable: Colour) -> Path:
        return await asyncio.to_thread(self.validate, green_bp, stable)

    async def apply(self, green_bp: int, stable: Colour, candidate: Path | None = None) -> None:
        candidate = candidate or await self.check(green_bp, stable)
        await asyncio.to_thread(self.install, candidate, green_bp, stable)
