"""Scores for generated text against references; pure functions over strings, no model needed.

Text metrics (every one in [0, 1] except BLEU):
- exact_match: 1 when prediction and reference are equal after `normalize_text` (casefold, Unicode NFKC,
  punctuation and symbols dropped, `_`/`-`/`/` read as spaces, English articles a/an/the removed, whitespace
  collapsed: SQuAD-style, but Unicode-aware and label-friendly, so `Card_Lost.` equals `card lost`).
- token_f1: SQuAD-style bag-of-tokens F1 over the same normalised tokens, averaged over records.
- rouge_l: rouge-score's ROUGE-L F-measure, averaged. We pass our own Unicode tokenizer because rouge-score's
  default one keeps only [a-z0-9] and scores any non-English text as 0.
- bleu: sacrebleu corpus BLEU on the raw strings (13a tokenizer, exp smoothing) on sacrebleu's 0–100 scale,
  left as sacrebleu reports it so it compares with published numbers. `use_effective_order=True` only changes
  corpora in which no output has 4 tokens (labels): plain BLEU is 0 there by construction.

Label metrics (only when the references are class labels, see `is_label_task`):
- accuracy and macro_f1 (scikit-learn) after mapping each prediction to a known label with `to_label`; a
  prediction that maps to no label is its own class `<other>`: wrong for accuracy, a false negative for its
  reference class, and not itself averaged into macro_f1 (which runs over the references' label set).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

OTHER = "<other>"
MAX_LABEL_WORDS = 4
MAX_LABEL_CHARS = 40

_ARTICLES = frozenset({"a", "an", "the"})
_SEPARATORS = frozenset("_-/\\")
_WORD = re.compile(r"[^\W_]+")
# "The answer is:", "Label =", "Category -", "Predicted intent:" ... (only as whole words: `class_a` stays intact)
_WRAPPER = re.compile(
    r"^(?:(?:the|final|predicted|correct|my)\s+)*"
    r"(?:answer|label|category|class|intent|classification|prediction|output|response)\b"
    r"(?:\s+(?:is|would\s+be|should\s+be))?\s*[:=\-–—]?\s*"
)


# ------------------------------------------------------------------------------------ normalisation
def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _despace_punct(text: str) -> str:
    """Separators become spaces, every other punctuation or symbol character is dropped."""
    out = []
    for ch in text:
        if ch in _SEPARATORS or unicodedata.category(ch) in ("Pc", "Pd"):
            out.append(" ")
        elif unicodedata.category(ch)[0] in "PS":
            continue
        else:
            out.append(ch)
    return "".join(out)


def normalize_text(text: str) -> str:
    words = _despace_punct(_fold(text)).split()
    return " ".join(w for w in words if w not in _ARTICLES)


def text_tokens(text: str) -> list[str]:
    return normalize_text(text).split()


class _RougeTokenizer:
    """rouge-score calls `.tokenize(text)`; keeps letters and digits of every script."""

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(_fold(text))


# ----------------------------------------------------------------------------------- text metrics
def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_text(prediction) == normalize_text(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = text_tokens(prediction), text_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """Per-record ROUGE-L F-measure (empty vs empty counts as a match)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_RougeTokenizer())
    tok = _RougeTokenizer()
    out = []
    for pred, ref in zip(predictions, references, strict=True):
        if not tok.tokenize(pred) and not tok.tokenize(ref):
            out.append(1.0)
        else:
            out.append(scorer.score(ref, pred)["rougeL"].fmeasure)
    return out


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    import sacrebleu

    if not predictions:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)], use_effective_order=True).score)


# ------------------------------------------------------------------------------------------ labels
def label_key(text: str) -> str:
    """Canonical form of a label: casefolded words joined by `_` (`Card Lost`, `card-lost` → `card_lost`)."""
    return "_".join(_WORD.findall(_fold(text)))


def is_label_task(references: Sequence[str]) -> bool:
    """References look like class labels: all short (≤ 4 words, ≤ 40 chars) and few distinct values
    (≤ max(2, n/3), i.e. each label repeats about three times or more). Free-text answers almost never do."""
    if not references:
        return False
    keys = [label_key(r) for r in references]
    short = all(k and len(r.split()) <= MAX_LABEL_WORDS and len(r.strip()) <= MAX_LABEL_CHARS
                for r, k in zip(references, keys, strict=True))
    return short and len(set(keys)) <= max(2, len(references) / 3)


def label_set(references: Sequence[str]) -> list[str]:
    return sorted({label_key(r) for r in references})


def _strip_wrappers(text: str) -> str:
    text = _fold(text).strip().strip("\"'`*“”‘’«»[](){}<> \t")
    previous = None
    while previous != text:
        previous = text
        text = _WRAPPER.sub("", text, count=1).strip().strip("\"'`*“”‘’«»[](){}<> \t")
    return text


def _contains(seq: list[str], sub: list[str]) -> bool:
    n = len(sub)
    return any(seq[i:i + n] == sub for i in range(len(seq) - n + 1))


def to_label(prediction: str, labels: Sequence[str]) -> str:
    """Map free generated text to one known label key, or OTHER.

    Tries the whole text, then with wrappers such as "The answer is:" removed, then its first line; last,
    if exactly one label occurs inside it as whole words (`my card_lost issue` → card_lost; a label contained
    in a longer matching label does not count), that one.
    """
    known = set(labels)
    lines = [ln for ln in prediction.splitlines() if ln.strip()]
    candidates = [prediction, _strip_wrappers(prediction)]
    if lines:
        candidates += [lines[0], _strip_wrappers(lines[0])]
    for cand in candidates:
        key = label_key(cand)
        if key in known:
            return key
    words = _WORD.findall(_fold(prediction))
    hits = [lab for lab in labels if lab and _contains(words, lab.split("_"))]
    maximal = [h for h in hits if not any(o != h and _contains(o.split("_"), h.split("_")) for o in hits)]
    return maximal[0] if len(maximal) == 1 else OTHER


def classification_scores(pred_labels: Sequence[str], ref_labels: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    present = sorted(set(ref_labels))
    return {
        "accuracy": float(accuracy_score(ref_labels, pred_labels)),
        "macro_f1": float(f1_score(ref_labels, pred_labels, labels=present, average="macro", zero_division=0)),
    }


def per_label_scores(pred_labels: Sequence[str], ref_labels: Sequence[str],
                     labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each label (which intents the model gets wrong)."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, n = precision_recall_fscore_support(list(ref_labels), list(pred_labels), labels=list(labels),
                                                 zero_division=0)
    return {lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(n[i])}
            for i, lab in enumerate(labels)}


def confusion(pred_labels: Sequence[str], ref_labels: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """Rows: reference label, columns: predicted label, in the order of `labels` (+ OTHER last)."""
    from sklearn.metrics import confusion_matrix

    order = [*labels, OTHER]
    return confusion_matrix(list(ref_labels), list(pred_labels), labels=order).tolist()


# ----------------------------------------------------------------------------------------- summary
TEXT_METRICS = ("exact_match", "token_f1", "rouge_l", "bleu")
LABEL_METRICS = ("accuracy", "macro_f1")


def score(predictions: Sequence[str], references: Sequence[str],
          labels: Sequence[str] | None = None) -> dict[str, float]:
    """All metrics for one system; `labels` (known label keys) switches the label metrics on."""
    n = len(references)
    if len(predictions) != n:
        raise ValueError(f"{len(predictions)} predictions for {n} references")
    if n == 0:
        return {}
    out = {
        "exact_match": sum(map(exact_match, predictions, references)) / n,
        "token_f1": sum(map(token_f1, predictions, references)) / n,
        "rouge_l": sum(rouge_l(predictions, references)) / n,
        "bleu": bleu(predictions, references),
    }
    if labels is not None:
        preds = [to_label(p, labels) for p in predictions]
        refs = [label_key(r) for r in references]
        out.update(classification_scores(preds, refs))
    return out
