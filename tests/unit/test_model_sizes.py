"""The generated model sizes: the trained tiny default unchanged, the GPU sizes in the range they promise."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from model_backends.cli import app
from model_backends.tiny.spec import SHAPES, SIZES, ModelSize, TinyShape, TinySpec, parameter_count


def test_the_default_build_is_the_trained_tiny_model() -> None:
    assert SHAPES[TinyShape.tiny] == TinySpec() and ModelSize.tiny not in SIZES
    assert parameter_count(TinySpec()) < 400_000  # a few MB: the model every other test runs


@pytest.mark.parametrize(("size", "low", "high"), [(ModelSize.small, 90e6, 110e6), (ModelSize.medium, 200e6, 300e6)])
def test_gpu_sizes_are_mistral_shaped_and_measurable(size: ModelSize, low: float, high: float) -> None:
    spec = SIZES[size]
    assert low < parameter_count(spec) < high
    assert spec.attention_head_dim == 64 and spec.num_heads // spec.num_kv_heads == 4
    assert spec.intermediate_size == spec.hidden_size * 7 // 2  # Mistral's MLP ratio


def test_shape_and_size_together_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["make-tiny-models", str(tmp_path / "out"), "--size", "small", "--shape", "gqa"])
    assert result.exit_code == 2 and "--shape applies to the trained tiny size only" in result.output
    assert not (tmp_path / "out").exists()
