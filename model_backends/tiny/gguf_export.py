"""The tiny model's GGUF copy: the general converter (`model_backends.convert`) at float32.

The same code that converts a real Mistral/Llama checkpoint writes the tiny one, so every test
that runs the llama engine on the tiny GGUF also checks the converter. Float32 keeps the copy
exact: both engines answer token for token alike.
"""

from __future__ import annotations

from pathlib import Path

from model_backends.convert.outtypes import OutType
from model_backends.convert.pipeline import convert_checkpoint


def write_gguf(hf_dir: Path, path: Path, name: str) -> None:
    """Convert the saved checkpoint in `hf_dir` to `path` (replaced if there)."""
    convert_checkpoint(hf_dir, path, OutType.f32, name=name, force=True)
