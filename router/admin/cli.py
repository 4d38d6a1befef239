"""`bluegreen`: run the router in front of blue and green, and drive cutovers through its admin API."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from bluegreen_common.settings import ConfigError, load_settings
from router.weights import Colour

if TYPE_CHECKING:
    from router.admin.client import AdminClient

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
PIPED_WIDTH = 140  # columns when not on a terminal (logs, cron, CI): tables are not cut to 80


def _console(stderr: bool = False) -> Console:
    """A terminal's own width; piped, COLUMNS if set, else PIPED_WIDTH columns."""
    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return probe
    return Console(stderr=stderr, width=PIPED_WIDTH)


console = _console(stderr=True)

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3  # the port, the state file or the runtime (Docker engine, image) cannot be used


def _finite(value: float | None) -> float | None:
    """Refuse nan and ±inf as a usage error (exit 1, see `main`): click reads them as floats, its ranges let
    nan through, and JSON cannot carry either to the router."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number (got {value})")
    return value


def _days(value: float | None) -> float | None:
    """`analytics --days`: what the admin API's `days` allows (more than 0, at most MAX_DAYS)."""
    from router.analytics.summary import MAX_DAYS

    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_DAYS):
        raise typer.BadParameter(f"must be more than 0 and at most {MAX_DAYS} (got {value:g})")
    return value



@app.callback()
def _commands() -> None:
    """Blue-green router for the legal assistant's models."""


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", help="YAML settings file")] = None,
    blue: Annotated[str | None, typer.Option(help="blue backend URL [default: http://127.0.0.1:8001]")] = None,
    green: Annotated[str | None, typer.Option(help="green backend URL [default: http://127.0.0.1:8002]")] = None,
    host: Annotated[str | None, typer.Option(help="address to bind [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8080]")] = None,
    state: Annotated[Path | None, typer.Option(help="SQLite state file [default: runs/bluegreen.db]")] = None,
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
        console.print(f"[red]invalid configuration:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_CONFIG) from exc

    from bluegreen_common.listen import PortUnavailable, bind
    from bluegreen_common.listen import serve as serve_on
    from router.app import create_app
    from router.errors import RuntimeUnavailable, StateUnavailable
    from router.gc_tuning import settle_after_startup

    try:
        listeners = bind(settings.host, settings.port)  # before any backend starts
    except PortUnavailable as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per proxied request is too much
    if settings.admin_token is None:
        console.print("[yellow]no admin token:[/] /admin is read-only; set BLUEGREEN_ADMIN_TOKEN to allow changes")
    try:
        application = create_app(settings)
    except StateUnavailable as exc:
        console.print(f"[red]cannot use the state file:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_CONFIG) from exc
    except RuntimeUnavailable as exc:
        console.print(f"[red]cannot run the backends:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc
    settle_after_startup()  # keep startup's objects out of every collector pass (router/gc_tuning.py)
    serve_on(application, listeners, log_level=log_level, access_log=False, proxy_headers=False,
             timeout_graceful_shutdown=10)


@app.command("render-nginx")
def render_nginx_command(
    config: Annotated[Path | None, typer.Option("--config", help="YAML settings file")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="write here instead of printing")] = None,
    green: Annotated[float | None, typer.Option(callback=_finite,
                                                help="green percent [default: the weights in the state file]")] = None,
    stable: Annotated[Colour | None, typer.Option(
        help="the colour serving before the rollout; the other is retried on it and ejected when failing "
             "[default: the state file's; blue without one]")] = None,
    state: Annotated[Path | None, typer.Option(help="SQLite state file [default: runs/bluegreen.db]")] = None,
) -> None:
    """Print or write the nginx config for the current (or given) weights and stable colour."""
    from router.app import nginx_config_text
    from router.config import RouterConfig
    from router.dataplanes.nginx import prepare_prefix
    from router.errors import StateUnavailable
    from router.state import RouterState, StateStore
    from router.weights import percent_to_bp

    try:
        settings = load_settings(RouterConfig, config, state_path=state)
        saved = None
        initial_bp = percent_to_bp(settings.initial_green_weight)
        # Rendering never creates state: opening a missing file would initialise it (a typo'd --state
        # would leave a fresh state file behind), so without one the initial weights are rendered.
        if (green is None or stable is None) and settings.state_path.exists():
            store = StateStore(settings.state_path)
            try:
                saved = store.load(RouterState(green_bp=initial_bp))
            finally:
                store.close()
        elif green is None:
            console.print(f"no state file at {escape(str(settings.state_path))}: rendering the initial weights "
                          f"(green {settings.initial_green_weight:g} %)")
        green_bp = percent_to_bp(green) if green is not None else saved.green_bp if saved else initial_bp
        stable = stable or (Colour(saved.stable) if saved else Colour.blue)
    except (ConfigError, ValueError, StateUnavailable) as exc:
        console.print(f"[red]cannot render:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_CONFIG) from exc
    text = nginx_config_text(settings, green_bp, stable)
    try:  # so that `nginx -t -c FILE -p PREFIX` passes on a fresh machine, with no router having run
        prepare_prefix(settings.nginx)
    except OSError as exc:
        console.print(f"[red]cannot create nginx's folders under {settings.nginx.prefix}:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_CONFIG) from exc
    if out_path is None:
        out.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        return
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text)
    except OSError as exc:  # a folder on the way is a file, or unwritable (/proc, read-only, permissions)
        reason = ("a folder on its path is a file" if isinstance(exc, (FileExistsError, NotADirectoryError))
                  else exc.strerror or str(exc))
        console.print(f"[red]cannot render:[/] cannot write {escape(str(out_path))}: {escape(reason)}")
        raise typer.Exit(EXIT_CONFIG) from exc
    console.print(f"wrote {out_path} (green {green_bp / 100:g} %)")


RouterOption = Annotated[str, typer.Option("--router", envvar="BLUEGREEN_ROUTER", help="router base URL")]
DEFAULT_ROUTER = "http://127.0.0.1:8080"
# `bluegreen cutover`: 0 promoted, 2 the canary was rejected (it failed to start, failed its warm-up,
# or was rolled back), 1 the command could not do its job (router unreachable, auth, a conflicting
# rollout, bad arguments). Scripts that automate cutovers tell "unfit" from "could not run" by it.
EXIT_PROMOTED, EXIT_ERROR, EXIT_REJECTED = 0, 1, 2
out = _console()


@contextmanager
def _session(router: str) -> Iterator[AdminClient]:
    """An admin client whose errors end the command with exit 1 and the router's words."""
    from router.admin.client import AdminClient
    from router.errors import AdminError

    client = AdminClient(router)
    try:
        yield client
    except AdminError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_ERROR) from exc
    except KeyboardInterrupt:
        pass
    finally:
        client.close()


def _parse_steps(steps: str | None) -> list[float] | None:
    if steps is None:
        return None
    try:
        parsed = [float(part) for part in steps.split(",") if part.strip()]
    except ValueError:
        parsed = None
    if parsed is None or not all(math.isfinite(step) for step in parsed):
        raise typer.BadParameter(f"steps must be numbers separated by commas, e.g. 5,25,50,100 (got {steps!r})")
    return parsed


@app.command()
def status(router: RouterOption = DEFAULT_ROUTER,
           watch: Annotated[bool, typer.Option("--watch", help="redraw every second until Ctrl-C")] = False,
           as_json: Annotated[bool, typer.Option("--json", help="print the raw status")] = False) -> None:
    """Weights, readiness, per-colour figures and the rollout."""
    import json
    import time

    from rich.live import Live

    from router.admin.views import dashboard

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
def weights_set(green: Annotated[float, typer.Argument(callback=_finite,
                                                       help="green's share in percent; blue gets the rest")],
                router: RouterOption = DEFAULT_ROUTER,
                reason: Annotated[str | None, typer.Option(help="kept in the audit trail")] = None) -> None:
    """Set green's share (0–100, two decimals)."""
    with _session(router) as client:
        out.print(client.set_green(green, reason)["event"]["message"])


ACTIONS = {
    "promote": "Skip the remaining steps and promote the canary.",
    "rollback": "Send every session back to the stable colour now.",
    "pause": "Hold the rollout where it is (weights can then be set by hand).",
    "resume": "Continue a paused rollout: the step's weights apply again and its interval starts over.",
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
           since: Annotated[int, typer.Option(min=0, help="show events after this id")] = 0,
           latest: Annotated[int | None, typer.Option(min=1, max=1000, help="only the newest N events")] = None,
           follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False) -> None:
    """The audit trail: who changed what, when, and why."""
    import time

    from router.admin.views import events_table

    if latest is not None and since:
        raise typer.BadParameter("give --since or --latest, not both")
    with _session(router) as client:
        found = client.latest_events(latest) if latest is not None else client.events_after(since)
        while True:
            if found:
                out.print(events_table(found))
                since = found[-1]["id"]
            if not follow:
                return
            time.sleep(1)
            found = client.events_after(since)


def follow_live(client: AdminClient, since: int) -> dict[str, Any]:
    """Follow the rollout until it ends; its last status (`cutover` and `update` share it). On a terminal a
    dashboard is redrawn in place; elsewhere (a log file, cron, CI) each new event is printed once, as a line."""
    from rich.live import Live

    from router.admin.views import dashboard, events_table

    def warn(message: str) -> None:
        console.print(f"[yellow]{escape(message)}[/]")

    if not out.is_terminal:
        shown = since

        def print_new(_status: dict[str, Any], events: list[dict[str, Any]]) -> None:
            nonlocal shown
            new = [event for event in events if event["id"] > shown]
            if new:
                out.print(events_table(new))
                shown = new[-1]["id"]

        return client.follow_rollout(since, print_new, on_unreachable=warn)
    with Live(console=out, refresh_per_second=2) as live:
        current = client.follow_rollout(since, lambda status, recent: live.update(dashboard(status, recent[-6:])),
                                        on_unreachable=warn)
    out.print(events_table(client.events_after(since)))  # the whole story, kept on screen
    return current


@app.command()
def cutover(router: RouterOption = DEFAULT_ROUTER,
            steps: Annotated[str | None, typer.Option(help="canary percent per step [default: the router's, 5,25,50,100]")] = None,
            interval: Annotated[float | None, typer.Option(callback=_finite,
                                                           help="seconds per step [default: the router's, 30]")] = None,
            yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False) -> None:
    """Start a rollout and follow it live until it ends: exit 0 promoted, 2 canary rejected, 1 error."""
    from router.admin.views import rollout_lines
    from router.rollout.machine import FINISHED, Phase

    parsed = _parse_steps(steps)
    current: dict[str, Any] | None = None
    with _session(router) as client:
        before = client.status()
        canary = "green" if before["stable"] == "blue" else "blue"
        plan = ", ".join(f"{s:g}" for s in parsed) if parsed else "the router's default steps"
        if not yes and not typer.confirm(f"Move traffic from {before['stable']} to {canary} through {plan} %?"):
            raise typer.Exit(EXIT_ERROR)
        newest = client.latest_events(1)
        first_event = newest[-1]["id"] if newest else 0
        client.start_rollout(parsed, interval)
        current = follow_live(client, first_event)
        out.print(rollout_lines(current["rollout"]))
    if current is None or Phase(current["rollout"]["phase"]) not in FINISHED:
        console.print("stopped following; the rollout goes on in the router (`bluegreen status --watch`)")
        raise typer.Exit(EXIT_ERROR)
    phase = Phase(current["rollout"]["phase"])
    if phase is Phase.promoted:
        out.print(f"[green]promoted:[/] {canary} serves every session")
        raise typer.Exit(EXIT_PROMOTED)
    out.print(f"[red]{phase.value.replace('_', ' ')}:[/] {current['rollout'].get('reason', '')}")
    raise typer.Exit(EXIT_REJECTED if phase in (Phase.rolled_back, Phase.failed) else EXIT_ERROR)


@app.command()
def update(source: Annotated[str, typer.Option(help="the model's URL, a models.json manifest (URL or file), or a "
                                                    "local folder")],
           name: Annotated[str, typer.Option(help="the model's name: its folder under --models-dir")],
           models_dir: Annotated[Path, typer.Option("--models-dir", help="where versions are kept; the router must "
                                                                         "read the same path")],
           router: RouterOption = DEFAULT_ROUTER,
           sha256: Annotated[str | None, typer.Option(help="expected sha256 of the file [default: the manifest's]")] = None,
           engine: Annotated[str | None, typer.Option(
               help="llama_cpp | transformers | openai_upstream [default: the colour's configured engine]")] = None,
           steps: Annotated[str | None, typer.Option(help="canary percent per step [default: the router's]")] = None,
           interval: Annotated[float | None, typer.Option(callback=_finite,
                                                          help="seconds per step [default: the router's]")] = None,
           keep: Annotated[int, typer.Option(min=1, help="installed versions kept (older ones are pruned)")] = 3,
           timeout: Annotated[float, typer.Option(
               callback=_finite, min=1, help="seconds without a byte before a download attempt gives up")] = 60.0,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would happen, change nothing")] = False,
           retry_rejected: Annotated[bool, typer.Option(
               "--retry-rejected", help="forget the rejection of the version the source offers now and try it "
                                        "again (exit 1 when that version is not rejected)")] = False,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask before the cutover")] = False) -> None:
    """Check the source for a new model version; download, verify, and cut over to it: exit 0 updated,
    already current or already rejected, 2 rejected (checksum, or the cutover rolled back), 1 could not run."""
    from router.update.command import run_update_command
    from router.update.plan import check_sha256, check_version
    from router.update.update import UpdateRequest

    if engine is not None and engine not in ("llama_cpp", "transformers", "openai_upstream"):
        raise typer.BadParameter(f"--engine must be llama_cpp, transformers or openai_upstream (got {engine!r})")
    try:
        check_version(name, "--name")
        sha256 = None if sha256 is None else check_sha256(sha256)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    request = UpdateRequest(router=router, source=source, name=name, models_dir=models_dir.resolve(), sha256=sha256,
                            engine=engine, steps=_parse_steps(steps), interval_s=interval, keep=keep,
                            dry_run=dry_run, timeout_s=timeout, retry_rejected=retry_rejected)
    raise typer.Exit(run_update_command(request, follow_live, out, console, None if yes else typer.confirm))


Rate = Annotated[float, typer.Option(callback=_finite, min=0, max=1)]


@app.command()
def compare(blue: Annotated[str, typer.Option(help="blue backend URL, e.g. http://127.0.0.1:8001")],
            green: Annotated[str, typer.Option(help="green backend URL, e.g. http://127.0.0.1:8002")],
            questions: Annotated[Path | None, typer.Option(
                help="questions file: .json list, or lines of question, question<TAB>reference or "
                     "area<TAB>question<TAB>reference (3 columns: the question is the 2nd) "
                     "[default: the migration plan's five + the shipped legal Q/A set]")] = None,
            repeats: Annotated[int, typer.Option(min=1, help="ask every question this many times")] = 1,
            concurrency: Annotated[int, typer.Option(min=1, help="requests in flight per colour")] = 1,
            max_tokens: Annotated[int, typer.Option(min=1, max=4096, help="tokens per answer at most")] = 256,
            temperature: Annotated[float | None, typer.Option(
                callback=_finite, min=0, max=2, help="sampling temperature [default: each backend's own]")] = None,
            timeout: Annotated[float, typer.Option(callback=_finite, min=1, help="seconds per request")] = 300.0,
            wait_ready: Annotated[float, typer.Option(
                callback=_finite, min=0, help="seconds to wait for a backend whose model is still loading")] = 60.0,
            out_dir: Annotated[Path, typer.Option("--out", help="where the JSON and HTML reports go")] = Path("runs/compare"),
            max_error_rate: Rate = 0.05, max_empty_rate: Rate = 0.05, max_non_russian_rate: Rate = 0.10,
            max_repetition_rate: Rate = 0.10, max_truncated_rate: Rate = 0.25, max_refusal_rate: Rate = 0.10,
            tolerance: Annotated[float, typer.Option(
                callback=_finite, min=0, max=1,
                help="a rate over its limit counts only if green's exceeds blue's by more")] = 0.05,
            min_length_ratio: Annotated[float, typer.Option(
                callback=_finite, min=0, help="median green/blue length")] = 0.5,
            max_length_ratio: Annotated[float, typer.Option(
                callback=_finite, min=0, help="median green/blue length")] = 4.0,
            min_chrf: Annotated[float, typer.Option(
                callback=_finite, min=0, max=100, help="median chrF green vs blue; 0 turns it off")] = 0.0,
            max_gap_ratio: Annotated[float, typer.Option(
                callback=_finite, min=1, help="green's inter-chunk gap p95 over blue's, at most")] = 3.0,
            min_gap: Annotated[float, typer.Option(
                callback=_finite, min=0,
                help="seconds: a gap p95 up to this passes whatever the ratio")] = 0.5) -> None:
    """A/B both colours' answers on a question set (JSON + HTML report): exit 0 no regression,
    2 green regresses, 1 could not run."""
    from router.errors import CompareFailed
    from router.quality.command import CompareRequest, run_compare
    from router.quality.compare import CompareOptions
    from router.quality.verdict import CompareLimits, Outcome

    request = CompareRequest(
        blue_url=blue, green_url=green, questions_path=questions, out_dir=out_dir,
        options=CompareOptions(repeats=repeats, concurrency=concurrency, max_tokens=max_tokens,
                               temperature=temperature, timeout_s=timeout),
        limits=CompareLimits(
            max_error_rate=max_error_rate, max_empty_rate=max_empty_rate, max_non_russian_rate=max_non_russian_rate,
            max_repetition_rate=max_repetition_rate, max_truncated_rate=max_truncated_rate,
            max_refusal_rate=max_refusal_rate, tolerance=tolerance, min_length_ratio=min_length_ratio,
            max_length_ratio=max_length_ratio, min_chrf=min_chrf, max_gap_ratio=max_gap_ratio, min_gap_s=min_gap,
        ),
        wait_ready_s=wait_ready,
    )
    try:
        run = run_compare(request, out, console)
    except CompareFailed as exc:
        console.print(f"[red]cannot compare:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_ERROR) from exc
    exits = {Outcome.passed: EXIT_PROMOTED, Outcome.regressed: EXIT_REJECTED, Outcome.inconclusive: EXIT_ERROR}
    raise typer.Exit(exits[run.verdict.outcome])


@app.command()
def analytics(path: Annotated[Path, typer.Option(envvar="BLUEGREEN_ANALYTICS__PATH",
                                                 help="the analytics file (rotated PATH.1, PATH.2, … are read too)")]
              = Path("runs/analytics.jsonl"),
              days: Annotated[float | None, typer.Option(
                  callback=_days, help="only the last N days, more than 0 and at most 3650 [default: all]")] = None,
              by: Annotated[str | None, typer.Option(help="one row per colour | category | day | tier")] = None,
              as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False) -> None:
    """Usage from the router's analytics: requests, error rate, p50/p95 time and TTFT, answer length, tokens."""
    from router.analytics.command import run_analytics
    from router.analytics.summary import GROUPINGS

    if by is not None and by not in GROUPINGS:
        raise typer.BadParameter(f"--by must be one of {', '.join(GROUPINGS)} (got {by!r})")
    raise typer.Exit(run_analytics(path, days, by, as_json, out, console))


def main() -> None:
    """Usage errors exit 1, as any other "could not run" does: click's own 2 means "rejected" here."""
    import click

    # Newer typer vendors click: its usage errors derive from typer.TyperException, not from click's.
    usage_errors = (click.ClickException, getattr(typer, "TyperException", click.ClickException))
    try:
        code = app(standalone_mode=False)
    except usage_errors as exc:
        exc.show()
        raise SystemExit(EXIT_ERROR) from exc
    except (click.Abort, typer.Abort):
        console.print("aborted")
        raise SystemExit(EXIT_ERROR) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
