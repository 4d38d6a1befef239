"""Every error the model backend raises on purpose, under one root.

BackendError
├── EngineError             the engine cannot load or run; the message says what to change
│   ├── EngineUnavailable   a dependency or device the engine needs is missing (CUDA for 8-bit)
│   └── EngineRequestError  the engine refused the request itself (an upstream's 4xx): the client's to fix
├── ChatFormatError         the chat format cannot render these messages (also a ValueError)
├── CompletionError         a request that cannot be answered, with its HTTP status
├── QueueFull               every waiting place is taken; the client should retry later
├── ClientGone              the client closed the connection before the answer was ready
└── ConversionError         `model-backend convert` refuses a checkpoint or an output path (exit 2)
"""

from __future__ import annotations


class BackendError(Exception):
    """The root of the model backend's own errors."""


class EngineError(BackendError):
    """The engine cannot load or run; the message says what to change."""


class EngineUnavailable(EngineError):
    """A dependency or device the engine needs is missing (e.g. CUDA for 8-bit)."""


class EngineRequestError(EngineError):
    """The request itself was refused by the engine (e.g. an upstream's 4xx): the client's to fix."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class ChatFormatError(BackendError, ValueError):
    """The chosen format cannot render these messages (or the model has no template)."""


class CompletionError(BackendError):
    """A request that cannot be answered, with the HTTP status and a message saying why."""

    def __init__(
        self, status: int, message: str, type_: str, param: str | None = None,
        code: str | None = None, retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}


class QueueFull(BackendError):
    """Every waiting place is taken; the client should retry later."""


class ClientGone(BackendError):
    """The client closed the connection before the answer was ready."""


class ConversionError(BackendError):
    """A checkpoint `model-backend convert` cannot turn into GGUF, or an output it cannot write; says which."""
