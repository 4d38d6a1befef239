"""Convert a checkpoint end to end: inspect and refuse first, then write, quantize and rename.

Everything that can be refused (architecture, tokenizer, tensors, output path) is checked before
the first byte is written. Output goes to hidden temporary files next to OUT, renamed over it
only when complete; any failure or interruption removes them, so OUT is either the finished file
or untouched.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from model_backends.convert.checkpoint import Checkpoint
from model_backends.convert.hparams import ModelParams, load_params
from model_backends.convert.outtypes import OutType
from model_backends.convert.quantize import quantize
from model_backends.convert.tensors import TensorPlan, llama3_rope_factors, plan_tensors
from model_backends.convert.vocab import Vocabulary, read_vocabulary
from model_backends.convert.writer import write_gguf
from model_backends.errors import ConversionError


class ConvertProgress(Protocol):
    """Where the converter reports its phases and each finished tensor (the CLI draws a bar)."""

    def phase(self, label: str, tensors: int, total_bytes: int | None) -> None: ...

    def advance(self, tensor: str, nbytes: int) -> None: ...


class Quiet:
    """Reports nothing (library use, the tiny model build)."""

    def phase(self, label: str, tensors: int, total_bytes: int | None) -> None:
        pass

    def advance(self, tensor: str, nbytes: int) -> None:
        pass


@dataclass
class Inspection:
    """What the converter found in a checkpoint it accepts."""

    hf_dir: Path
    params: ModelParams
    vocab: Vocabulary
    plans: list[TensorPlan]
    checkpoint_bytes: int

    @property
    def notes(self) -> list[str]:
        return self.params.notes() + self.vocab.notes


@dataclass(frozen=True)
class ConversionResult:
    output: Path
    outtype: OutType
    size_bytes: int
    checkpoint_bytes: int
    tensors: int
    write_seconds: float
    quantize_seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.write_seconds + self.quantize_seconds


def inspect_checkpoint(hf_dir: Path, outtype: OutType) -> Inspection:
    """Read config, tokenizer and tensor headers; `ConversionError` for anything unsupported."""
    if not hf_dir.is_dir():
        raise ConversionError(f"{hf_dir} is not a directory (expected a Hugging Face checkpoint)")
    params = load_params(hf_dir)
    checkpoint = Checkpoint(hf_dir)
    plans = plan_tensors(checkpoint.tensors, params, outtype.float_type)
    n_vocab = checkpoint.tensors["model.embed_tokens.weight"].shape[0]
    return Inspection(hf_dir, params, read_vocabulary(hf_dir, n_vocab), plans, checkpoint.size_bytes)


def check_output(out: Path, force: bool) -> None:
    if out.is_dir():
        raise ConversionError(f"{out} is a directory; give the GGUF file's path")
    if out.exists() and not force:
        raise ConversionError(f"{out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise ConversionError(f"cannot write {out}: the folder {out.parent} does not exist")


@contextmanager
def scratch_files(out: Path) -> Iterator[Callable[[str], Path]]:
    """Make hidden temporary files beside `out` (same filesystem, so the final rename is atomic);
    whatever is still there on the way out, finished or not, is removed."""
    made: list[Path] = []

    def new(tag: str) -> Path:
        try:
            fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=f".{tag}.part")
        except OSError as exc:
            raise ConversionError(f"cannot write in {out.parent}: {_why(exc)}") from exc
        os.close(fd)
        made.append(Path(name))
        return made[-1]

    try:
        yield new
    finally:
        for path in made:
            path.unlink(missing_ok=True)


def _why(exc: OSError) -> str:
    """The system's reason; numpy reports a short write without one, which means no space left."""
    return exc.strerror or f"{exc} (is the disk full?)"


def _file_mode() -> int:
    """The mode a plainly created file gets under this process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _reader(checkpoint: Checkpoint, params: ModelParams) -> Callable[[TensorPlan], npt.NDArray[np.floating]]:
    def read(plan: TensorPlan) -> npt.NDArray[np.floating]:
        if plan.source is None:
            return llama3_rope_factors(params)
        return checkpoint.read(plan.source, plan.dtype)

    return read


def convert_checkpoint(
    hf_dir: Path,
    out: Path,
    outtype: OutType = OutType.f16,
    threads: int | None = None,
    name: str | None = None,
    force: bool = False,
    progress: ConvertProgress | None = None,
    inspection: Inspection | None = None,
) -> ConversionResult:
    """Convert `hf_dir` into the GGUF file `out`; `ConversionError` leaves `out` as it was."""
    progress = progress or Quiet()
    found = inspection or inspect_checkpoint(hf_dir, outtype)
    check_output(out, force)
    threads = threads or os.cpu_count() or 1
    float_type = OutType(outtype.float_type)
    with scratch_files(out) as scratch:
        written = scratch(float_type.value)
        started = time.perf_counter()
        progress.phase(f"writing {float_type.value}", len(found.plans), sum(p.nbytes for p in found.plans))
        try:
            write_gguf(written, name or hf_dir.resolve().name, found.params, found.vocab, found.plans,
                       _reader(Checkpoint(hf_dir), found.params), float_type.file_type,
                       lambda plan: progress.advance(plan.gguf_name, plan.nbytes))
        except OSError as exc:
            raise ConversionError(f"cannot write {out}: {_why(exc)}") from exc
        write_seconds = time.perf_counter() - started
        final, quantize_seconds = written, 0.0
        if outtype.quantized:
            final = scratch(outtype.value)
            started = time.perf_counter()
            progress.phase(f"quantizing to {outtype.value}", len(found.plans), None)
            quantize(written, final, outtype, threads, lambda tensor, total: progress.advance(tensor, 0))
            quantize_seconds = time.perf_counter() - started
            written.unlink()
        try:
            os.chmod(final, _file_mode())  # mkstemp's 0600 would hide the model from a service user
            os.replace(final, out)
        except OSError as exc:
            raise ConversionError(f"cannot write {out}: {_why(exc)}") from exc
    return ConversionResult(out, outtype, out.stat().st_size, found.checkpoint_bytes, len(found.plans),
                            write_seconds, quantize_seconds, found.notes)
