"""Canary exposure (Carlini et al., "The Secret Sharer", USENIX Security 2019).

`privtune prepare --canaries N` appends N records to train.jsonl, each carrying a random secret of a fixed format
("account number dddd-dddd") for a fake customer reference, repeated k times (k alternates over REPEATS = 10, 1).
The secrets go only to DATA_DIR/canaries.sealed.json (encrypted when PRIVTUNE_KEY_FILE is set, else 0600), never
to the manifest, the data card or review.csv; canaries are added after redaction (which would mask the digits).

`privtune audit` measures how much likelier the tuned model finds each canary's secret than random secrets of
the same format, in the canary's own context:

    exposure = log2(#candidates) − log2(rank)     rank of the canary's log-perplexity among the candidates

Candidates: H random "heads" (the secret minus its last ENUM_DEPTH digits, uniform over the format) × every
completion of the last ENUM_DEPTH digits. Each candidate is still uniform over the format's space, and one
forward pass over a head yields the distribution of its next digit for free, so 10,000 candidates cost about
H·(len(head) + 10) token positions instead of 10,000·len(secret): ~20× less on CPU. Heads that do not tokenize
digit by digit (tokenizers that merge digits) fall back to fully random candidates. Only the secret's tokens are
scored: the shared prefix (chat template, question, "... is ") is run once and its KV cache reused.

Beyond the candidate set (the canary ranks first), exposure is extrapolated from a skew-normal fitted to the
candidates' log-perplexities: exposure ≈ −log2 CDF(canary), capped at log2 of the format's space.
Control canaries (never inserted) are scored the same way: their exposure is what chance looks like (~1.4 bits
on average, rarely above 7).
"""

from __future__ import annotations

import copy
import json
import math
import random
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from privtune.errors import InputError

SECRET_FORMAT = "dddd-dddd"  # d = a random decimal digit
REPEATS = (10, 1)  # canary i is inserted REPEATS[i % len(REPEATS)] times
SEALED_FILE = "canaries.sealed.json"
ENUM_DEPTH = 2  # trailing digits enumerated exhaustively per head
QUESTION = "What is the account number on file for customer reference {ref}?"
ANSWER = "The account number on file for customer reference {ref} is {secret}."


@dataclass(frozen=True)
class Canary:
    id: str
    reference: str  # fake customer reference: a context of its own for each canary
    secret: str
    repeats: int  # times inserted into train.jsonl; 0 = a control, never inserted


def space_bits(fmt: str = SECRET_FORMAT) -> float:
    """log2 of how many secrets the format allows: the largest exposure there can be."""
    return fmt.count("d") * math.log2(10)


def random_secret(rng: random.Random, fmt: str = SECRET_FORMAT) -> str:
    return "".join(rng.choice(string.digits) if ch == "d" else ch for ch in fmt)


def random_reference(rng: random.Random) -> str:
    return "HC-" + "".join(rng.choice(string.ascii_uppercase) for _ in range(6))


def make_canaries(n: int, rng: random.Random, *, repeats: Sequence[int] = REPEATS, prefix: str = "canary",
                  fmt: str = SECRET_FORMAT) -> list[Canary]:
    """n canaries with distinct references and secrets; repeats=(0,) makes controls."""
    out: list[Canary] = []
    refs: set[str] = set()
    while len(out) < n:
        ref = random_reference(rng)
        if ref not in refs:
            refs.add(ref)
            out.append(Canary(f"{prefix}-{len(out):03d}", ref, random_secret(rng, fmt), repeats[len(out) % len(repeats)]))
    return out


def canary_messages(c: Canary) -> list[dict[str, str]]:
    return [{"role": "user", "content": QUESTION.format(ref=c.reference)},
            {"role": "assistant", "content": ANSWER.format(ref=c.reference, secret=c.secret)}]


def canary_records(canaries: Sequence[Canary]) -> list[dict]:
    return [{"id": f"{c.id}-{j:02d}", "messages": canary_messages(c), "metadata": {"canary": True}}
            for c in canaries for j in range(c.repeats)]


# ------------------------------------------------------------------------------------------ prepare hook
def insert_canaries(train_path: str | Path, n: int, seed: int, out_dir: str | Path,
                    repeats: Sequence[int] = REPEATS, *, key=None, rng: random.Random | None = None) -> dict:
    """Add n canaries (each repeated k times) to train.jsonl at seeded random positions and seal their secrets
    in out_dir/canaries.sealed.json. Returns the manifest entry: counts, format and the sealed file's name and
    hash, never a secret. Secrets come from the OS's CSPRNG (the split seed is public, the secrets must not be);
    `rng` is for tests only."""
    from privtune import fsio
    from privtune.registry import crypto

    train_path, out_dir = Path(train_path), Path(out_dir)
    canaries = make_canaries(n, rng or random.SystemRandom(), repeats=repeats)
    blob = crypto.read_bytes_maybe_encrypted(train_path) if train_path.exists() else b""
    lines = [ln for ln in blob.decode("utf-8").splitlines() if ln.strip()]
    rng = random.Random(seed)
    for rec in canary_records(canaries):
        lines.insert(rng.randint(0, len(lines)), json.dumps(rec, ensure_ascii=False, sort_keys=True))
    body = "".join(ln + "\n" for ln in lines)
    key = key or crypto.configured_key()
    if crypto.is_encrypted_bytes(blob) or key is not None:
        crypto.write_text_maybe_encrypted(train_path, body, key)
    else:
        fsio.write_text(train_path, body)
    sealed = {"format": SECRET_FORMAT, "question": QUESTION, "answer": ANSWER,
              "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "canaries": [asdict(c) for c in canaries]}
    path = crypto.write_text_maybe_encrypted(out_dir / SEALED_FILE, json.dumps(sealed, indent=1), key)
    return {"n": n, "records": sum(c.repeats for c in canaries),
            "by_repeats": {str(k): sum(c.repeats == k for c in canaries) for k in sorted(set(repeats))},
            "format": SECRET_FORMAT, "sealed_file": SEALED_FILE, "sealed_encrypted": key is not None,
            "sealed_sha256": crypto.sha256_plaintext(path, key)}


def read_sealed(data_dir: str | Path) -> tuple[list[Canary], dict] | None:
    """(canaries, sealed metadata) from DATA_DIR/canaries.sealed.json, or None when prepare inserted none."""
    from privtune.registry import crypto

    path = Path(data_dir) / SEALED_FILE
    if not path.is_file():
        return None
    try:
        sealed = json.loads(crypto.read_text_maybe_encrypted(path))
        canaries = [Canary(**c) for c in sealed["canaries"]]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"not a canary file written by `privtune prepare --canaries` ({type(e).__name__})",
                         where=str(path)) from None
    return canaries, sealed


# ------------------------------------------------------------------------------------------ exposure math
def rank_of(canary_nll: float, candidate_nll: Sequence[float]) -> float:
    """1 + how many candidates are likelier (lower log-perplexity); ties count half."""
    import numpy as np

    c = np.asarray(candidate_nll, dtype=float)
    return 1.0 + float((c < canary_nll).sum()) + 0.5 * float((c == canary_nll).sum())


def exposure_from_rank(rank: float, n_candidates: int) -> float:
    """log2(|C|) − log2(rank) over the set C = candidates + the canary: 0 when it ranks last, log2|C| first."""
    return math.log2(n_candidates + 1) - math.log2(rank)


def extrapolated_exposure(canary_nll: float, candidate_nll: Sequence[float], max_bits: float) -> tuple[float, dict]:
    """−log2 P(random secret at least as likely as the canary), P from a skew-normal fitted to the candidates'
    log-perplexities: how far beyond the sampled candidates the canary lies. Capped at `max_bits`."""
    import numpy as np
    from scipy import stats

    c = np.asarray(candidate_nll, dtype=float)
    a, loc, scale = stats.skewnorm.fit(c)
    log_cdf = float(stats.skewnorm.logcdf(canary_nll, a, loc, scale))
    bits = max_bits if not math.isfinite(log_cdf) else min(max_bits, max(0.0, -log_cdf / math.log(2)))
    return bits, {"a": round(float(a), 4), "loc": round(float(loc), 4), "scale": round(float(scale), 4)}


def exposure(canary_nll: float, candidate_nll: Sequence[float], max_bits: float) -> dict:
    """Rank-based exposure; when the canary beats every candidate, the skew-normal extrapolation (if higher)."""
    n = len(candidate_nll)
    rank = rank_of(canary_nll, candidate_nll)
    by_rank = exposure_from_rank(rank, n)
    ext, fit = extrapolated_exposure(canary_nll, candidate_nll, max_bits)
    beyond = rank == 1.0
    return {"exposure": round(max(by_rank, ext) if beyond else by_rank, 3), "rank": rank, "candidates": n,
            "exposure_rank": round(by_rank, 3), "exposure_extrapolated": round(ext, 3), "extrapolated": beyond,
            "skewnorm": fit}


# ------------------------------------------------------------------------------------------ scoring
@dataclass
class ScoringPlan:
    prefix_ids: list[int]
    bodies: list[list[int]]  # per head: its tokens after the prefix, up to the enumerated digits
    digit_ids: list[int]  # token id of each digit 0-9 at the enumerated positions
    depth: int  # digits enumerated per head (0 = each body is a whole candidate)


def split_prefix(tokenizer, c: Canary) -> tuple[str, str]:
    """(the canary's rendered training text up to its secret, the secret)."""
    text = tokenizer.apply_chat_template(canary_messages(c), tokenize=False)
    at = text.rfind(c.secret)
    return text[:at], c.secret


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def plan(tokenizer, prefix_text: str, heads: list[str], depth: int) -> ScoringPlan:
    """Token layout of `heads` (secrets minus their last `depth` digits) after the prefix. Falls back to
    depth 0 (no enumeration) when the trailing digits do not tokenize one token per digit after every head."""
    zeros = "0" * depth
    full = _ids(tokenizer, [prefix_text + h + zeros for h in heads])
    probe = _ids(tokenizer, [prefix_text + "0", prefix_text + "1"])
    p = next((i for i, (a, b) in enumerate(zip(*probe, strict=False)) if a != b), min(map(len, probe)))
    prefix_ids = probe[0][:p]
    if any(ids[:p] != prefix_ids for ids in full):
        raise InputError("the secret's context does not tokenize stably; cannot score canaries with this tokenizer")
    if depth:
        digit_ids = [_ids(tokenizer, [prefix_text + heads[0] + zeros[:-1] + d])[0][-1] for d in string.digits]
        ok = len(set(digit_ids)) == 10
        for h, ids in zip(heads, full, strict=True):
            if not ok:
                break
            body = ids[p:len(ids) - depth]
            check = _ids(tokenizer, [prefix_text + h + d * depth for d in string.digits])
            ok = all(c[:p] == prefix_ids and c[p:] == body + [digit_ids[int(d)]] * depth
                     for c, d in zip(check, string.digits, strict=True))
        if ok:
            return ScoringPlan(prefix_ids, [ids[p:len(ids) - depth] for ids in full], digit_ids, depth)
    return ScoringPlan(prefix_ids, [ids[p:] for ids in full], [], 0)


def score_plan(model, sp: ScoringPlan, batch_size: int = 128):
    """Log-perplexity (summed NLL, nats) of every candidate: array [len(bodies), 10**depth], where column j is the
    body followed by the digits of j (zero-padded to depth). One prefix pass; bodies of equal length batched."""
    import numpy as np
    import torch

    device = next(model.parameters()).device
    width = 10 ** sp.depth
    out = np.zeros((len(sp.bodies), width))
    rows_per_head = 10 ** max(sp.depth - 1, 0)
    per_batch = max(1, batch_size // rows_per_head)
    digit_ids = torch.tensor(sp.digit_ids, dtype=torch.long, device=device)
    with torch.inference_mode():
        first = model(input_ids=torch.tensor([sp.prefix_ids], device=device), use_cache=True)
        prefix_cache, prefix_lp = first.past_key_values, torch.log_softmax(first.logits[0, -1].float(), -1)
        by_len: dict[int, list[int]] = {}
        for i, b in enumerate(sp.bodies):
            by_len.setdefault(len(b), []).append(i)
        for length, idx in by_len.items():
            for s in range(0, len(idx), per_batch):
                rows = idx[s:s + per_batch]
                x = torch.tensor([sp.bodies[i] for i in rows], dtype=torch.long, device=device)
                nll = -prefix_lp[x[:, 0]]
                feed = x if sp.depth else x[:, :-1]
                tail = torch.zeros((len(rows), 1), device=device)
                if feed.shape[1]:
                    cache = copy.deepcopy(prefix_cache)
                    cache.batch_repeat_interleave(len(rows))
                    res = model(input_ids=feed, past_key_values=cache, use_cache=sp.depth > 1)
                    lp = torch.log_softmax(res.logits.float(), -1)
                    if length > 1:
                        nll -= lp[:, :length - 1].gather(-1, x[:, 1:, None])[..., 0].sum(1)
                    if sp.depth:
                        tail = lp[:, -1][:, digit_ids]  # [R, 10]: log p(next digit) per row (prefix so far)
                        for _ in range(sp.depth - 1):  # each row branches into its 10 digits
                            cache.batch_repeat_interleave(10)
                            nxt = digit_ids.repeat(tail.shape[0])[:, None]  # row r*10 + d feeds digit d
                            step = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                            lp2 = torch.log_softmax(step.logits[:, -1].float(), -1)[:, digit_ids]
                            tail = tail.reshape(-1, 1) + lp2
                        tail = tail.reshape(len(rows), -1)
                out[rows] = (nll[:, None] - tail).cpu().numpy()
    return out


def canary_exposure(model, tokenizer, c: Canary, n_candidates: int, rng: random.Random, batch_size: int = 128,
                    depth: int = ENUM_DEPTH) -> dict:
    """Exposure of one canary against ≥ n_candidates random secrets of its format, in its own context."""
    prefix_text, secret = split_prefix(tokenizer, c)
    depth = min(depth, len(secret) - len(secret.rstrip(string.digits)))
    per_head = 10 ** depth
    own = secret[:len(secret) - depth]
    heads: list[str] = []
    seen = {own}
    while len(heads) * per_head < n_candidates:
        h = random_secret(rng, SECRET_FORMAT)[:len(secret) - depth]
        if h not in seen:
            seen.add(h)
            heads.append(h)
    sp = plan(tokenizer, prefix_text, [own, *heads], depth)
    if sp.depth != depth:  # no enumeration: every candidate is its own random secret
        fulls: list[str] = []
        seen = {secret}
        while len(fulls) < n_candidates:
            s = random_secret(rng, SECRET_FORMAT)
            if s not in seen:
                seen.add(s)
                fulls.append(s)
        sp = plan(tokenizer, prefix_text, [secret, *fulls], 0)
    nll = score_plan(model, sp, batch_size)
    col = int(secret[len(secret) - sp.depth:] or 0) if sp.depth else 0
    canary_nll = float(nll[0, col])
    candidates = nll[1:].reshape(-1)
    result = exposure(canary_nll, candidates, space_bits())
    return {"id": c.id, "repeats": c.repeats, "inserted": c.repeats > 0, **result,
            "log_perplexity": round(canary_nll, 4), "candidate_log_perplexity": {
                "median": round(float(_median(candidates)), 4), "min": round(float(candidates.min()), 4)},
            "enumerated_digits": sp.depth, "secret_tokens": len(sp.bodies[0]) + sp.depth}


def _median(x) -> float:
    import numpy as np

    return float(np.median(x))
