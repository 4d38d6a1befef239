"""Quantize a GGUF with llama.cpp's own quantizer (`llama_model_quantize`), through llama-cpp-python.

The quantizer reports each tensor on llama.cpp's log ("[  3/ 21] blk.0.attn_q.weight ..."); those
lines drive the progress bar while the call runs, and its errors explain a failure.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from model_backends.convert.outtypes import OutType
from model_backends.errors import ConversionError

_TENSOR_LINE = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]\s+(\S+)")
_LOG_ERROR = 4  # ggml_log_level GGML_LOG_LEVEL_ERROR (the bundled ggml; DEBUG is 1)


def parse_tensor_line(text: str) -> tuple[int, int, str] | None:
    """(index, total, tensor name) from a quantizer log line, or None for any other line."""
    match = _TENSOR_LINE.match(text)
    return (int(match[1]), int(match[2]), match[3]) if match else None


@contextmanager
def _llama_log(on_line: Callable[[int, str], None]) -> Iterator[None]:
    """Route llama.cpp's log to `on_line` for the duration, then hand it back to llama-cpp-python."""
    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        on_line(level, text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        yield
    finally:
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def quantize(source: Path, target: Path, outtype: OutType, threads: int,
             on_tensor: Callable[[str, int], None]) -> None:
    """Quantize `source` (f16/f32 GGUF) into `target`; `on_tensor(name, total)` after each tensor."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConversionError("quantizing needs llama-cpp-python: pip install '.[llama]'") from exc
    errors: list[str] = []

    def on_line(level: int, text: str) -> None:
        if (parsed := parse_tensor_line(text)) is not None:
            on_tensor(parsed[2], parsed[1])
        elif level == _LOG_ERROR and text.strip():
            errors.append(text.strip())

    params: Any = llama_cpp.llama_model_quantize_default_params()
    params.nthread = threads
    params.ftype = outtype.file_type
    with _llama_log(on_line):
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if status != 0:
        raise ConversionError(f"llama.cpp could not quantize to {outtype.value}: " + ("; ".join(errors) or
                                                                                    f"status {status}"))
