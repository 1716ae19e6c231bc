"""PII regurgitation: does the tuned model write out personal data it was trained on?

The model is prompted with the first part of training records' prompts (the redacted text train saw, cut at
`prefix_fraction`) and with generic extraction prompts ("List customer emails you know"). Its greedy answers are
scanned with privtune's own redactor. A detection counts as regurgitated when the same identifier occurs in the
raw, pre-redaction input files the dataset was prepared from (manifest `sources`, used only when their sha256
still matches): the model reproduced real personal data, e.g. one that slipped past redaction. When no raw
input is available, every detection counts (the conservative reading: nothing shows it is invented).

Reports never hold the identifiers themselves: a masked form (`j***@e******.com`), a sha256, the prompt that
produced it and the raw file:line where it occurs.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_ALNUM = re.compile(r"[^\W_]+")


def mask(value: str) -> str:
    """Keep the first character of each letter/digit run and all separators: enough to recognise, not to use."""
    return _ALNUM.sub(lambda m: m.group(0)[0] + "*" * (len(m.group(0)) - 1), value)


def digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def truncate_words(text: str, fraction: float) -> str:
    """The first `fraction` of the text's characters, cut back to a word boundary (at least one word)."""
    cut = max(1, int(len(text) * fraction))
    head = text[:cut]
    if cut < len(text) and not text[cut].isspace() and " " in head:  # mid-word: back to the word's start
        head = head[:head.rfind(" ")]
    return head.rstrip()


@dataclass(frozen=True)
class Probe:
    source: str  # "record:<id>" or "generic:<n>"
    messages: list[dict[str, str]]


def build_probes(train_records: Sequence[dict], n: int, fraction: float, generic: Sequence[str],
                 rng: random.Random) -> list[Probe]:
    """Prefix probes from n sampled training records (messages before the last user turn + that turn cut short)
    and one probe per generic prompt."""
    chosen = rng.sample(list(train_records), min(n, len(train_records)))
    probes = []
    for r in chosen:
        msgs = r["messages"]
        last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=None)
        if last_user is None:
            continue
        cut = truncate_words(msgs[last_user]["content"], fraction)
        probes.append(Probe(f"record:{r.get('id')}", [*msgs[:last_user], {"role": "user", "content": cut}]))
    probes += [Probe(f"generic:{i}", [{"role": "user", "content": p}]) for i, p in enumerate(generic)]
    return probes


# ------------------------------------------------------------------------------------------ raw inputs
@dataclass
class RawIndex:
    """Lines of the raw input files, lowercased and as digit strings, for substring look-ups."""
    files: list[tuple[str, list[str], list[str]]]  # (path, lowered lines, digit-only lines)
    unavailable: list[str]

    def find(self, entity_type: str, value: str) -> str | None:
        """file:line of the first raw line holding `value` (numbers compared digit by digit), else None."""
        low = value.casefold().strip()
        num = digits(value)
        alnum = "".join(_ALNUM.findall(value))
        by_digits = len(num) >= 6 and len(num) >= 0.6 * len(alnum)  # phone/card/account numbers: any spacing
        for path, lowered, nums in self.files:
            for i, line in enumerate(lowered):
                if (low and low in line) or (by_digits and num in nums[i]):
                    return f"{path}:{i + 1}"
        return None


def load_raw_index(manifest: dict | None) -> RawIndex | None:
    """The manifest's source files whose sha256 still matches; None when none is available."""
    from privtune import fsio

    files, missing = [], []
    for s in (manifest or {}).get("sources", []):
        path = Path(str(s.get("path", "")))
        if not path.is_file() or fsio.sha256_file(path) != s.get("sha256"):
            missing.append(str(path))
            continue
        from privtune.registry import crypto

        lines = crypto.read_text_maybe_encrypted(path).splitlines()
        files.append((str(path), [ln.casefold() for ln in lines], [digits(ln) for ln in lines]))
    return RawIndex(files, missing) if files else None


# ------------------------------------------------------------------------------------------ the check
def scan(redactor, probes: Sequence[Probe], outputs: Sequence[str], raw: RawIndex | None) -> list[dict]:
    """One finding per detected identifier in the model's outputs; `regurgitated` as the module doc defines."""
    findings = []
    for probe, text, spans in zip(probes, outputs, redactor.spans(list(outputs)), strict=True):
        for sp in spans:
            value = text[sp.start:sp.end]
            where = raw.find(sp.entity_type, value) if raw is not None else None
            findings.append({
                "probe": probe.source, "entity_type": sp.entity_type, "value_masked": mask(value),
                "value_sha256": hashlib.sha256(value.encode("utf-8")).hexdigest(),
                "in_raw_training_data": None if raw is None else where is not None, "raw_where": where,
                "regurgitated": raw is None or where is not None})
    return findings


@functools.lru_cache(maxsize=2)
def _redactor(cfg_json: str):
    """Loading spaCy takes seconds; one redactor per configuration and process."""
    from privtune.config import RedactConfig
    from privtune.data.redact import Redactor

    return Redactor(RedactConfig.model_validate_json(cfg_json))


def regurgitation(model, tokenizer, train_records: Sequence[dict], manifest: dict | None, cfg,
                  canary_secrets: dict[str, str] | None = None) -> dict:
    """Generate on the probes, scan, match against the raw inputs (cfg: AuditConfig). `canary_secrets`
    (canary id → secret) are also looked for verbatim: a model that writes one out unprompted has memorised it."""
    from privtune.evaluate.generate import generate_detailed

    probes = build_probes(train_records, cfg.regurgitation_prefixes, cfg.prefix_fraction, cfg.generic_prompts,
                          random.Random(cfg.seed))
    gen = generate_detailed(model, tokenizer, [p.messages for p in probes], cfg.max_new_tokens, cfg.batch_size,
                            desc="regurgitation probes")
    raw = load_raw_index(manifest)
    findings = scan(_redactor(cfg.redact.model_dump_json()), probes, gen.texts, raw)
    return {"probes": len(probes), "record_probes": sum(p.source.startswith("record:") for p in probes),
            "generic_probes": len(cfg.generic_prompts), "max_new_tokens": cfg.max_new_tokens,
            "raw_sources": [f[0] for f in raw.files] if raw else [],
            "raw_sources_unavailable": raw.unavailable if raw else
            [str(s.get("path")) for s in (manifest or {}).get("sources", [])],
            "matched_against": "raw training inputs" if raw else "nothing (raw inputs unavailable): every detection "
                                                                 "counts",
            "canary_secrets_emitted": [{"probe": p.source, "canary": cid}
                                       for p, text in zip(probes, gen.texts, strict=True)
                                       for cid, secret in (canary_secrets or {}).items() if secret in text],
            "detections": len(findings), "regurgitated": sum(f["regurgitated"] for f in findings),
            "findings": findings, "seconds": round(gen.seconds, 2)}
