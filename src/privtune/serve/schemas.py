"""Request bodies of the OpenAI API subset privtune serves, and the errors it answers with.

Unknown fields are ignored (clients send vendor extras); fields whose non-default value changes what the
OpenAI API would return (tools, logprobs, echo …) are refused with 400 rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOP = 4


class ApiError(Exception):
    """Answered as {"error": {"message", "type", "param", "code"}} with `status`."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(_Lenient):
    include_usage: bool = False


class CommonParams(_Lenient):
    model: str = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=128)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    user: str | None = Field(default=None, max_length=256)
    # accepted but must stay at their default
    logprobs: Any = None
    top_logprobs: Any = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v):
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        if any(not s for s in stops):
            raise ValueError("stop sequences must be non-empty")
        return stops

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, v):
        for k, b in (v or {}).items():
            if not k.lstrip("-").isdigit():
                raise ValueError(f"logit_bias keys are token ids, got {k!r}")
            if not -100.0 <= b <= 100.0:
                raise ValueError("logit_bias values must be between -100 and 100")
        return v

    def stops(self) -> tuple[str, ...]:
        return tuple(self.stop or ())

    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class ChatRequest(CommonParams):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    response_format: Any = None


class CompletionRequest(CommonParams):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None


def unsupported(req: CommonParams) -> tuple[str, str] | None:
    """(param, message) for the first field whose value privtune cannot honour, else None."""
    if req.logprobs not in (None, False, 0) or req.top_logprobs not in (None, 0):
        return "logprobs", "logprobs are not supported"
    if isinstance(req, ChatRequest):
        if req.tools or req.functions:
            return "tools", "tool calling is not supported"
        if req.tool_choice not in (None, "none"):
            return "tool_choice", "tool calling is not supported"
        fmt = req.response_format
        if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
            return "response_format", "only response_format {'type': 'text'} is supported"
    if isinstance(req, CompletionRequest):
        if req.echo:
            return "echo", "echo is not supported"
        if req.suffix:
            return "suffix", "suffix (fill-in-the-middle) is not supported"
        if req.best_of not in (None, 1, req.n):
            return "best_of", "best_of is not supported"
    return None


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "literal_error"}


def error_param(loc: tuple) -> str | None:
    """pydantic's error location as the OpenAI `param` string, e.g. messages[0].content."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "body" and not out:
            continue
        elif part in _TYPE_TAGS or any(c in part for c in "[(-"):
            continue  # union branch names, not fields
        else:
            out += ("." if out else "") + part
    return out or None
