"""Untrained models big enough to measure on a GPU: random weights of a `SIZES` shape, in half precision.

Training ~200 M parameters would take hours on a CPU, and what a GPU measures (load time, memory per
precision, tokens/s) does not depend on what the weights say. The layout is the trained build's
(checkpoint, GGUF copy, manifest written last), so `TinyModels` finds the files, and the tokenizer
and chat template are the tiny model's: every engine loads them through the production code.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from model_backends.convert.outtypes import OutType
from model_backends.convert.pipeline import convert_checkpoint
from model_backends.tiny.build import MODEL_NAME, TinyModels
from model_backends.tiny.spec import SIZES, HalfDtype, ModelSize, parameter_count
from model_backends.tiny.untrained import save_untrained


def is_built(models: TinyModels, size: ModelSize, dtype: HalfDtype) -> bool:
    """True when a finished build of this size and dtype is on disk."""
    if not models.is_built(SIZES[size]):
        return False
    manifest = json.loads(models.manifest_path.read_text())
    return bool(manifest.get("size") == size.value and manifest.get("dtype") == dtype.value)


def build_sized_models(
    out_dir: Path, size: ModelSize, dtype: HalfDtype = HalfDtype.float16, force: bool = False, console: Console | None = None
) -> TinyModels:
    """Build (or reuse) an untrained model of `size` under `out_dir`: checkpoint in `dtype`, GGUF in f16."""
    if size not in SIZES:
        raise ValueError(f"size {size.value!r} is trained, not generated: use build_tiny_models")
    console = console or Console(stderr=True)
    spec = SIZES[size]
    models = TinyModels(Path(out_dir))
    if not force and is_built(models, size, dtype):
        console.print(f"[green]{size.value} model already built[/] in {models.root}")
        return models
    models.root.mkdir(parents=True, exist_ok=True)
    models.manifest_path.unlink(missing_ok=True)
    started = time.perf_counter()
    with console.status(f"{size.value}: {parameter_count(spec) / 1e6:.0f} M random parameters in {dtype.value}"):
        save_untrained(models.hf_dir, spec, dtype=dtype.value, max_shard_size="5GB")
    checkpoint_s = time.perf_counter() - started
    with console.status("writing the GGUF copy (f16)"):
        convert_checkpoint(models.hf_dir, models.gguf_path, OutType.f16, name=f"{MODEL_NAME}-{size.value}", force=True)
    weights = sum(p.stat().st_size for p in models.hf_dir.glob("*.safetensors"))
    vocab_size = json.loads((models.hf_dir / "config.json").read_text())["vocab_size"]
    manifest = {
        "name": f"{MODEL_NAME}-{size.value}",
        "size": size.value,
        "trained": False,
        "dtype": dtype.value,
        "spec": asdict(spec),
        "parameters": parameter_count(spec, vocab_size),
        "safetensors_bytes": weights,
        "gguf_bytes": models.gguf_path.stat().st_size,
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    models.manifest_path.write_text(json.dumps(manifest, indent=2))
    console.print(
        f"[green]built[/] {size.value}: {manifest['parameters']:,} untrained parameters, {weights / 2**20:.0f} MiB "
        f"of {dtype.value} weights (checkpoint in {checkpoint_s:.1f} s), in {manifest['build_seconds']} s "
        f"→ {models.hf_dir} and {models.gguf_path}"
    )
    return models
