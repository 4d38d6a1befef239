"""Saiga's engine: a GGUF model run by llama-cpp-python."""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from model_backends.chat_format import ChatFormat
from model_backends.config import LlamaCppOptions
from model_backends.engines.base import EngineInfo, LocalEngine, Piece, SamplingParams, Utf8Pieces
from model_backends.errors import EngineError, EngineUnavailable


def default_threads() -> int:
    """Half the cores (as llama.cpp's own server does): the other half keeps the HTTP side and
    tokenization responsive instead of fighting llama.cpp's spinning workers."""
    return max(1, (os.cpu_count() or 2) // 2)


class LlamaCppEngine(LocalEngine):
    name = "llama_cpp"

    def __init__(self, model_path: str, options: LlamaCppOptions, chat_format: ChatFormat, model_name: str) -> None:
        super().__init__(chat_format)
        self._path = Path(model_path)
        self._options = options
        self._model_name = model_name
        self._llm: Any = None  # llama_cpp.Llama once loaded

    def load(self) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise EngineUnavailable("llama-cpp-python is not installed: pip install '.[llama]'") from exc
        if not self._path.is_file():
            raise EngineError(f"GGUF file {self._path} does not exist")
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(self._path),
                n_ctx=self._options.n_ctx or 0,  # 0: the model's training context (n_ctx_train)
                n_threads=self._options.n_threads or default_threads(),
                n_gpu_layers=self._options.n_gpu_layers,
                seed=self._options.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise EngineError(f"llama.cpp could not load {self._path}: {exc}") from exc
        self._vocab = self._llm._model.vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog
        model = self._llm._model
        self._set_formatter(
            self._llm.metadata.get("tokenizer.chat_template"),
            model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else "",
            model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else "",
        )

    def info(self) -> EngineInfo:
        return EngineInfo(
            engine=self.name,
            model=self._model_name,
            context_window=self._llm.n_ctx() if self._llm else self._options.n_ctx,
            chat_format=self.chat_format_name,
            details={
                "path": str(self._path), "n_gpu_layers": self._options.n_gpu_layers,
                "n_ctx_train": self._llm._model.n_ctx_train() if self._llm else None,
            },
        )

    def _tokenize(self, text: str) -> list[int]:
        if self._llm is None:
            raise EngineError("engine is not loaded")
        tokens: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return tokens

    def _generate(self, token_ids: Sequence[int], params: SamplingParams, cancel: threading.Event) -> Generator[Piece, None, None]:
        llm = self._llm
        if llm is None:
            raise EngineError("engine is not loaded")
        prompt = list(token_ids)
        budget = min(params.max_tokens, llm.n_ctx() - len(prompt))
        decoder = Utf8Pieces()
        produced = 0
        finish = "length"
        greedy = params.temperature == 0
        for token in llm.generate(
            prompt, temp=params.temperature, top_p=params.top_p, top_k=1 if greedy else 0,
            min_p=0.0, repeat_penalty=1.0, reset=True,
        ):
            if cancel.is_set():
                finish = "cancelled"
                break
            if not params.ignore_eos and self._is_eog(self._vocab, token):
                finish = "stop"  # the end token is generated, so it counts (as in transformers)
                break
            produced += 1
            yield Piece(text=decoder.feed(llm.detokenize([token])), tokens=1)
            if produced >= budget:
                break
        yield Piece(text=decoder.flush(), tokens=1 if finish == "stop" else 0, finish_reason=finish)

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
