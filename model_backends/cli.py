"""`model-backend`: serve a model behind the legal API, convert a checkpoint to GGUF, or build the tiny test models."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from bluegreen_common.settings import ConfigError, load_settings
from model_backends.chat_format import ChatFormat
from model_backends.config import AnswerFault
from model_backends.convert.outtypes import OutType
from model_backends.tiny.spec import HalfDtype, ModelSize, TinyShape

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

EXIT_CONFIG = 2
EXIT_PORT = 3  # the address cannot be bound (in use)


@app.command()
def serve(
    engine: Annotated[str | None, typer.Option(help="llama_cpp | transformers | openai_upstream | mock")] = None,
    model: Annotated[str | None, typer.Option(help="GGUF file, HF checkpoint dir, or upstream model name")] = None,
    host: Annotated[str | None, typer.Option(help="address to bind [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8001]")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML settings file")] = None,
    model_name: Annotated[str | None, typer.Option(help="name shown to clients")] = None,
    chat_format: Annotated[ChatFormat | None, typer.Option(help="prompt format [default: auto]")] = None,
    queue_size: Annotated[int | None, typer.Option(help="requests allowed to wait [default: 32]")] = None,
    request_timeout: Annotated[float | None, typer.Option(help="seconds per request [default: 300]")] = None,
    fault_error_rate: Annotated[float | None, typer.Option(help="drill: share of requests answered 500")] = None,
    fault_latency_ms: Annotated[int | None, typer.Option(help="drill: ms added before the first token")] = None,
    fault_hang_rate: Annotated[float | None, typer.Option(help="drill: share of requests never answered")] = None,
    fault_after: Annotated[int | None, typer.Option(help="drill: requests served cleanly before faults start")] = None,
    fault_load_delay: Annotated[float | None, typer.Option(help="drill: seconds to wait before loading the model")] = None,
    fault_answer: Annotated[AnswerFault | None, typer.Option(
        help="drill: answer with HTTP 200 but badly (empty, Latin text, one token repeated)")] = None,
    fault_answer_rate: Annotated[float | None, typer.Option(
        help="drill: share of answers made bad by --fault-answer [default: 1.0]")] = None,
    allow_mock: Annotated[bool | None, typer.Option("--allow-mock", help="permit the canned mock engine")] = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning")] = "info",
) -> None:
    """Serve one model (flags override the config file, which overrides the defaults)."""
    faults = {k: v for k, v in {"error_rate": fault_error_rate, "latency_ms": fault_latency_ms,
                                 "hang_rate": fault_hang_rate, "after_requests": fault_after,
                                 "load_delay_s": fault_load_delay, "answer": fault_answer,
                                 "answer_rate": fault_answer_rate}.items() if v is not None}
    from model_backends.config import BackendConfig

    try:
        settings = load_settings(
            BackendConfig, config, engine=engine, model=model, host=host, port=port, model_name=model_name,
            chat_format=chat_format, queue_size=queue_size, request_timeout_s=request_timeout,
            allow_mock=allow_mock, faults=faults or None,
        )
    except ConfigError as exc:
        console.print(f"[red]invalid configuration:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_CONFIG) from exc
    if settings.engine != "openai_upstream" and settings.engine != "mock" and not settings.model:
        console.print("[red]no model given:[/] pass --model PATH (a .gguf file or a checkpoint directory)")
        raise typer.Exit(EXIT_CONFIG)

    from bluegreen_common.listen import PortUnavailable, bind
    from bluegreen_common.listen import serve as serve_on
    from model_backends.app import create_app

    try:
        listeners = bind(settings.host, settings.port)  # before the model starts loading
    except PortUnavailable as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(EXIT_PORT) from exc
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve_on(create_app(settings), listeners, log_level=log_level, timeout_graceful_shutdown=10)


@app.command("make-tiny-models")
def make_tiny_models(
    out_dir: Annotated[Path, typer.Argument(help="where to write the checkpoint and the GGUF file")],
    force: Annotated[bool, typer.Option(help="rebuild even when a finished build is there")] = False,
    shape: Annotated[TinyShape, typer.Option(help="tiny: the default; gqa: wider, 8 heads on 2 KV heads")] =
        TinyShape.tiny,
    size: Annotated[ModelSize, typer.Option(
        help="tiny: trained, a few MB (the default); small (~95 M) or medium (~222 M): untrained random "
             "weights in --dtype, for GPU measurements")] = ModelSize.tiny,
    dtype: Annotated[HalfDtype, typer.Option(help="weights of the small and medium sizes")] = HalfDtype.float16,
) -> None:
    """Build the tiny Russian legal model: HF checkpoint + the same weights as GGUF."""
    if size is not ModelSize.tiny:
        if shape is not TinyShape.tiny:
            console.print("[red]--shape applies to the trained tiny size only:[/] drop --shape or --size")
            raise typer.Exit(EXIT_CONFIG)
        from model_backends.tiny.sized import build_sized_models

        build_sized_models(out_dir, size, dtype=dtype, force=force, console=console)
        return
    from model_backends.tiny.build import build_tiny_models
    from model_backends.tiny.spec import SHAPES

    build_tiny_models(out_dir, spec=SHAPES[shape.value], force=force, console=console)


@app.command()
def convert(
    hf_dir: Annotated[Path, typer.Argument(help="a Mistral/Llama Hugging Face checkpoint (safetensors)")],
    out: Annotated[Path, typer.Argument(help="the GGUF file to write")],
    outtype: Annotated[OutType, typer.Option(help="f32/f16 written directly; the rest quantized by llama.cpp")] =
        OutType.f16,
    threads: Annotated[int | None, typer.Option(min=1, help="quantizer threads [default: all cores]")] = None,
    name: Annotated[str | None, typer.Option(help="general.name in the file [default: the folder name]")] = None,
    force: Annotated[bool, typer.Option(help="replace OUT if it exists")] = False,
) -> None:
    """Convert a checkpoint to GGUF for the llama_cpp engine (exit 2, nothing written, if unsupported)."""
    try:
        from model_backends.convert.pipeline import convert_checkpoint, inspect_checkpoint
        from model_backends.convert.report import RichProgress, describe, summary
    except ImportError as exc:
        console.print(f"[red]convert needs gguf and safetensors:[/] pip install '.\\[convert]' ({escape(str(exc))})")
        raise typer.Exit(EXIT_CONFIG) from exc
    from model_backends.errors import ConversionError

    try:
        found = inspect_checkpoint(hf_dir, outtype)
        console.print(describe(found))
        with RichProgress(console) as progress:
            result = convert_checkpoint(hf_dir, out, outtype, threads=threads, name=name, force=force,
                                        progress=progress, inspection=found)
    except ConversionError as exc:
        console.print(f"[red]cannot convert {hf_dir}:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_CONFIG) from exc
    console.print(summary(result))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
