"""Continuous batching of generation across concurrent requests.

One worker thread owns the model. A new request joins the running batch at the next decode step: the new
prompts are prefilled together, their KV caches left-padded to the batch's length and concatenated, and rows
that finish leave at once, so a short request never waits for a long one and the batch stays full under load.
Rows for different adapters share one forward when PEFT can mix adapters in a batch (plain LoRA); otherwise
each adapter keeps its own batch and the steps alternate between them.

The worker talks to the rest of the server only through `GenRequest.on_delta`, called from the worker thread
with text that is safe to show (complete UTF-8, no possible start of a stop sequence).
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)

# forward(input_ids, attention_mask, position_ids, cache, adapters) -> (last-position logits [B, V], cache)
ForwardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, object, Sequence[str | None]], tuple]


class QueueFull(RuntimeError):
    """More requests are waiting than the server accepts; the client should retry later."""


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Delta:
    """A piece of one request's output. The last one has finish_reason set ('stop', 'length' or 'error')."""

    text: str
    finish_reason: str | None = None
    completion_tokens: int = 0
    error: str | None = None


@dataclass(eq=False)
class GenRequest:
    prompt_ids: list[int]
    params: SamplingParams
    on_delta: Callable[[Delta], None]
    adapter: str | None = None  # None = the base model
    cancelled: bool = False  # set by the server when the client goes away
    # worker-owned state
    ids: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    generator: torch.Generator | None = None
    enqueued_at: float = field(default_factory=time.monotonic)


# ------------------------------------------------------------------------------------ pure text helpers
def find_stop(text: str, stops: Sequence[str], start: int = 0) -> int:
    """Index of the earliest stop sequence in text[start:] (absolute), or -1."""
    hits = [i for s in stops if s and (i := text.find(s, start)) >= 0]
    return min(hits) if hits else -1


def held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters could still turn into a stop sequence (or are a broken UTF-8 char)."""
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    if text.endswith("\ufffd"):
        hold = max(hold, len(text) - len(text.rstrip("\ufffd")))
    return hold


# ----------------------------------------------------------------------------------------- sampling
def sample_next(logits: torch.Tensor, rows: Sequence[GenRequest]) -> list[int]:
    """One token per row with each row's own temperature, top_p, penalties and seeded generator."""
    logits = logits.float()
    for i, r in enumerate(rows):
        p = r.params
        if r.ids and (p.presence_penalty or p.frequency_penalty):
            counts = torch.bincount(torch.tensor(r.ids), minlength=logits.shape[-1])[: logits.shape[-1]].float()
            logits[i] -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).float()
        for tok, bias in p.logit_bias:
            if 0 <= tok < logits.shape[-1]:
                logits[i, tok] += bias
    out = logits.argmax(dim=-1).tolist()
    for i, r in enumerate(rows):
        p = r.params
        if p.temperature <= 0:
            continue
        probs = torch.softmax(logits[i] / p.temperature, dim=-1)
        if p.top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < p.top_p  # always keeps the most likely token
            probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_p[keep])
        out[i] = int(torch.multinomial(probs, 1, generator=r.generator).item())
    return out


# ------------------------------------------------------------------------------------ KV cache helpers
def _left_pad(t: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    missing = length - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def merge_caches(a, b):
    """Concatenate two DynamicCaches along the batch, left-padding the shorter one with zeros."""
    from transformers import DynamicCache

    layers = []
    for (ka, va, _), (kb, vb, _) in zip(a, b, strict=True):
        n = max(ka.shape[-2], kb.shape[-2])
        layers.append((torch.cat([_left_pad(ka, n, -2), _left_pad(kb, n, -2)]),
                       torch.cat([_left_pad(va, n, -2), _left_pad(vb, n, -2)])))
    return DynamicCache(ddp_cache_data=layers)


def trim_cache(cache, start: int):
    """Drop the first `start` positions (padding no remaining row attends to)."""
    from transformers import DynamicCache

    return DynamicCache(ddp_cache_data=[(k[:, :, start:], v[:, :, start:]) for k, v, _ in cache])


class PrefixCache:
    """Recent prompts' KV per adapter: a new prompt that starts like one of them (the chat template's system
    prompt, a shared instruction) is prefilled only from where they diverge. Bounded by total cached tokens."""

    def __init__(self, max_tokens: int = 16384, min_prefix: int = 8):
        self.max_tokens, self.min_prefix = max_tokens, min_prefix
        self._entries: OrderedDict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = OrderedDict()
        self._tokens = 0
        self.hits = self.reused_tokens = 0

    def lookup(self, adapter: str | None, ids: list[int]) -> tuple[tuple | None, int]:
        """(entry key, usable prefix length); at least one prompt token is always left to prefill."""
        best, best_len = None, 0
        for key in self._entries:
            if key[0] != adapter:
                continue
            n = 0
            for a, b in zip(key[1], ids, strict=False):
                if a != b:
                    break
                n += 1
            n = min(n, len(ids) - 1)
            if n > best_len:
                best, best_len = key, n
        if best is None or best_len < self.min_prefix:
            return None, 0
        self._entries.move_to_end(best)
        self.hits += 1
        self.reused_tokens += best_len
        return best, best_len

    def kv(self, key: tuple, length: int, rows: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The first `length` positions of an entry, repeated for `rows` batch rows."""
        return [(k[:, :length].unsqueeze(0).expand(rows, -1, -1, -1).contiguous(),
                 v[:, :length].unsqueeze(0).expand(rows, -1, -1, -1).contiguous()) for k, v in self._entries[key]]

    def store(self, adapter: str | None, ids: list[int], kv: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        if len(ids) < self.min_prefix or len(ids) > self.max_tokens:
            return
        key = (adapter, tuple(ids))
        if key in self._entries:
            self._entries.move_to_end(key)
            return
        self._entries[key] = kv
        self._tokens += len(ids)
        while self._tokens > self.max_tokens:
            old, _ = self._entries.popitem(last=False)
            self._tokens -= len(old[1])


@dataclass(eq=False)
class _Batch:
    """The rows decoding together, with their shared (left-padded) KV cache."""

    rows: list[GenRequest] = field(default_factory=list)
    cache: object = None
    mask: torch.Tensor | None = None  # [B, T] 1 = real token
    next_pos: torch.Tensor | None = None  # [B] position of the token fed next
    last: torch.Tensor | None = None  # [B] token fed next
    pending: list[GenRequest] = field(default_factory=list)


class Engine:
    """Owns the model on one worker thread; `submit` is safe from any thread."""

    def __init__(self, forward: ForwardFn, decode: Callable[[list[int]], str], eos_ids: set[int], pad_id: int,
                 max_context: int, max_batch_size: int = 16, batch_wait_ms: float = 5.0, max_queue: int = 256,
                 mixed_adapters: bool = True, prefill_token_budget: int = 8192,
                 prefix_cache_tokens: int = 16384, observe_batch: Callable[[int], None] | None = None):
        self.forward = forward
        self.decode = decode
        self.eos_ids = set(eos_ids)
        self.pad_id = pad_id
        self.max_context = max_context
        self.max_batch_size = max_batch_size
        self.batch_wait = batch_wait_ms / 1000.0
        self.max_queue = max_queue
        self.mixed_adapters = mixed_adapters
        self.prefill_token_budget = prefill_token_budget
        self.observe_batch = observe_batch
        self.prefix_cache = PrefixCache(prefix_cache_tokens) if prefix_cache_tokens > 0 else None
        self._inbox: queue.Queue[GenRequest | None] = queue.Queue()
        self._batches: dict[str, _Batch] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.steps = 0

    # -------------------------------------------------------------------------------- public API
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="privtune-engine", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit(self, req: GenRequest) -> None:
        if self._stopping.is_set():
            raise QueueFull("server is shutting down")
        if self.queued() >= self.max_queue:
            raise QueueFull(f"{self.queued()} requests waiting")
        if req.generator is None:
            req.generator = torch.Generator().manual_seed(
                req.params.seed if req.params.seed is not None else secrets.randbits(63))
        self._inbox.put(req)

    def queued(self) -> int:
        return self._inbox.qsize() + sum(len(b.pending) for b in list(self._batches.values()))

    def active(self) -> int:
        return sum(len(b.rows) for b in list(self._batches.values()))

    # -------------------------------------------------------------------------------- worker
    def _key(self, req: GenRequest) -> str:
        return "*" if self.mixed_adapters else (req.adapter or "")

    def _collect(self) -> None:
        """Move new requests to their batch's pending list; block (then linger) only when idle."""
        idle = not any(b.rows or b.pending for b in self._batches.values())
        got = []
        if idle:
            try:
                got.append(self._inbox.get(timeout=0.5))
            except queue.Empty:
                return
            deadline = time.monotonic() + self.batch_wait
            while (left := deadline - time.monotonic()) > 0:
                try:
                    got.append(self._inbox.get(timeout=left))
                except queue.Empty:
                    break
        while True:
            try:
                got.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        for req in got:
            if req is not None:
                self._batches.setdefault(self._key(req), _Batch()).pending.append(req)

    def _run(self) -> None:
        with torch.inference_mode():
            while not self._stopping.is_set():
                self._collect()
                for key, batch in list(self._batches.items()):
                    try:
                        self._admit(batch)
                        if batch.rows:
                            self._decode_step(batch)
                    except Exception as e:  # noqa: BLE001 - one bad batch must not kill the server
                        log.exception("generation failed")
                        self._fail(batch, f"generation failed: {type(e).__name__}")
                    if not batch.rows and not batch.pending:
                        del self._batches[key]
        for batch in self._batches.values():
            self._fail(batch, "server is shutting down")
        while True:
            try:
                req = self._inbox.get_nowait()
            except queue.Empty:
                break
            if req is not None:
                req.on_delta(Delta("", "error", len(req.ids), "server is shutting down"))

    def _fail(self, batch: _Batch, message: str) -> None:
        for r in batch.rows + batch.pending:
            r.on_delta(Delta("", "error", len(r.ids), message))
        batch.rows, batch.pending, batch.cache = [], [], None

    def _admit(self, batch: _Batch) -> None:
        batch.pending = [r for r in batch.pending if not r.cancelled]
        room = self.max_batch_size - len(batch.rows)
        while room > 0 and batch.pending:
            chunk, longest = [], 0
            for r in batch.pending[:room]:
                longest_if = max(longest, len(r.prompt_ids))
                if chunk and longest_if * (len(chunk) + 1) > self.prefill_token_budget:
                    break
                chunk.append(r)
                longest = longest_if
            batch.pending = batch.pending[len(chunk):]
            room -= len(chunk)
            self._prefill(batch, chunk)

    def _prefill(self, batch: _Batch, new: list[GenRequest]) -> None:
        """Prefill new rows, grouped by the cached prompt prefix they can start from."""
        groups: dict[tuple, list[GenRequest]] = {}
        for r in new:
            key, length = self.prefix_cache.lookup(r.adapter, r.prompt_ids) if self.prefix_cache else (None, 0)
            groups.setdefault((key, length), []).append(r)
        for (key, length), rows in groups.items():
            self._prefill_group(batch, rows, key, length)

    def _prefill_group(self, batch: _Batch, new: list[GenRequest], key: tuple | None, p: int) -> None:
        """Rows laid out as [cached prefix p][left padding][rest of the prompt]; masks hide the padding."""
        from transformers import DynamicCache

        n = max(len(r.prompt_ids) - p for r in new)
        ids = torch.full((len(new), n), self.pad_id, dtype=torch.long)
        tail = torch.zeros((len(new), n), dtype=torch.long)
        for i, r in enumerate(new):
            rest = r.prompt_ids[p:]
            ids[i, n - len(rest):] = torch.tensor(rest, dtype=torch.long)
            tail[i, n - len(rest):] = 1
        pos = p + (tail.cumsum(-1) - 1).clamp(min=0)
        if p:
            cache = DynamicCache(ddp_cache_data=self.prefix_cache.kv(key, p, len(new)))
            mask = torch.cat([torch.ones((len(new), p), dtype=torch.long), tail], dim=1)
        else:
            cache, mask = DynamicCache(), tail
        logits, cache = self.forward(ids, mask, pos, cache, [r.adapter for r in new])
        if self.prefix_cache is not None:
            for i, r in enumerate(new):
                cols = mask[i].nonzero().squeeze(-1)
                self.prefix_cache.store(r.adapter, r.prompt_ids, [(k[i][:, cols], v[i][:, cols]) for k, v, _ in cache])
        tokens = sample_next(logits, new)
        next_pos = mask.sum(-1)
        if batch.rows:
            t = max(batch.mask.shape[1], mask.shape[1])
            batch.cache = merge_caches(batch.cache, cache)
            batch.mask = torch.cat([_left_pad(batch.mask, t, 1), _left_pad(mask, t, 1)])
            batch.next_pos = torch.cat([batch.next_pos, next_pos])
            batch.last = torch.cat([batch.last, torch.tensor(tokens)])
        else:
            batch.cache, batch.mask, batch.next_pos, batch.last = cache, mask, next_pos, torch.tensor(tokens)
        batch.rows.extend(new)
        self._after_tokens(batch, batch.rows[-len(new):], tokens, offset=len(batch.rows) - len(new))

    def _decode_step(self, batch: _Batch) -> None:
        rows = batch.rows
        mask = torch.cat([batch.mask, torch.ones((len(rows), 1), dtype=batch.mask.dtype)], dim=1)
        logits, batch.cache = self.forward(batch.last.view(-1, 1), mask, batch.next_pos.view(-1, 1), batch.cache,
                                           [r.adapter for r in rows])
        batch.mask, batch.next_pos = mask, batch.next_pos + 1
        tokens = sample_next(logits, rows)
        batch.last = torch.tensor(tokens)
        self.steps += 1
        if self.observe_batch is not None:
            self.observe_batch(len(rows))
        self._after_tokens(batch, list(rows), tokens, offset=0)

    def _after_tokens(self, batch: _Batch, rows: list[GenRequest], tokens: list[int], offset: int) -> None:
        done = [i + offset for i, (r, t) in enumerate(zip(rows, tokens, strict=True)) if self._handle_token(r, t)]
        if done:
            self._drop(batch, set(done))

    def _handle_token(self, r: GenRequest, token: int) -> bool:
        """Record one token for a row, send what is safe to show; True when the row is finished."""
        if r.cancelled:
            return True
        p = r.params
        finish = None
        if token in self.eos_ids:
            finish = "stop"
        else:
            r.ids.append(token)
            r.text = self.decode(r.ids)
            cut = find_stop(r.text, p.stop, max(0, r.emitted - max((len(s) for s in p.stop), default=0)))
            if cut >= 0:
                r.text, finish = r.text[:cut], "stop"
            elif len(r.ids) >= p.max_tokens or len(r.prompt_ids) + len(r.ids) >= self.max_context:
                finish = "length"
        end = len(r.text) if finish else len(r.text) - held_back(r.text, p.stop)
        piece = r.text[r.emitted:end] if end > r.emitted else ""
        r.emitted = max(r.emitted, end)
        if finish:
            r.on_delta(Delta(piece, finish, len(r.ids)))
            return True
        if piece:
            r.on_delta(Delta(piece, None, len(r.ids)))
        return False

    def _drop(self, batch: _Batch, done: set[int]) -> None:
        keep = [i for i in range(len(batch.rows)) if i not in done]
        if not keep:
            batch.rows, batch.cache, batch.mask, batch.next_pos, batch.last = [], None, None, None, None
            return
        idx = torch.tensor(keep)
        batch.rows = [batch.rows[i] for i in keep]
        batch.cache.batch_select_indices(idx)
        batch.mask, batch.next_pos, batch.last = batch.mask[idx], batch.next_pos[idx], batch.last[idx]
        first = int(batch.mask.any(dim=0).float().argmax())  # leading columns nobody attends to
        if first >= 32:
            batch.cache = trim_cache(batch.cache, first)
            batch.mask = batch.mask[:, first:]
