"""Vistral's engine: a Hugging Face checkpoint run by transformers + torch.

On a GPU it loads in 8-bit through bitsandbytes (the production Vistral-24B set-up); on a CPU it
runs in full precision, and asking for quantization there is refused at load with a clear message.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from model_backends.chat_format import ChatFormat
from model_backends.config import TransformersOptions
from model_backends.engines.base import EngineInfo, LocalEngine, Piece, SamplingParams
from model_backends.errors import EngineError, EngineUnavailable


def resolve_device(requested: str, cuda_available: bool) -> str:
    """`auto` means CUDA when present; asking for CUDA without it is an error."""
    if requested == "cuda" and not cuda_available:
        raise EngineUnavailable("device 'cuda' was requested but torch sees no CUDA GPU; use device: cpu")
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    return requested


def check_quantization(quantization: str, device: str) -> None:
    """bitsandbytes 8/4-bit runs on CUDA only: refuse early instead of failing deep inside it."""
    if quantization == "none":
        return
    if device != "cuda":
        raise EngineUnavailable(
            f"quantization '{quantization}' needs a CUDA GPU (bitsandbytes), but the device is {device}; "
            "set transformers.quantization: none to run unquantized on the CPU"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(f"quantization '{quantization}' needs bitsandbytes: pip install bitsandbytes") from exc


class HFTransformersEngine(LocalEngine):
    name = "transformers"

    def __init__(self, model_path: str, options: TransformersOptions, chat_format: ChatFormat, model_name: str) -> None:
        super().__init__(chat_format)
        self._path = model_path
        self._options = options
        self._model_name = model_name
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"

    def _load_kwargs(self, torch: Any) -> dict[str, Any]:
        dtype_names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
        if self._options.dtype == "auto":
            dtype = torch.float16 if self._device == "cuda" else torch.float32
        else:
            dtype = dtype_names[self._options.dtype]
        kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": self._options.trust_remote_code}
        if self._options.quantization != "none":
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_8bit=self._options.quantization == "8bit",
                load_in_4bit=self._options.quantization == "4bit",
            )
        if self._device == "cuda":
            kwargs["device_map"] = "auto"
            if self._options.max_memory:
                kwargs["max_memory"] = {
                    int(k) if k.isdigit() else k: v for k, v in self._options.max_memory.items()
                }
        return kwargs

    def load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise EngineUnavailable("transformers/torch are not installed: pip install '.[vistral]'") from exc
        if not Path(self._path).exists():
            raise EngineError(f"model directory {self._path} does not exist")
        self._device = resolve_device(self._options.device, torch.cuda.is_available())
        check_quantization(self._options.quantization, self._device)
        if self._options.torch_threads:
            torch.set_num_threads(self._options.torch_threads)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self._path, trust_remote_code=self._options.trust_remote_code)
            # Any: transformers types `.to()` through a wrapper that rejects a device string.
            model: Any = AutoModelForCausalLM.from_pretrained(self._path, **self._load_kwargs(torch))
        except (OSError, ValueError) as exc:
            raise EngineError(f"transformers could not load {self._path}: {exc}") from exc
        if self._device == "cpu":
            model = model.to("cpu")
        self._model = model.eval()
        self._torch = torch
        tok = self._tokenizer
        self._set_formatter(tok.chat_template, tok.bos_token or "", tok.eos_token or "")
        self._eos_ids = self._end_token_ids()

    def _end_token_ids(self) -> set[int]:
        configured = self._model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
        if self._tokenizer.eos_token_id is not None:
            ids.add(self._tokenizer.eos_token_id)
        return ids

    def info(self) -> EngineInfo:
        return EngineInfo(
            engine=self.name,
            model=self._model_name,
            context_window=self._context_window(),
            chat_format=self.chat_format_name,
            details={
                "path": self._path, "device": self._device,
                "quantization": self._options.quantization, "dtype": str(getattr(self._model, "dtype", "")),
            },
        )

    def _context_window(self) -> int | None:
        if self._model is None:
            return None
        return getattr(self._model.config, "max_position_embeddings", None)

    def _tokenize(self, text: str) -> list[int]:
        if self._tokenizer is None:
            raise EngineError("engine is not loaded")
        ids: list[int] = self._tokenizer(text, add_special_tokens=False).input_ids
        return ids

    def _generate(self, token_ids: Sequence[int], params: SamplingParams, cancel: threading.Event) -> Generator[Piece, None, None]:
        if self._model is None:
            raise EngineError("engine is not loaded")
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        torch = self._torch
        input_ids = torch.tensor([list(token_ids)], dtype=torch.long, device=self._model.device)
        stop = threading.Event()  # set by a cancelled request or by a consumer that stopped reading

        class _StopWhenAsked(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                done = cancel.is_set() or stop.is_set()
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

        class _CountingStreamer(TextIteratorStreamer):
            generated = 0

            def put(self, value: Any) -> None:
                if not self.next_tokens_are_prompt:
                    self.generated += int(value.numel())
                super().put(value)

        streamer = _CountingStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        budget = params.max_tokens
        if (window := self._context_window()) is not None:
            budget = min(budget, window - int(input_ids.shape[1]))
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
            if params.temperature > 0 else {"do_sample": False}
        )
        if params.ignore_eos:
            sampling["min_new_tokens"] = budget  # suppresses the end token until the budget is spent
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    result["sequences"] = self._model.generate(
                        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=budget,
                        streamer=streamer, stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]),
                        pad_token_id=self._tokenizer.pad_token_id or next(iter(self._eos_ids), 0),
                        eos_token_id=sorted(self._eos_ids) or None, **sampling,
                    )
            except BaseException as exc:  # surfaced to the consumer below
                result["error"] = exc
                streamer.end()

        worker = threading.Thread(target=run, name="hf-generate", daemon=True)
        worker.start()
        reported = 0
        try:
            for text in streamer:
                tokens, reported = streamer.generated - reported, streamer.generated
                yield Piece(text=text, tokens=tokens)
        finally:
            stop.set()
            worker.join()
        if "error" in result:
            raise EngineError(f"generation failed: {result['error']}") from result["error"]
        yield Piece(tokens=streamer.generated - reported, finish_reason=self._finish_reason(result, cancel))

    def _finish_reason(self, result: dict[str, Any], cancel: threading.Event) -> str:
        if cancel.is_set():
            return "cancelled"
        sequences = result.get("sequences")
        if sequences is not None and int(sequences[0, -1]) in self._eos_ids:
            return "stop"
        return "length"

    def close(self) -> None:
        self._model = None
        self._tokenizer = None
