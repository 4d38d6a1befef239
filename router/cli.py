"""`bluegreen`: run the router in front of blue and green, and drive cutovers through its admin API."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterator, Optional

import typer
from rich.console import Console

from model_backends.settings_loader import ConfigError, load_settings

if TYPE_CHECKING:
    from router.admin_client import AdminClient

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3  # the state file or the runtime (Docker engine, image) cannot be used


@app.callback()
def _commands() -> None:
    """Blue-green router for the legal assistant's models."""


@app.command()
def serve(
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML settings file")] = None,
    blue: Annotated[Optional[str], typer.Option(help="blue backend URL [default: http://127.0.0.1:8001]")] = None,
    green: Annotated[Optional[str], typer.Option(help="green backend URL [default: http://127.0.0.1:8002]")] = None,
    host: Annotated[Optional[str], typer.Option(help="address to bind [default: 127.0.0.1]")] = None,
    port: Annotated[Optional[int], typer.Option(help="port [default: 8080]")] = None,
    state: Annotated[Optional[Path], typer.Option(help="SQLite state file [default: runs/bluegreen.db]")] = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning")] = "info",
) -> None:
    """Serve the shared endpoint (flags override BLUEGREEN_* env, which overrides the config file)."""
    from router.config import RouterConfig

    try:
        settings = load_settings(
            RouterConfig, config, host=host, port=port, state_path=state,
            blue={"url": blue} if blue else None, green={"url": green} if green else None,
        )
    except ConfigError as exc:
        console.print(f"[red]invalid configuration:[/] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc

    import uvicorn

    from router.app import create_app
    from router.runtimes import RuntimeUnavailable
    from router.state import StateUnavailable

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per proxied request is too much
    if settings.admin_token is None:
        console.print("[yellow]no admin token:[/] /admin is read-only; set BLUEGREEN_ADMIN_TOKEN to allow changes")
    try:
        application = create_app(settings)
    except StateUnavailable as exc:
        console.print(f"[red]cannot use the state file:[/] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    except RuntimeUnavailable as exc:
        console.print(f"[red]cannot run the backends:[/] {exc}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc
    uvicorn.run(application, host=settings.host, port=settings.port, log_level=log_level,
                access_log=False, proxy_headers=False, timeout_graceful_shutdown=10)


@app.command("render-nginx")
def render_nginx_command(
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML settings file")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="write here instead of printing")] = None,
    green: Annotated[Optional[float], typer.Option(help="green percent [default: the weights in the state file]")] = None,
    state: Annotated[Optional[Path], typer.Option(help="SQLite state file [default: runs/bluegreen.db]")] = None,
) -> None:
    """Print or write the nginx config for the current (or given) weights."""
    from router.app import nginx_config_text
    from router.config import RouterConfig
    from router.routing import percent_to_bp
    from router.state import RouterState, StateStore, StateUnavailable

    try:
        settings = load_settings(RouterConfig, config, state_path=state)
        if green is not None:
            green_bp = percent_to_bp(green)
        else:
            store = StateStore(settings.state_path)
            green_bp = store.load(RouterState(green_bp=percent_to_bp(settings.initial_green_weight))).green_bp
            store.close()
    except (ConfigError, ValueError, StateUnavailable) as exc:
        console.print(f"[red]cannot render:[/] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    text = nginx_config_text(settings, green_bp)
    if out_path is None:
        out.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        return
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text)
    console.print(f"wrote {out_path} (green {green_bp / 100:g} %)")


RouterOption = Annotated[str, typer.Option("--router", envvar="BLUEGREEN_ROUTER", help="router base URL")]
DEFAULT_ROUTER = "http://127.0.0.1:8080"
EXIT_ERROR, EXIT_ROLLED_BACK = 1, 2
FINISHED = {"promoted", "rolled_back", "failed", "idle"}
out = Console()


@contextmanager
def _session(router: str) -> Iterator["AdminClient"]:
    """An admin client whose errors end the command with exit 1 and the router's words."""
    from router.admin_client import AdminClient, AdminError

    client = AdminClient(router)
    try:
        yield client
    except AdminError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    except KeyboardInterrupt:
        pass
    finally:
        client.close()


def _parse_steps(steps: str | None) -> list[float] | None:
    if steps is None:
        return None
    try:
        return [float(part) for part in steps.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"steps must be numbers separated by commas, e.g. 5,25,50,100 (got {steps!r})") from exc


@app.command()
def status(router: RouterOption = DEFAULT_ROUTER,
           watch: Annotated[bool, typer.Option("--watch", help="redraw every second until Ctrl-C")] = False,
           as_json: Annotated[bool, typer.Option("--json", help="print the raw status")] = False) -> None:
    """Weights, readiness, per-colour figures and the rollout."""
    import json
    import time

    from rich.live import Live

    from router.console_view import dashboard

    with _session(router) as client:
        if as_json:
            out.print_json(json.dumps(client.status()))
            return
        if not watch:
            out.print(dashboard(client.status(), client.latest_events(5)))
            return
        with Live(console=out, refresh_per_second=2) as live:
            while True:
                live.update(dashboard(client.status(), client.latest_events(5)))
                time.sleep(1)


weights_app = typer.Typer(help="Set the weights by hand (refused while a rollout drives them).")
app.add_typer(weights_app, name="weights")


@weights_app.command("set")
def weights_set(green: Annotated[float, typer.Argument(help="green's share in percent; blue gets the rest")],
                router: RouterOption = DEFAULT_ROUTER,
                reason: Annotated[Optional[str], typer.Option(help="kept in the audit trail")] = None) -> None:
    """Set green's share (0–100, two decimals)."""
    with _session(router) as client:
        out.print(client.set_green(green, reason)["event"]["message"])


ACTIONS = {
    "promote": "Skip the remaining steps and promote the canary.",
    "rollback": "Send every session back to the stable colour now.",
    "pause": "Hold the rollout where it is (weights can then be set by hand).",
    "resume": "Continue a paused rollout; the current step's interval starts again.",
    "confirm": "Let a rollout that waits for confirmation be promoted.",
}


def _register_action(name: str, help_text: str) -> None:
    def run_action(router: RouterOption = DEFAULT_ROUTER) -> None:
        with _session(router) as client:
            out.print(client.action(name)["event"]["message"])

    app.command(name, help=help_text)(run_action)


for _name, _help in ACTIONS.items():
    _register_action(_name, _help)


@app.command()
def events(router: RouterOption = DEFAULT_ROUTER,
           since: Annotated[int, typer.Option(help="show events after this id")] = 0,
           follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False) -> None:
    """The audit trail: who changed what, when, and why."""
    import time

    from router.console_view import events_table

    with _session(router) as client:
        while True:
            page = client.events(since=since, limit=1000)
            if page["events"]:
                out.print(events_table(page["events"]))
            since = page["last_id"]
            if not follow:
                return
            time.sleep(1)


@app.command()
def cutover(router: RouterOption = DEFAULT_ROUTER,
            steps: Annotated[Optional[str], typer.Option(help="canary percent per step [default: the router's, 5,25,50,100]")] = None,
            interval: Annotated[Optional[float], typer.Option(help="seconds per step [default: the router's, 30]")] = None,
            yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False) -> None:
    """Start a rollout and follow it live until it ends: exit 0 promoted, 2 rolled back, 1 error."""
    import time

    from rich.live import Live

    from router.console_view import dashboard, events_table, rollout_lines

    parsed = _parse_steps(steps)
    current: dict | None = None
    with _session(router) as client:
        before = client.status()
        canary = "green" if before["stable"] == "blue" else "blue"
        plan = ", ".join(f"{s:g}" for s in parsed) if parsed else "the router's default steps"
        if not yes and not typer.confirm(f"Move traffic from {before['stable']} to {canary} through {plan} %?"):
            raise typer.Exit(EXIT_ERROR)
        newest = client.latest_events(1)
        first_event = newest[-1]["id"] if newest else 0
        client.start_rollout(parsed, interval)
        with Live(console=out, refresh_per_second=2) as live:
            while True:
                current = client.status()
                recent = client.events(since=first_event, limit=1000)["events"]
                live.update(dashboard(current, recent[-6:]))
                if current["rollout"]["phase"] in FINISHED:
                    break
                time.sleep(0.5)
        out.print(events_table(client.events(since=first_event, limit=1000)["events"]))
        out.print(rollout_lines(current["rollout"]))
    if current is None or current["rollout"]["phase"] not in FINISHED:
        console.print("stopped following; the rollout goes on in the router (`bluegreen status --watch`)")
        raise typer.Exit(EXIT_ERROR)
    phase = current["rollout"]["phase"]
    if phase == "promoted":
        out.print(f"[green]promoted:[/] {canary} serves every session")
        return
    out.print(f"[red]{phase.replace('_', ' ')}:[/] {current['rollout'].get('reason', '')}")
    raise typer.Exit(EXIT_ROLLED_BACK if phase == "rolled_back" else EXIT_ERROR)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
