"""Vistral's engine: a Hugging Face checkpoint run by transformers + torch.

On a GPU it loads in 8-bit through bitsandbytes (the production Vistral-24B set-up), or 4-bit NF4;
on a CPU it runs in full precision, and asking for quantization there is refused at load with a
clear message. A model that does not fit the GPU within `max_memory` is refused too (rather than
served slowly from the CPU or the disk), so a cascade falls through to its next, smaller spec.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

from model_backends.chat_format import ChatFormat
from model_backends.config import TransformersOptions
from model_backends.engines.base import EngineInfo, LocalEngine, Piece, SamplingParams
from model_backends.engines.detokenize import TextPieces
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
    except Exception as exc:  # installed but broken (a CUDA library it cannot find): the cascade goes on
        raise EngineUnavailable(f"quantization '{quantization}': bitsandbytes cannot load: {exc}") from exc


def quantization_config(quantization: str, compute_dtype: Any) -> Any:
    """bitsandbytes settings: LLM.int8 for 8-bit; NF4 computing in `compute_dtype` for 4-bit."""
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype)


def device_caps(max_memory: Mapping[str, str]) -> dict[int | str, str]:
    """`max_memory` as accelerate wants it: GPU indices as ints ("0" → 0), "cpu"/"disk" as they are."""
    return {int(k) if k.isdigit() else k: v for k, v in max_memory.items()}


def load_kwargs(options: TransformersOptions, device: str, torch: Any) -> dict[str, Any]:
    """What `from_pretrained` gets for these options on this device."""
    dtype_names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if options.dtype == "auto":
        dtype = torch.float16 if device == "cuda" else torch.float32
    else:
        dtype = dtype_names[options.dtype]
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": options.trust_remote_code}
    if options.quantization != "none":
        kwargs["quantization_config"] = quantization_config(options.quantization, dtype)
    if device == "cuda":
        kwargs["device_map"] = "auto"
        if options.max_memory:
            kwargs["max_memory"] = device_caps(options.max_memory)
    return kwargs


def offloaded(device_map: Mapping[str, object], max_memory: Mapping[str, str] | None) -> list[str]:
    """Modules a `device_map="auto"` load put on the CPU or the disk that `max_memory` gave no room there:
    the model does not fit the GPU. Naming "cpu" (or "disk") in `max_memory` allows such offload on purpose."""
    allowed = {k for k in (max_memory or {}) if k in ("cpu", "disk")}
    return [name for name, where in device_map.items() if where in ("cpu", "disk") and where not in allowed]


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
        q = self._options.quantization
        precision = q if q != "none" else f"unquantized, dtype {self._options.dtype}"
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self._path, trust_remote_code=self._options.trust_remote_code)
            # Any: transformers types `.to()` through a wrapper that rejects a device string.
            model: Any = AutoModelForCausalLM.from_pretrained(self._path, **load_kwargs(self._options, self._device, torch))
        except torch.cuda.OutOfMemoryError as exc:
            self._release()
            raise EngineUnavailable(f"out of GPU memory loading {self._path} ({precision}): {exc}") from exc
        except Exception as exc:  # any library failure: the cascade tries the next spec, /ready says why
            self._release()
            raise EngineError(f"transformers could not load {self._path} ({precision}): {exc}") from exc
        if self._device == "cuda" and (away := offloaded(getattr(model, "hf_device_map", None) or {},
                                                         self._options.max_memory)):
            del model
            self._release()
            raise EngineUnavailable(
                f"{self._path} ({precision}) does not fit the GPU within max_memory {self._options.max_memory}: "
                f"{len(away)} modules would run from the CPU or the disk ({', '.join(away[:3])}"
                f"{', ...' if len(away) > 3 else ''}); "
                "give it more GPU memory, a smaller quantization, or add \"cpu\" to max_memory to offload on purpose"
            )
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
                "max_memory": self._options.max_memory, "weights_bytes": self.weights_bytes(),
            },
        )

    def weights_bytes(self) -> int | None:
        return None if self._model is None else int(self._model.get_memory_footprint())

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
        from transformers import StoppingCriteria, StoppingCriteriaList

        torch = self._torch
        input_ids = torch.tensor([list(token_ids)], dtype=torch.long, device=self._model.device)
        stop = threading.Event()  # set by a cancelled request or by a consumer that stopped reading

        class _StopWhenAsked(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                done = cancel.is_set() or stop.is_set()
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

        tokenizer = self._tokenizer
        streamer = TextPieces(lambda ids: str(tokenizer.decode(ids, skip_special_tokens=True)))
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
        self._tokenizer = None
        self._release()

    def _release(self) -> None:
        """Drop the model and hand its GPU memory back at once, for the next engine of a cascade."""
        self._model = None
        gc.collect()
        torch = sys.modules.get("torch")
        if self._device == "cuda" and torch is not None:
            torch.cuda.empty_cache()
