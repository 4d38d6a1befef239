"""Build the tiny models: tokenizer, trained weights, a Hugging Face checkpoint and its GGUF copy."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from model_backends.tiny.corpus import all_pairs, plain_sentences
from model_backends.tiny.gguf_export import write_gguf
from model_backends.tiny.spec import TinySpec
from model_backends.tiny.tokenizer import IM_END, PAD_TOKEN, save_hf_tokenizer, train_tokenizer
from model_backends.tiny.train import train_model

HF_DIR = "tiny-legal-hf"
GGUF_FILE = "tiny-legal.gguf"
MANIFEST = "manifest.json"
MODEL_NAME = "tiny-legal-mistral"


@dataclass(frozen=True)
class TinyModels:
    """Where the built models lie."""

    root: Path

    @property
    def hf_dir(self) -> Path:
        return self.root / HF_DIR

    @property
    def gguf_path(self) -> Path:
        return self.root / GGUF_FILE

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def is_built(self, spec: TinySpec) -> bool:
        """True when a finished build of this same spec is on disk."""
        if not (self.manifest_path.exists() and self.gguf_path.exists() and self.hf_dir.is_dir()):
            return False
        manifest = json.loads(self.manifest_path.read_text())
        # a field added to TinySpec after a build was made has its default in that build
        built = {**asdict(TinySpec()), **manifest.get("spec", {})}
        return built == asdict(spec)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_tiny_models(
    out_dir: Path, spec: TinySpec | None = None, force: bool = False, console: Console | None = None
) -> TinyModels:
    """Build (or reuse) the tiny models under `out_dir`; the manifest is written last, so a
    half-finished build is never mistaken for a finished one."""
    console = console or Console(stderr=True)
    models = TinyModels(Path(out_dir))
    spec = spec or TinySpec()
    if not force and models.is_built(spec):
        console.print(f"[green]tiny models already built[/] in {models.root}")
        return models
    models.root.mkdir(parents=True, exist_ok=True)
    models.manifest_path.unlink(missing_ok=True)
    started = time.perf_counter()
    pairs = all_pairs()
    tokenizer = train_tokenizer(plain_sentences(), spec.vocab_size)
    console.print(f"tokenizer: {tokenizer.get_vocab_size()} tokens from {len(pairs)} question/answer pairs")

    losses: list[float] = []
    with Progress(
        TextColumn("training"), BarColumn(), TextColumn("{task.completed}/{task.total} loss {task.fields[loss]}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        task = progress.add_task("train", total=spec.steps, loss="-")

        def on_step(step: int, loss: float) -> None:
            losses.append(loss)
            progress.update(task, advance=1, loss=f"{loss:.3f}")

        model = train_model(spec, tokenizer, pairs, on_step)

    model.generation_config.eos_token_id = tokenizer.token_to_id(IM_END)
    model.generation_config.pad_token_id = tokenizer.token_to_id(PAD_TOKEN)
    model.save_pretrained(models.hf_dir, safe_serialization=True)
    save_hf_tokenizer(tokenizer, models.hf_dir)
    write_gguf(models.hf_dir, models.gguf_path, MODEL_NAME)

    manifest = {
        "name": MODEL_NAME,
        "spec": asdict(spec),
        "final_loss": round(sum(losses[-20:]) / min(20, len(losses)), 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "gguf_sha256": _sha256(models.gguf_path),
        "safetensors_sha256": _sha256(models.hf_dir / "model.safetensors"),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    models.manifest_path.write_text(json.dumps(manifest, indent=2))
    console.print(
        f"[green]built[/] {manifest['parameters']:,} parameters, final loss {manifest['final_loss']}, "
        f"in {manifest['build_seconds']} s → {models.hf_dir} and {models.gguf_path}"
    )
    return models
