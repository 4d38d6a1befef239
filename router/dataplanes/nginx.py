"""The nginx data plane: render the config for given weights, validate it, swap it in, reload.

Rendering is pure (`render_nginx`). Applying never installs a config that `nginx -t` rejects: the
new file is written beside the live one, tested, then moved over it atomically and nginx is
reloaded (graceful: old workers finish their streams, up to `worker_shutdown_timeout`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from router.errors import NginxError
from router.weights import FULL_WEIGHT_BP, Colour, weights_for

# A source checkout's nginx/, else where an installed package put it (pyproject's data-files).
TEMPLATES = [Path(__file__).resolve().parents[2] / "nginx", Path(sys.prefix) / "share" / "bluegreen" / "nginx"]


# Characters that would end a directive, open or close a block, quote, escape or split a value: a
# setting written into the config holds none of them (`auto; user root` would inject a directive).
_UNSAFE = re.compile(r"""[;{}'"\\\s]""")
_HOST = re.compile(r"^(\*|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$")


def _refuse_unsafe(value: str, what: str) -> str:
    found = _UNSAFE.search(value)
    if found:
        raise ValueError(f"{what} must not contain spaces, newlines, quotes, backslashes, ';', '{{' or '}}' "
                         f"(found {found.group()!r} in {value!r})")
    return value


def _check_listen(value: str) -> str:
    """nginx's `listen`: `port`, `host:port`, `[ipv6]:port` or `unix:/path`; the port 1–65535."""
    _refuse_unsafe(value, "listen")
    allowed = "listen must be PORT, HOST:PORT, [IPV6]:PORT or unix:/PATH, with PORT 1–65535"
    if value.startswith("unix:"):
        if len(value) == len("unix:"):
            raise ValueError(f"{allowed} (got {value!r}: no socket path)")
        return value
    host, colon, port = value.rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65_535:
        raise ValueError(f"{allowed} (got {value!r})")
    if not colon:
        return value
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{allowed} (got {value!r}: {host} is not an IPv6 address)") from None
        return value
    if not _HOST.match(host):
        raise ValueError(f"{allowed} (got {value!r}: {host!r} is not a host name or address)")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{allowed} (got {value!r}: {host} is not an IPv4 address)") from None
    return value


class NginxOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str = Field("127.0.0.1:8081", description="where nginx serves the shared endpoint: PORT, HOST:PORT, "
                        "[IPV6]:PORT or unix:/PATH")
    prefix: Path = Field(Path("runs/nginx"), description="nginx's prefix: logs, pid and temp files live here")
    conf_path: Path = Field(Path("runs/nginx/nginx.conf"), description="the live config the router rewrites")
    binary: str = "nginx"
    reload_command: list[str] | None = Field(
        None, description="how to reload; default `nginx -s reload -c CONF -p PREFIX`; e.g. a `docker exec` command")
    test_command: list[str] | None = Field(None, description="how to validate a file; {conf} is replaced by its path")
    worker_processes: str = Field("auto", description="`auto` or a positive integer")
    worker_connections: int = Field(4096, ge=16)
    worker_shutdown_timeout_s: int = Field(30, ge=1, description="open streams get this long after a reload")
    upstream_keepalive: int = Field(64, ge=1)
    connect_timeout_s: int = Field(2, ge=1)
    read_timeout_s: int = Field(300, ge=1, description="longest silence from a backend (long generations)")
    client_body_timeout_s: int = Field(30, ge=1)
    client_header_timeout_s: int = Field(30, ge=1)
    keepalive_timeout_s: int = Field(
        0, ge=0, description="client keep-alive; 0 (default) so no request races a reload closing idle connections")
    client_max_body_size: str = Field("64k", description="nginx's size syntax: digits with an optional k, m or g")
    limit_conn: int = Field(10, ge=1, le=65_535, description="concurrent connections per client address (the seed's 10)")
    limit_req_rate: str = Field("10r/s", description="requests per client address: Nr/s or Nr/m (the seed's 10r/s)")
    limit_req_burst: int = Field(20, ge=0)

    @field_validator("worker_processes", "listen", mode="before")
    @classmethod
    def _number_as_text(cls, value: object) -> object:
        """YAML's `worker_processes: 1` or `listen: 8081` is an int: take it as nginx's text."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("worker_processes")
    @classmethod
    def _check_worker_processes(cls, value: str) -> str:
        if value != "auto" and not re.fullmatch(r"[1-9][0-9]{0,5}", value):
            raise ValueError(f"worker_processes must be `auto` or a positive integer (got {value!r})")
        return value

    @field_validator("limit_req_rate")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        if not re.fullmatch(r"[1-9][0-9]{0,8}r/[sm]", value):
            raise ValueError(f"limit_req_rate must be requests per second or minute as nginx writes them, "
                             f"a positive integer then r/s or r/m, e.g. 10r/s or 600r/m (got {value!r})")
        return value

    @field_validator("client_max_body_size")
    @classmethod
    def _check_size(cls, value: str) -> str:
        # nginx's size syntax; not g/G: the template also sets client_body_buffer_size to this value and nginx
        # reads that one without g (`1g` fails `nginx -t`; write 1024m).
        if not re.fullmatch(r"[0-9]{1,12}[kKmM]?", value):
            raise ValueError(f"client_max_body_size must be nginx's size syntax, digits with an optional k or m "
                             f"(K, M), e.g. 64k or 1m; not g, write 1024m (got {value!r})")
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        return _check_listen(value)

    @field_validator("prefix", "conf_path")
    @classmethod
    def _check_path(cls, value: Path, info: ValidationInfo) -> Path:
        """The config names these paths (resolved against the working directory): both forms must be safe."""
        _refuse_unsafe(str(value), str(info.field_name))
        resolved = str(value.resolve())
        if _UNSAFE.search(resolved):
            _refuse_unsafe(resolved, f"{info.field_name} (resolved against the working directory)")
        return value

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


def failure_key(error: str) -> str:
    """nginx's message without what changes on every try (its timestamp and pid, the temp file's name)."""
    error = re.sub(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: (\*\d+ )?", "", error)
    return re.sub(r"\.nginx-\w+\.conf", ".nginx-*.conf", error)


def _run(command: list[str], purpose: str) -> subprocess.CompletedProcess[str]:
    """Run an nginx command; NginxError when it cannot run at all (no such program, a hang)."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30)
    except FileNotFoundError as exc:
        raise NginxError(f"cannot {purpose}: {command[0]!r} is not installed or not on PATH "
                         "(install nginx, or set nginx.binary / nginx.test_command / nginx.reload_command)") from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise NginxError(f"cannot {purpose} with {command[0]!r}: {exc}") from exc


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
        try:
            prepare_prefix(self.options)
            fd, name = tempfile.mkstemp(prefix=".nginx-", suffix=".conf", dir=self.options.conf_path.parent)
            with os.fdopen(fd, "w") as handle:
                handle.write(self.render(green_bp, stable))
        except OSError as exc:
            raise NginxError(f"cannot write nginx's config under {self.options.conf_path.parent} or its prefix "
                             f"{self.options.prefix}: {exc}") from exc
        candidate = Path(name)
        command = ([part.replace("{conf}", str(candidate)) for part in self.options.test_command]
                   if self.options.test_command else
                   [self.options.binary, "-t", "-q", "-c", str(candidate.resolve()), "-p", str(self.options.prefix.resolve())])
        try:
            done = _run(command, "test the config")
        except NginxError:
            candidate.unlink(missing_ok=True)
            raise
        if done.returncode != 0:
            candidate.unlink(missing_ok=True)
            raise NginxError(f"nginx rejected the config: {(done.stderr or done.stdout).strip()}")
        return candidate

    def live_differs(self, green_bp: int, stable: Colour) -> bool:
        """The live file is not the config for these weights: someone else wrote it (a restart script
        that rendered other weights, a hand edit), so nginx may serve something the router does not know."""
        try:
            return self.options.conf_path.read_text() != self.render(green_bp, stable)
        except OSError:
            return True

    def install(self, candidate: Path, green_bp: int, stable: Colour = Colour.blue) -> None:
        """Swap the tested file in and reload; the old config stays live if the reload fails."""
        live = self.options.conf_path
        backup = live.with_suffix(".previous")
        try:
            if live.exists():
                os.replace(live, backup)
            os.replace(candidate, live)
        except OSError as exc:
            raise NginxError(f"cannot put the new config in place at {live}: {exc}") from exc
        command = self.options.reload_command or [
            self.options.binary, "-s", "reload", "-c", str(live.resolve()), "-p", str(self.options.prefix.resolve())]
        done = _run(command, "reload")
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
