"""What `model-backend convert` shows: what it found, a progress bar per phase, and a summary."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from model_backends.convert.pipeline import ConversionResult, Inspection


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def describe(found: Inspection) -> str:
    """One line naming what will be converted, so a wrong directory is noticed at once."""
    p = found.params
    scaling = "" if p.rope_scaling.kind == "default" else f" ({p.rope_scaling.kind} ×{p.rope_scaling.factor:g})"
    return (
        f"{p.architecture}: {p.n_layers} layer{'s' if p.n_layers != 1 else ''}, hidden {p.hidden_size}, {p.n_head} heads / {p.n_kv_head} KV "
        f"(head_dim {p.head_dim}), vocab {len(found.vocab.tokens)} ({found.vocab.pre}), "
        f"RoPE θ {p.rope_theta:,.0f}{scaling}, {'tied' if p.tied_embeddings else 'untied'} embeddings, "
        f"context {p.context_length}; checkpoint {_size(found.checkpoint_bytes)}"
    )


class RichProgress:
    """A bar per phase with tensors done of all and, where known, bytes written."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<20}"), BarColumn(), TextColumn("{task.fields[tensors]} tensors"),
            TextColumn("{task.fields[bytes]}"), TimeElapsedColumn(), console=console,
        )
        self._task: TaskID | None = None
        self._done, self._count, self._bytes, self._total_bytes = 0, 0, 0, 0

    def phase(self, label: str, tensors: int, total_bytes: int | None) -> None:
        """A new bar; it measures bytes when their total is known, else tensors (the quantizer)."""
        self._done, self._count, self._bytes, self._total_bytes = 0, tensors, 0, total_bytes or 0
        self._task = self._progress.add_task(label, total=total_bytes or tensors, tensors=self._tensors(),
                                             bytes=self._moved())

    def _tensors(self) -> str:
        return f"{self._done}/{self._count}"

    def _moved(self) -> str:
        return f"{_size(self._bytes)} / {_size(self._total_bytes)}" if self._total_bytes else ""

    def advance(self, tensor: str, nbytes: int) -> None:
        if self._task is None:
            return
        self._done += 1
        self._bytes += nbytes
        self._progress.update(self._task, advance=nbytes if self._total_bytes else 1, tensors=self._tensors(),
                              bytes=self._moved())

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()


def summary(result: ConversionResult) -> Table:
    table = Table(title=f"converted → {result.output}", show_header=False, title_justify="left")
    table.add_row("type", result.outtype.value)
    table.add_row("size", f"{_size(result.size_bytes)} ({result.size_bytes / result.checkpoint_bytes:.0%} "
                          f"of the {_size(result.checkpoint_bytes)} checkpoint)")
    table.add_row("tensors", str(result.tensors))
    timing = _seconds(result.seconds)
    if result.quantize_seconds:
        timing += f" (writing {_seconds(result.write_seconds)}, quantizing {_seconds(result.quantize_seconds)})"
    table.add_row("time", timing)
    for note in result.notes:
        table.add_row("note", note)
    return table
