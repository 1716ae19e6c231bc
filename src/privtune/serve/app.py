"""`privtune serve`: tuned adapters behind an authenticated, OpenAI-compatible HTTP API.

Routes: POST /v1/chat/completions and /v1/completions (stream and non-stream, SSE exactly as OpenAI sends
it), GET /v1/models, GET /health, GET /metrics (Prometheus). The request's `model` picks the adapter; the
base model's own name serves the base with adapters off. Every request is checked in this order: key (401),
role (403), rate limit (429 + Retry-After), body size (413), JSON (400), fields (422), model (404), permission
for that model (403), prompt size (413), context length (400), queue room (503). Every answer, error or not,
is counted in /metrics and written to the request log with the key's name and a sha256 of the prompt; raw
text only with `log_text: true`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter as Tally
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from starlette.requests import Request

from privtune import fsio
from privtune.config import ServeConfig
from privtune.errors import InputError
from privtune.paths import privtune_home
from privtune.serve.auth import ApiKey, Authenticator, RateLimiter, retry_after_header
from privtune.serve.batching import Delta, Engine, GenRequest, QueueFull, SamplingParams
from privtune.serve.guard import OutputGuard, RedactFn, StreamBuffer, make_redact_fn
from privtune.serve.loader import Served
from privtune.serve.schemas import (
    ApiError,
    ChatRequest,
    CommonParams,
    CompletionRequest,
    error_param,
    unsupported,
)

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """Prometheus series in a registry of their own (one server per process, but many in tests)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("privtune_requests", "Requests answered", ["model", "endpoint", "status"], registry=r)
        self.errors = Counter("privtune_errors", "Requests answered with an error", ["model", "endpoint", "code"],
                              registry=r)
        self.latency = Histogram("privtune_request_latency_seconds", "Time from request to last byte",
                                 ["model", "endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("privtune_time_to_first_token_seconds", "Time to the first output text", ["model"],
                              buckets=LATENCY_BUCKETS, registry=r)
        self.prompt_tokens = Counter("privtune_prompt_tokens", "Prompt tokens processed", ["model"], registry=r)
        self.completion_tokens = Counter("privtune_completion_tokens", "Tokens generated", ["model"], registry=r)
        self.redactions = Counter("privtune_guard_redactions", "Entities the output guard removed",
                                  ["model", "entity_type"], registry=r)
        self.batch = Histogram("privtune_batch_size", "Rows per decode step", buckets=(1, 2, 4, 8, 16, 32, 64),
                               registry=r)
        self.queue = Gauge("privtune_queue_depth", "Requests waiting for a batch slot", registry=r)
        self.active = Gauge("privtune_active_rows", "Requests being decoded", registry=r)


@dataclass
class ServerState:
    served: Served
    engine: Engine
    auth: Authenticator
    limiter: RateLimiter
    guard: OutputGuard
    cfg: ServeConfig
    metrics: Metrics
    log_path: Path
    fingerprint: str
    guard_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "privtune-guard"))


@dataclass
class _Call:
    """What one request did, for the request log and the metrics (never raw text unless log_text)."""

    endpoint: str
    t0: float = field(default_factory=time.perf_counter)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    key: str | None = None
    model: str | None = None
    status: int = 200
    code: str | None = None
    stream: bool = False
    n: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft: float | None = None
    finish: list[str | None] = field(default_factory=list)
    prompt_sha256: str | None = None
    redactions: Tally = field(default_factory=Tally)
    prompt_text: Any = None
    completion_text: Any = None


def default_request_log() -> Path:
    return privtune_home() / "serve" / "requests.jsonl"


def build_state(served: Served, cfg: ServeConfig, keys_path: str | Path,
                redact_fn: RedactFn | None = None) -> ServerState:
    """Everything a server needs besides the HTTP layer; the guard's redactor is loaded here (once)."""
    metrics = Metrics()
    engine = Engine(served.forward, served.decode, served.eos_ids, served.pad_id, served.max_context,
                    max_batch_size=cfg.max_batch_size, batch_wait_ms=cfg.batch_wait_ms, max_queue=cfg.max_queue,
                    mixed_adapters=served.mixed, observe_batch=metrics.batch.observe)
    metrics.queue.set_function(engine.queued)
    metrics.active.set_function(engine.active)
    if cfg.guard.enabled and redact_fn is None:
        redact_fn = make_redact_fn(cfg.guard)
    guard = OutputGuard(redact_fn if cfg.guard.enabled else None)
    return ServerState(served=served, engine=engine, auth=Authenticator(keys_path), limiter=RateLimiter(),
                       guard=guard, cfg=cfg, metrics=metrics,
                       log_path=Path(cfg.request_log) if cfg.request_log else default_request_log(),
                       fingerprint="fp_" + served.base.weights_sha256[:10])


# --------------------------------------------------------------------------------------------- helpers
def _error_response(err: ApiError):
    from fastapi.responses import JSONResponse

    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _bearer(request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _authorize(state: ServerState, request, call: _Call, need: str) -> ApiKey:
    from starlette.concurrency import run_in_threadpool

    token = _bearer(request)
    if token is None:
        raise ApiError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                       code="invalid_api_key")
    key = await run_in_threadpool(state.auth.authenticate, token)
    if key is None:
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
    call.key = key.name
    allowed = key.may_infer() if need == "infer" else key.may_read_metrics()
    if not allowed:
        raise ApiError(403, f"key '{key.name}' (role {key.role}) may not use this endpoint", type="permission_error",
                       code="insufficient_role")
    return key


def _rate_limit(state: ServerState, key: ApiKey) -> None:
    wait = state.limiter.acquire(key.name, key.rate)
    if wait > 0:
        after = retry_after_header(wait)
        raise ApiError(429, f"Rate limit reached for key '{key.name}' ({key.rate}); retry in {after} s.",
                       type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": after})


async def _read_json(request, limit: int) -> dict:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise ApiError(413, f"request body is {int(length)} bytes; the limit is {limit}", code="request_too_large")
    from starlette.requests import ClientDisconnect

    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, f"request body exceeds the limit of {limit} bytes", code="request_too_large")
    except ClientDisconnect:
        raise ApiError(499, "the client closed the connection", code="client_closed_request") from None
    try:
        data = json.loads(bytes(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"could not parse the JSON body of your request ({e})", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    return data


def _validate(model_cls: type[CommonParams], data: dict) -> CommonParams:
    from pydantic import ValidationError

    try:
        req = model_cls.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        param = error_param(tuple(first["loc"]))
        raise ApiError(422, f"{param or 'body'}: {first['msg']}", param=param, code="invalid_value") from None
    bad = unsupported(req)
    if bad:
        raise ApiError(400, bad[1], param=bad[0], code="unsupported_parameter")
    return req


def _route(state: ServerState, key: ApiKey, model: str, call: _Call) -> str | None:
    """The adapter for `model` (None = base); 404 unknown, 403 not allowed for this key."""
    if model not in state.served.names:
        raise ApiError(404, f"The model '{model}' does not exist or you do not have access to it.", param="model",
                       code="model_not_found")
    call.model = model
    if not key.allows(model):
        raise ApiError(403, f"key '{key.name}' is not allowed to use model '{model}'", type="permission_error",
                       param="model", code="model_not_allowed")
    return None if model == state.served.base_name else model


def _chat_prompt(state: ServerState, req: ChatRequest) -> str:
    tok = state.served.tokenizers[req.model]
    if not getattr(tok, "chat_template", None):
        raise ApiError(400, f"model '{req.model}' has no chat template; use /v1/completions", param="messages",
                       code="no_chat_template")
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in req.messages]
    try:
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as e:  # noqa: BLE001 - templates raise their own errors for unsupported conversations
        raise ApiError(400, f"the chat template rejected these messages: {str(e)[:200]}", param="messages",
                       code="invalid_messages") from None


def _completion_prompts(state: ServerState, req: CompletionRequest) -> tuple[list[str], list[list[int]]]:
    tok = state.served.tokenizers[req.model]
    p = req.prompt
    if isinstance(p, str):
        texts = [p]
    elif p and all(isinstance(x, str) for x in p):
        texts = list(p)
    elif p and (all(isinstance(x, int) for x in p) or all(isinstance(x, list) and x for x in p)):
        ids = [list(p)] if isinstance(p[0], int) else [list(x) for x in p]
        if any(not 0 <= t < len(tok) for row in ids for t in row):
            raise ApiError(422, f"prompt token ids must be in [0, {len(tok)})", param="prompt", code="invalid_value")
        return [""] * len(ids), ids
    else:
        raise ApiError(422, "prompt must be a string, a list of strings or token ids, and not empty", param="prompt",
                       code="invalid_value")
    return texts, [tok(t, add_special_tokens=True)["input_ids"] for t in texts]


def _sampling(state: ServerState, req: CommonParams, prompt_len: int, seed_offset: int) -> SamplingParams:
    served, cfg = state.served, state.cfg
    limit = cfg.max_prompt_tokens or served.max_context - 1
    if prompt_len > limit:
        raise ApiError(413, f"the prompt is {prompt_len} tokens; this server accepts at most {limit}",
                       param="messages" if isinstance(req, ChatRequest) else "prompt", code="prompt_too_large")
    if prompt_len == 0:
        raise ApiError(422, "the prompt is empty", param="prompt", code="invalid_value")
    asked = getattr(req, "max_completion_tokens", None) or req.max_tokens
    room = served.max_context - prompt_len
    if asked is not None and asked > room:
        raise ApiError(400, f"This model's maximum context length is {served.max_context} tokens. However, you "
                       f"requested {prompt_len + asked} tokens ({prompt_len} in the prompt, {asked} for the "
                       "completion).", param="max_tokens", code="context_length_exceeded")
    vocab = len(state.served.tokenizers[req.model])
    bias = tuple((int(k), float(v)) for k, v in (req.logit_bias or {}).items() if 0 <= int(k) < vocab)
    return SamplingParams(max_tokens=asked or min(cfg.default_max_tokens, room), temperature=req.temperature,
                          top_p=req.top_p, stop=req.stops(), seed=None if req.seed is None else req.seed + seed_offset,
                          presence_penalty=req.presence_penalty, frequency_penalty=req.frequency_penalty,
                          logit_bias=bias)


def _usage(call: _Call) -> dict:
    return {"prompt_tokens": call.prompt_tokens, "completion_tokens": call.completion_tokens,
            "total_tokens": call.prompt_tokens + call.completion_tokens}


def _record(state: ServerState, call: _Call) -> None:
    """Metrics and one request-log line; a failing log write must not turn a good answer into an error."""
    m = state.metrics
    model = call.model or "-"
    latency = time.perf_counter() - call.t0
    m.requests.labels(model, call.endpoint, str(call.status)).inc()
    m.latency.labels(model, call.endpoint).observe(latency)
    if call.status >= 400:
        m.errors.labels(model, call.endpoint, call.code or str(call.status)).inc()
    if call.prompt_tokens:
        m.prompt_tokens.labels(model).inc(call.prompt_tokens)
    if call.completion_tokens:
        m.completion_tokens.labels(model).inc(call.completion_tokens)
    if call.ttft is not None:
        m.ttft.labels(model).observe(call.ttft)
    for entity, count in call.redactions.items():
        m.redactions.labels(model, entity).inc(count)
    row = {"ts": time.time(), "id": call.id, "endpoint": call.endpoint, "key": call.key, "model": call.model,
           "status": call.status, "code": call.code, "stream": call.stream, "n": call.n,
           "prompt_tokens": call.prompt_tokens, "completion_tokens": call.completion_tokens,
           "latency_ms": round(latency * 1000, 1), "ttft_ms": None if call.ttft is None else round(call.ttft * 1000, 1),
           "finish_reasons": call.finish, "prompt_sha256": call.prompt_sha256, "guard": dict(call.redactions)}
    if state.cfg.log_text:
        row["prompt"], row["completion"] = call.prompt_text, call.completion_text
    try:
        fsio.append_jsonl(state.log_path, row)
    except OSError as e:
        log.error("cannot write the request log %s: %s", state.log_path, e)
    if state.cfg.audit_requests and call.endpoint not in ("models", "metrics"):
        _audit_request(state, call)


def _audit_request(state: ServerState, call: _Call) -> None:
    """One hash-chained audit entry per inference request, refused ones included (who tried what)."""
    from privtune.registry import hooks

    adapter = state.served.adapters.get(call.model or "")
    outcome = "ok" if call.status < 400 else f"refused {call.status} {call.code or ''}".strip()
    try:
        hooks.serve_request(call.model or "-", adapter.adapter_sha256 if adapter else None, call.key or "-",
                            outcome=outcome, prompt_tokens=call.prompt_tokens,
                            completion_tokens=call.completion_tokens, request_id=call.id)
    except Exception as e:  # noqa: BLE001 - the answer is already out; say so loudly instead of failing it
        log.error("cannot append request %s to the audit log: %s", call.id, e)


def _sse(obj: dict | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


# ------------------------------------------------------------------------------------------ generation
@dataclass
class _Job:
    """The engine requests behind one HTTP request (n choices × prompts) and the queue they report to."""

    queue: asyncio.Queue
    requests: list[GenRequest]

    def cancel(self) -> None:
        for r in self.requests:
            r.cancelled = True


def _deliver(loop: asyncio.AbstractEventLoop, q: asyncio.Queue, index: int, delta: Delta) -> None:
    try:
        loop.call_soon_threadsafe(q.put_nowait, (index, delta))
    except RuntimeError:  # the event loop is gone (shutdown)
        pass


def _submit(state: ServerState, adapter: str | None, prompts: list[list[int]], params: list[SamplingParams]) -> _Job:
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue()
    job = _Job(q, [])
    try:
        for i, (ids, p) in enumerate(zip(prompts, params, strict=True)):
            req = GenRequest(list(ids), p, partial(_deliver, loop, q, i), adapter=adapter)
            state.engine.submit(req)
            job.requests.append(req)
    except QueueFull as e:
        job.cancel()
        raise ApiError(503, f"the server is overloaded ({e}); retry shortly", type="server_error",
                       code="server_overloaded", headers={"Retry-After": "1"}) from None
    return job


async def _guard(state: ServerState, texts: list[str], call: _Call) -> list[str]:
    if not state.guard.enabled or not any(t.strip() for t in texts):
        return texts
    loop = asyncio.get_running_loop()
    results = await loop.run_in_executor(state.guard_pool, state.guard.apply, texts)
    for _, counts in results:
        call.redactions.update(counts)
    return [t for t, _ in results]


def _engine_error(delta: Delta) -> ApiError:
    return ApiError(500, delta.error or "generation failed", type="server_error", code="generation_failed")


async def _run_blocking(state: ServerState, job: _Job, call: _Call) -> tuple[list[str], list[str]]:
    """Wait for every choice; (texts, finish reasons)."""
    n = len(job.requests)
    texts, finish = [""] * n, [None] * n
    left = n
    try:
        while left:
            i, d = await job.queue.get()
            if call.ttft is None and d.text:
                call.ttft = time.perf_counter() - call.t0
            texts[i] += d.text
            if d.finish_reason:
                if d.finish_reason == "error":
                    raise _engine_error(d)
                finish[i] = d.finish_reason
                call.completion_tokens += d.completion_tokens
                left -= 1
    except BaseException:
        job.cancel()
        raise
    return texts, finish


async def _cancel_on_disconnect(request, job: _Job, waiter: asyncio.Task | None) -> None:
    """A client that gives up on a non-streamed answer frees its batch rows (streams notice on their own)."""
    while True:
        await asyncio.sleep(0.5)
        if await request.is_disconnected():
            job.cancel()
            if waiter is not None:
                waiter.cancel()
            return


def _chunk(state: ServerState, call: _Call, kind: str, created: int, choices: list[dict],
           usage: dict | None = None, with_usage: bool = False) -> dict:
    obj = {"id": ("chatcmpl-" if kind.startswith("chat") else "cmpl-") + call.id, "object": kind, "created": created, "model": call.model,
           "system_fingerprint": state.fingerprint, "choices": choices}
    if with_usage:
        obj["usage"] = usage
    return obj


async def _stream(state: ServerState, job: _Job, call: _Call, chat: bool, include_usage: bool) -> AsyncIterator[bytes]:
    """SSE as OpenAI sends it: role chunk, content chunks, a finish chunk per choice, usage, [DONE]."""
    kind = "chat.completion.chunk" if chat else "text_completion"
    created = int(time.time())
    n = len(job.requests)
    buffers = [StreamBuffer(state.guard.enabled) for _ in range(n)]
    outputs = [""] * n
    finish: list[str | None] = [None] * n

    def piece(i: int, text: str | None, reason: str | None) -> dict:
        if chat:
            delta = {} if text is None else {"content": text}
            return {"index": i, "delta": delta, "logprobs": None, "finish_reason": reason}
        return {"index": i, "text": text or "", "logprobs": None, "finish_reason": reason}

    try:
        if chat:
            for i in range(n):
                yield _sse(_chunk(state, call, kind, created, [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                                "logprobs": None, "finish_reason": None}],
                                  None, include_usage))
        left = n
        while left:
            i, d = await job.queue.get()
            if d.finish_reason == "error":
                err = _engine_error(d)
                call.status, call.code = err.status, err.code
                yield _sse(err.body())
                return
            ready = buffers[i].feed(d.text, final=d.finish_reason is not None)
            if ready:
                (ready,) = await _guard(state, [ready], call)
            if ready:
                outputs[i] += ready
                if call.ttft is None:
                    call.ttft = time.perf_counter() - call.t0
                yield _sse(_chunk(state, call, kind, created, [piece(i, ready, None)], None, include_usage))
            if d.finish_reason:
                finish[i] = d.finish_reason
                call.completion_tokens += d.completion_tokens
                left -= 1
                yield _sse(_chunk(state, call, kind, created, [piece(i, None, d.finish_reason)], None,
                                  include_usage))
        if include_usage:
            yield _sse(_chunk(state, call, kind, created, [], _usage(call), True))
        yield _sse("[DONE]")
    except Exception:  # headers are sent: the error travels in the stream, as OpenAI sends it
        log.exception("stream %s failed", call.id)
        call.status, call.code = 500, "internal_error"
        yield _sse(ApiError(500, "internal server error", type="server_error", code="internal_error").body())
    finally:
        if None in finish and call.status < 400:  # the client went away mid-stream
            call.status, call.code = 499, "client_closed_request"
        job.cancel()
        call.finish = finish
        if state.cfg.log_text:
            call.completion_text = outputs
        _record(state, call)


# ----------------------------------------------------------------------------------------------- routes
async def _generate(state: ServerState, request, call: _Call, chat: bool):
    from fastapi.responses import JSONResponse, StreamingResponse

    key = await _authorize(state, request, call, "infer")
    _rate_limit(state, key)
    req = _validate(ChatRequest if chat else CompletionRequest, await _read_json(request, state.cfg.max_body_bytes))
    adapter = _route(state, key, req.model, call)
    if req.n > state.cfg.max_n:
        raise ApiError(400, f"n must be at most {state.cfg.max_n}", param="n", code="invalid_value")
    if chat:
        text = _chat_prompt(state, req)
        texts, prompts = [text], [state.served.tokenizers[req.model](text, add_special_tokens=False)["input_ids"]]
    else:
        texts, prompts = _completion_prompts(state, req)
    call.prompt_sha256 = fsio.sha256_text("\x1e".join(texts) if any(texts) else json.dumps(prompts))
    call.prompt_text = texts if state.cfg.log_text else None
    call.prompt_tokens = sum(len(p) for p in prompts)
    call.stream, call.n = req.stream, req.n
    jobs_prompts, jobs_params = [], []
    for ids in prompts:
        for j in range(req.n):
            jobs_prompts.append(ids)
            jobs_params.append(_sampling(state, req, len(ids), j))
    job = _submit(state, adapter, jobs_prompts, jobs_params)
    if req.stream:
        return StreamingResponse(_stream(state, job, call, chat, req.include_usage()), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                          "X-Request-Id": call.id})
    watcher = asyncio.create_task(_cancel_on_disconnect(request, job, asyncio.current_task()))
    try:
        texts_out, finish = await _run_blocking(state, job, call)
    except asyncio.CancelledError:
        call.status, call.code = 499, "client_closed_request"
        _record(state, call)
        raise
    finally:
        watcher.cancel()
    texts_out = await _guard(state, texts_out, call)
    call.finish = list(finish)
    call.completion_text = texts_out if state.cfg.log_text else None
    if chat:
        choices = [{"index": i, "message": {"role": "assistant", "content": t, "refusal": None}, "logprobs": None,
                    "finish_reason": f} for i, (t, f) in enumerate(zip(texts_out, finish, strict=True))]
        obj = "chat.completion"
    else:
        choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": f}
                   for i, (t, f) in enumerate(zip(texts_out, finish, strict=True))]
        obj = "text_completion"
    body = {"id": ("chatcmpl-" if chat else "cmpl-") + call.id, "object": obj, "created": int(time.time()),
            "model": req.model, "system_fingerprint": state.fingerprint, "choices": choices, "usage": _usage(call)}
    _record(state, call)
    return JSONResponse(body, headers={"X-Request-Id": call.id})


def create_app(state: ServerState):
    """The FastAPI app; the engine thread starts and stops with it."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.exceptions import HTTPException

    @asynccontextmanager
    async def lifespan(app):
        state.engine.start()
        try:
            yield
        finally:
            state.engine.stop()
            state.guard_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="privtune", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError):
        return _error_response(err)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return _error_response(ApiError(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        return _error_response(ApiError(422, first["msg"], param=error_param(tuple(first["loc"])),
                                        code="invalid_value"))

    async def handle(request: Request, endpoint: str, chat: bool):
        call = _Call(endpoint)
        try:
            response = await _generate(state, request, call, chat)
        except ApiError as err:
            call.status, call.code = err.status, err.code
            _record(state, call)
            return _error_response(err)
        except Exception:
            log.exception("request %s failed", call.id)
            call.status, call.code = 500, "internal_error"
            _record(state, call)
            return _error_response(ApiError(500, "internal server error", type="server_error", code="internal_error"))
        return response

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await handle(request, "chat", True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, "completions", False)

    def _model_card(name: str) -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "privtune"}

    @app.get("/v1/models")
    async def models(request: Request):
        call = _Call("models")
        try:
            key = await _authorize(state, request, call, "infer")
        except ApiError as err:
            call.status, call.code = err.status, err.code
            _record(state, call)
            return _error_response(err)
        _record(state, call)
        return {"object": "list", "data": [_model_card(m) for m in state.served.names if key.allows(m)]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, request: Request):
        call = _Call("models")
        try:
            key = await _authorize(state, request, call, "infer")
            if model_id not in state.served.names or not key.allows(model_id):
                raise ApiError(404, f"The model '{model_id}' does not exist or you do not have access to it.",
                               param="model", code="model_not_found")
        except ApiError as err:
            call.status, call.code = err.status, err.code
            _record(state, call)
            return _error_response(err)
        _record(state, call)
        return _model_card(model_id)

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": len(state.served.names), "queued": state.engine.queued(),
                "active": state.engine.active()}

    @app.get("/metrics")
    async def metrics(request: Request):
        call = _Call("metrics")
        try:
            await _authorize(state, request, call, "metrics")
        except ApiError as err:
            call.status, call.code = err.status, err.code
            _record(state, call)
            return _error_response(err)
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse(ApiError(500, "internal server error", type="server_error").body(), status_code=500)

    return app


# ---------------------------------------------------------------------------------------------- entry
def check_erasure(adapters: dict[str, Path], forced: list[str] | None = None) -> list[str]:
    """Refuse adapters trained on data a subject asked to erase unless named in `forced`; returns the forced ones."""
    from privtune.forget import retrain_reason

    forced_set = set(forced or [])
    unknown = sorted(forced_set - set(adapters))
    if unknown:
        raise InputError(f"--force-retrain-required names adapters that are not served: {', '.join(unknown)}",
                         field="force-retrain-required")
    overridden = []
    for name, run_dir in adapters.items():
        reason = retrain_reason(run_dir)
        if reason is None:
            continue
        if name not in forced_set:
            raise InputError(f"adapter {name!r} must be retrained: {reason}. Retrain it on the current dataset "
                             f"version, or serve it anyway with --force-retrain-required {name}",
                             where=str(run_dir))
        log.warning("serving %s although it is flagged retrain_required (forced): %s", name, reason)
        overridden.append(name)
    return overridden


def serve(adapter_specs: list[str], keys_path: str | Path, cfg: ServeConfig, base: str | None = None,
          force_retrain_required: list[str] | None = None) -> None:
    """Check keys and runs, load the model once, then serve until interrupted (the CLI's `serve`)."""
    import ipaddress

    import uvicorn

    from privtune.serve.loader import load_served, parse_adapter_specs

    keys_path = Path(keys_path)
    adapters = parse_adapter_specs(adapter_specs)
    checked = dict(adapters)
    if base and (Path(base).parent / "run.json").is_file():  # `--base RUN_DIR/model`: a full fine-tune's weights
        checked["base"] = Path(base).parent
    forced = check_erasure(checked, force_retrain_required)
    auth = Authenticator(keys_path)
    if not any(k.may_infer() for k in auth.active_keys()):
        raise InputError("no active API key: create one with `privtune keys add NAME --adapters ... --file "
                         f"{keys_path}`", where=str(keys_path))
    if cfg.num_threads:
        import torch

        torch.set_num_threads(cfg.num_threads)
    served = load_served(adapters, base, cfg.dtype)
    unknown = sorted({a for k in auth.active_keys() for a in k.adapters if a != "*" and a not in served.names})
    if unknown:
        log.warning("keys name models this server does not serve: %s", ", ".join(unknown))
    state = build_state(served, cfg, keys_path)
    try:
        loopback = ipaddress.ip_address(cfg.host).is_loopback
    except ValueError:
        loopback = cfg.host == "localhost"
    if not loopback:
        log.warning("binding %s: the API is reachable from other machines; put TLS in front of it", cfg.host)
    _audit_start(served, cfg, keys_path, forced)
    log.info("privtune serve: http://%s:%d/v1 models=%s guard=%s request log=%s", cfg.host, cfg.port,
             ",".join(served.names), "on" if state.guard.enabled else "OFF", state.log_path)
    uvicorn.run(create_app(state), host=cfg.host, port=cfg.port, log_level="warning", access_log=False)


def _audit_start(served: Served, cfg: ServeConfig, keys_path: Path, forced: list[str] | None = None) -> None:
    from privtune.registry import auditlog

    inputs = {"base": served.base.weights_sha256}
    inputs.update({f"adapter:{n}": a.adapter_sha256 for n, a in served.adapters.items()})
    auditlog.append("serve.start", inputs=inputs,
                    details={"host": cfg.host, "port": cfg.port, "guard": cfg.guard.enabled, "log_text": cfg.log_text,
                             "keys_file": str(keys_path), "adapters": {n: a.run_dir for n, a in served.adapters.items()},
                             "forced_retrain_required": forced or []})
