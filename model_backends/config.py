"""Settings of one model backend: engine, model, limits, fault injection.

Every option has a default that works on a laptop; production sets the engine, the model path
and, for Vistral on a GPU, `transformers.quantization: 8bit`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from model_backends.chat_format import ChatFormat

EngineName = Literal["llama_cpp", "transformers", "openai_upstream", "mock"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LlamaCppOptions(_Strict):
    n_ctx: int | None = Field(
        None, ge=64, description="context window in tokens; default: the model's training context (n_ctx_train)"
    )
    n_threads: int | None = Field(None, ge=1, description="CPU threads; default: half the cores")
    n_gpu_layers: int = Field(0, ge=-1, description="layers offloaded to the GPU; -1 offloads all")
    seed: int = 0


class TransformersOptions(_Strict):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    quantization: Literal["none", "8bit", "4bit"] = Field(
        "none", description="bitsandbytes quantization, 8bit (LLM.int8) or 4bit (NF4); needs CUDA (Vistral-24B runs as 8bit)"
    )
    max_memory: dict[str, str] | None = Field(
        None, description='per-device caps, e.g. {"0": "14GiB"}; a model that does not fit the GPU within them is '
                          'refused (the next fallback loads) unless "cpu" is named to offload there on purpose')
    trust_remote_code: bool = False
    torch_threads: int | None = Field(None, ge=1)


class OpenAIUpstreamOptions(_Strict):
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: SecretStr | None = Field(None, description="sent as a bearer token; prefer the env variable")
    upstream_model: str | None = Field(None, description="model name sent upstream; default: --model")
    timeout_s: float = Field(300.0, gt=0)
    context_window: int | None = Field(None, ge=1, description="advertised context window, if known")


class EngineSpec(_Strict):
    """One engine to try; the backend tries the primary spec, then each fallback in order."""

    engine: EngineName = "llama_cpp"
    model: str = ""
    llama_cpp: LlamaCppOptions = LlamaCppOptions()
    transformers: TransformersOptions = TransformersOptions()
    openai_upstream: OpenAIUpstreamOptions = OpenAIUpstreamOptions()


class AnswerFault(StrEnum):
    """A bad answer served with HTTP 200, for drills of the answer checks (a model can fail politely)."""

    none = "none"
    empty = "empty"  # nothing at all
    latin = "latin"  # fluent text in the Latin alphabet where Russian is expected
    repeat = "repeat"  # one token over and over until max_tokens (finish_reason "length")


class FaultOptions(_Strict):
    """Fault injection for rollback drills. Off by default; announced loudly when on."""

    error_rate: float = Field(0.0, ge=0, le=1, description="share of requests answered 500")
    latency_ms: int = Field(0, ge=0, description="added before the first token")
    hang_rate: float = Field(0.0, ge=0, le=1, description="share of requests never answered")
    after_requests: int = Field(0, ge=0, description="serve this many requests cleanly first (a backend that degrades later)")
    load_delay_s: float = Field(0.0, ge=0, description="wait this long before loading the model (a slow start)")
    answer: AnswerFault = Field(AnswerFault.none, description="serve this kind of bad answer (HTTP 200)")
    answer_rate: float = Field(1.0, ge=0, le=1, description="share of answered requests given the bad answer")
    seed: int | None = None

    @property
    def enabled(self) -> bool:
        return (self.error_rate > 0 or self.latency_ms > 0 or self.hang_rate > 0 or self.load_delay_s > 0
                or (self.answer is not AnswerFault.none and self.answer_rate > 0))


class GenerationDefaults(_Strict):
    max_tokens: int = Field(1024, ge=1, le=4096)
    temperature: float = Field(0.3, ge=0, le=2)
    top_p: float = Field(0.8, gt=0, le=1)


class BackendConfig(BaseSettings, EngineSpec):
    """Everything `model-backend serve` reads (file, then `MODEL_BACKEND_*` env, then flags)."""

    model_config = SettingsConfigDict(env_prefix="MODEL_BACKEND_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8001, ge=0, le=65535)
    model_name: str | None = Field(None, description="name shown to clients; default: the file name")
    chat_format: ChatFormat = ChatFormat.auto
    fallbacks: list[EngineSpec] = Field(default_factory=list)
    allow_mock: bool = Field(False, description="permit the canned 'mock' engine (never silently)")
    generation: GenerationDefaults = GenerationDefaults()
    queue_size: int = Field(32, ge=0, description="requests that may wait for the model; more get 503")
    request_timeout_s: float = Field(300.0, gt=0)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    warmup: bool = True
    faults: FaultOptions = FaultOptions()
