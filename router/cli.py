"""`bluegreen`: run the router in front of blue and green."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from model_backends.settings_loader import ConfigError, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

EXIT_CONFIG = 2


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
    uvicorn.run(application, host=settings.host, port=settings.port, log_level=log_level,
                access_log=False, proxy_headers=False, timeout_graceful_shutdown=10)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
