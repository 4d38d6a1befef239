"""The output types `convert` offers: floats written directly, the rest quantized by llama.cpp."""

from __future__ import annotations

from enum import StrEnum

# Output type -> gguf's LlamaFileType member (llama.cpp's `llama_ftype`); gguf is imported only when
# a conversion runs, so the CLI starts without it.
_FILE_TYPES = {
    "f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0", "q6_k": "MOSTLY_Q6_K",
    "q5_k_m": "MOSTLY_Q5_K_M", "q5_k_s": "MOSTLY_Q5_K_S", "q5_0": "MOSTLY_Q5_0", "q4_k_m": "MOSTLY_Q4_K_M",
    "q4_k_s": "MOSTLY_Q4_K_S", "q4_0": "MOSTLY_Q4_0", "q3_k_m": "MOSTLY_Q3_K_M", "q2_k": "MOSTLY_Q2_K",
}


class OutType(StrEnum):
    f32 = "f32"
    f16 = "f16"
    q8_0 = "q8_0"
    q6_k = "q6_k"
    q5_k_m = "q5_k_m"
    q5_k_s = "q5_k_s"
    q5_0 = "q5_0"
    q4_k_m = "q4_k_m"
    q4_k_s = "q4_k_s"
    q4_0 = "q4_0"
    q3_k_m = "q3_k_m"
    q2_k = "q2_k"

    @property
    def file_type(self) -> int:
        """llama.cpp's `llama_ftype` for this type (the GGUF's general.file_type)."""
        import gguf

        return int(getattr(gguf.LlamaFileType, _FILE_TYPES[self.value]))

    @property
    def quantized(self) -> bool:
        return self not in (OutType.f32, OutType.f16)

    @property
    def float_type(self) -> str:
        """What the gguf writer produces: the output itself, or the f16 file llama.cpp quantizes from."""
        return "f32" if self is OutType.f32 else "f16"
