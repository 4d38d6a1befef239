"""Stream a safetensors checkpoint (one file or an indexed set of shards) one tensor at a time.

Only one tensor is held in memory at once: the converter reads it, writes it out and drops it,
so memory stays near the largest tensor however large the checkpoint is. Each tensor is read
through its own short-lived `safe_open`: a handle kept open maps its whole shard, and every page
read through it stays resident (counted in RSS) until the handle closes. bfloat16 tensors, which
numpy cannot hold, are read through torch (installed wherever transformers is).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from model_backends.convert.tensors import SourceTensor
from model_backends.errors import ConversionError

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


def _shards(hf_dir: Path) -> list[str]:
    """Shard file names in the order the index lists them (or the one file)."""
    index = hf_dir / INDEX
    if index.is_file():
        try:
            weight_map: dict[str, str] = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConversionError(f"cannot read {index}: {exc}") from exc
        return list(dict.fromkeys(weight_map.values()))
    if (hf_dir / SINGLE).is_file():
        return [SINGLE]
    if any(hf_dir.glob("pytorch_model*.bin")):
        raise ConversionError(f"{hf_dir} holds PyTorch .bin weights; convert needs safetensors "
                              "(save the model again with safe_serialization=True)")
    raise ConversionError(f"{hf_dir} has no {SINGLE} or {INDEX}")


class Checkpoint:
    """The checkpoint's tensors by name (from the shards' headers), each read only when asked for."""

    def __init__(self, hf_dir: Path) -> None:
        from safetensors import safe_open

        self._dir = hf_dir
        self._safe_open = safe_open
        self.shards = _shards(hf_dir)
        self.tensors: dict[str, SourceTensor] = {}
        for shard in self.shards:
            path = hf_dir / shard
            if not path.is_file():
                raise ConversionError(f"the index names shard {shard}, which is not in {hf_dir}")
            try:
                with safe_open(str(path), framework="numpy") as handle:
                    for name in handle.keys():
                        header = handle.get_slice(name)
                        self.tensors[name] = SourceTensor(name, shard, header.get_dtype(), tuple(header.get_shape()))
            except (OSError, ValueError) as exc:
                raise ConversionError(f"cannot read {path}: {exc}") from exc

    @property
    def size_bytes(self) -> int:
        return sum((self._dir / shard).stat().st_size for shard in self.shards)

    def read(self, name: str, dtype: type[np.floating]) -> npt.NDArray[np.floating]:
        """One tensor as a numpy array of `dtype`."""
        source = self.tensors[name]
        path = str(self._dir / source.shard)
        try:
            if source.dtype == "BF16":
                return self._read_bf16(path, name, dtype)
            with self._safe_open(path, framework="numpy") as handle:
                array: npt.NDArray[np.floating] = handle.get_tensor(name)
        except OSError as exc:  # not the output's fault: say which file
            raise ConversionError(f"cannot read {name} from {path}: {exc.strerror or exc}") from exc
        return array.astype(dtype, copy=False)

    def _read_bf16(self, path: str, name: str, dtype: type[np.floating]) -> npt.NDArray[np.floating]:
        try:
            import torch
        except ImportError as exc:
            raise ConversionError("this checkpoint holds bfloat16 tensors, which need torch to read: "
                                  "pip install '.[vistral]'") from exc
        with self._safe_open(path, framework="pt") as handle:
            tensor = handle.get_tensor(name)
        array: npt.NDArray[np.floating] = tensor.to(torch.float16 if dtype is np.float16 else torch.float32).numpy()
        return array
