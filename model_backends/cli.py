"""`model-backend`: serve a model behind the legal API, or build the tiny test models."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from model_backends.chat_format import ChatFormat
from model_backends.settings_loader import ConfigError, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

EXIT_CONFIG = 2


@app.command()
def serve(
    engine: Annotated[Optional[str], typer.Option(help="llama_cpp | transformers | openai_upstream | mock")] = None,
    model: Annotated[Optional[str], typer.Option(help="GGUF file, HF checkpoint dir, or upstream model name")] = None,
    host: Annotated[Optional[str], typer.Option(help="address to bind [default: 127.0.0.1]")] = None,
    port: Annotated[Optional[int], typer.Option(help="port [default: 8001]")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML settings file")] = None,
    model_name: Annotated[Optional[str], typer.Option(help="name shown to clients")] = None,
    chat_format: Annotated[Optional[ChatFormat], typer.Option(help="prompt format [default: auto]")] = None,
    queue_size: Annotated[Optional[int], typer.Option(help="requests allowed to wait [default: 32]")] = None,
    request_timeout: Annotated[Optional[float], typer.Option(help="seconds per request [default: 300]")] = None,
    fault_error_rate: Annotated[Optional[float], typer.Option(help="drill: share of requests answered 500")] = None,
    fault_latency_ms: Annotated[Optional[int], typer.Option(help="drill: ms added before the first token")] = None,
    fault_hang_rate: Annotated[Optional[float], typer.Option(help="drill: share of requests never answered")] = None,
    fault_after: Annotated[Optional[int], typer.Option(help="drill: requests served cleanly before faults start")] = None,
    fault_load_delay: Annotated[Optional[float], typer.Option(help="drill: seconds to wait before loading the model")] = None,
    allow_mock: Annotated[Optional[bool], typer.Option("--allow-mock", help="permit the canned mock engine")] = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning")] = "info",
) -> None:
    """Serve one model (flags override the config file, which overrides the defaults)."""
    faults = {k: v for k, v in {"error_rate": fault_error_rate, "latency_ms": fault_latency_ms,
                                 "hang_rate": fault_hang_rate, "after_requests": fault_after,
                                 "load_delay_s": fault_load_delay}.items() if v is not None}
    from model_backends.config import BackendConfig

    try:
        settings = load_settings(
            BackendConfig, config, engine=engine, model=model, host=host, port=port, model_name=model_name,
            chat_format=chat_format, queue_size=queue_size, request_timeout_s=request_timeout,
            allow_mock=allow_mock, faults=faults or None,
        )
    except ConfigError as exc:
        console.print(f"[red]invalid configuration:[/] {exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    if settings.engine != "openai_upstream" and settings.engine != "mock" and not settings.model:
        console.print("[red]no model given:[/] pass --model PATH (a .gguf file or a checkpoint directory)")
        raise typer.Exit(EXIT_CONFIG)

    import uvicorn

    from model_backends.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level,
                timeout_graceful_shutdown=10)


@app.command("make-tiny-models")
def make_tiny_models(
    out_dir: Annotated[Path, typer.Argument(help="where to write the checkpoint and the GGUF file")],
    force: Annotated[bool, typer.Option(help="rebuild even when a finished build is there")] = False,
) -> None:
    """Build the tiny Russian legal model: HF checkpoint + the same weights as GGUF."""
    from model_backends.tiny.build import build_tiny_models

    build_tiny_models(out_dir, force=force, console=console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
