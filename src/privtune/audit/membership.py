"""Membership inference: can an attacker with the tuned model tell training records from held-out ones?

Two standard score functions, each on the supervised tokens (the assistant's answer, exactly the tokens train
computes its loss on, via train.collate.encode_chat):
- loss (Yeom et al. 2018): score = −mean NLL of the answer's tokens; members have lower loss.
- Min-K% prob (Shi et al. 2024, k = 20%): score = mean log-prob of the k% least likely answer tokens (at least
  one); robust to records that are easy as a whole but contain a few surprising, memorised tokens.
Members = records of train.jsonl (canaries excluded), non-members = test.jsonl, the same number of each
(seeded sample). Reported: ROC AUC (0.5 = indistinguishable; the gate) and TPR at 1% FPR (what an attacker
who may rarely be wrong recovers; Carlini et al. 2022 argue this matters more than AUC).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


# ------------------------------------------------------------------------------------------ scores (pure)
def loss_score(token_logprobs: Sequence[float]) -> float:
    return float(np.mean(token_logprobs)) if len(token_logprobs) else 0.0


def min_k_score(token_logprobs: Sequence[float], k: float = 0.2) -> float:
    """Mean of the lowest ceil(k·n) token log-probs (at least one token)."""
    lp = np.sort(np.asarray(token_logprobs, dtype=float))
    if not len(lp):
        return 0.0
    return float(lp[:max(1, math.ceil(k * len(lp)))].mean())


def roc_auc(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> float:
    """P(score of a random member > score of a random non-member), ties half (= scikit-learn's roc_auc_score)."""
    from sklearn.metrics import roc_auc_score

    y = [1] * len(member_scores) + [0] * len(nonmember_scores)
    return float(roc_auc_score(y, [*member_scores, *nonmember_scores]))


def tpr_at_fpr(member_scores: Sequence[float], nonmember_scores: Sequence[float], fpr: float = 0.01) -> float:
    """Highest share of members flagged while at most `fpr` of non-members are (threshold strictly above them)."""
    from sklearn.metrics import roc_curve

    y = [1] * len(member_scores) + [0] * len(nonmember_scores)
    fprs, tprs, _ = roc_curve(y, [*member_scores, *nonmember_scores])
    ok = fprs <= fpr + 1e-12
    return float(tprs[ok].max()) if ok.any() else 0.0


def auc_ci(members: Sequence[float], nonmembers: Sequence[float], n_resamples: int = 1000, seed: int = 0,
           confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC, members and non-members resampled separately.

    With the few dozen test records a fine-tuning set has, an AUC of 0.62 can be noise: the interval says so."""
    from sklearn.metrics import roc_auc_score

    m, n = np.asarray(members, float), np.asarray(nonmembers, float)
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(len(m)), np.zeros(len(n))]
    aucs = [roc_auc_score(y, np.r_[rng.choice(m, len(m)), rng.choice(n, len(n))]) for _ in range(n_resamples)]
    lo, hi = np.quantile(aucs, [(1 - confidence) / 2, (1 + confidence) / 2])
    return round(float(lo), 4), round(float(hi), 4)


def attack_summary(members: Sequence[float], nonmembers: Sequence[float]) -> dict:
    return {"auc": round(roc_auc(members, nonmembers), 4), "auc_ci95": list(auc_ci(members, nonmembers)),
            "tpr_at_1pct_fpr": round(tpr_at_fpr(members, nonmembers), 4),
            "mean_member": round(float(np.mean(members)), 4), "mean_nonmember": round(float(np.mean(nonmembers)), 4)}


# ------------------------------------------------------------------------------------------ model side
def answer_logprobs(model, tokenizer, records: Sequence[dict], max_seq_len: int = 512,
                    batch_size: int = 8) -> list[list[float]]:
    """Per record, the log-prob the model gives each supervised (answer) token, as train's loss sees them."""
    import torch

    from privtune.train.collate import IGNORE, collate, encode_chat

    examples = [encode_chat(tokenizer, str(r.get("id", i)), r["messages"], max_seq_len)[0]
                for i, r in enumerate(records)]
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]))
    out: list[list[float]] = [[] for _ in examples]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            batch = collate([examples[i] for i in idx], pad)
            logits = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device)).logits.float()
            labels = batch["labels"][:, 1:].to(device)
            lp = torch.log_softmax(logits[:, :-1], -1)
            tok_lp = lp.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
            keep = labels != IGNORE
            for row, i in enumerate(idx):
                out[i] = tok_lp[row][keep[row]].tolist()
    return out


def membership_inference(model, tokenizer, members: Sequence[dict], nonmembers: Sequence[dict],
                         k: float = 0.2, batch_size: int = 8) -> dict:
    lps = answer_logprobs(model, tokenizer, [*members, *nonmembers], batch_size=batch_size)
    m, n = lps[:len(members)], lps[len(members):]
    return {"members": len(members), "nonmembers": len(nonmembers), "k": k, "target": "answer tokens",
            "attacks": {"loss": attack_summary([loss_score(x) for x in m], [loss_score(x) for x in n]),
                        "min_k": attack_summary([min_k_score(x, k) for x in m], [min_k_score(x, k) for x in n])}}
