"""privtune's own PII recognizers: patterns, checksums and context words, as small pure functions.

spaCy's NER finds names and places; everything with a shape (numbers, keys, addresses) is found here, because a
pattern plus a checksum or a context word is both more accurate and far faster than a statistical model.
Each rule yields `Span`s with a score; the redactor keeps spans at or above `score_threshold` (0.4), so a
weak pattern (score 0.3) only counts when a context word lifts it (+0.4).

Design choices worth knowing:
- a value that carries a checksum (card/Luhn, IBAN/mod-97, ABA routing, Aadhaar/Verhoeff, NHS/mod-11, bitcoin
  base58check/bech32, VIN, IMEI, codice fiscale, DNI/NIE, NRIC, HETU, DEA) is only reported when the checksum
  holds, unless a context word ("card", "IBAN", "NHS", "VIN") introduces it;
- identifiers without a checksum (passport, licence, MRN, insurance, employee and customer ids, passwords)
  need their context word: on their own they are indistinguishable from order numbers;
- names: titles ("Dr. Rosa Fernandez"), cues ("my name is"), and a gazetteer of first/last names (Faker's
  name lists across Latin-script locales) for ALL-CAPS and lower-case names the small NER model misses.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

CONTEXT_BOOST = 0.4
CONTEXT_WINDOW = 48  # characters before a match searched for a context word


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    entity_type: str
    score: float

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type, "score": round(self.score, 4)}


# ------------------------------------------------------------------------------------------- checksums
def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def luhn_ok(value: str) -> bool:
    ds = digits(value)
    if len(ds) < 12 or len(set(ds)) == 1:
        return False
    total = 0
    for i, ch in enumerate(reversed(ds)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    s = re.sub(r"\s", "", value).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def aba_ok(value: str) -> bool:
    ds = digits(value)
    if len(ds) != 9 or len(set(ds)) == 1:
        return False
    w = (3, 7, 1) * 3
    return sum(int(d) * k for d, k in zip(ds, w, strict=True)) % 10 == 0


_VERHOEFF_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
               [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
               [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
               [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_VERHOEFF_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
               [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
               [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]


def verhoeff_ok(value: str) -> bool:
    ds = digits(value)
    c = 0
    for i, ch in enumerate(reversed(ds)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][int(ch)]]
    return bool(ds) and c == 0


def nhs_ok(value: str) -> bool:
    ds = digits(value)
    if len(ds) != 10 or len(set(ds)) == 1:
        return False
    check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(ds[:9])) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(ds[9])


def ssn_ok(value: str) -> bool:
    ds = digits(value)
    area, group, serial = ds[:3], ds[3:5], ds[5:]
    return len(ds) == 9 and area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def itin_ok(value: str) -> bool:
    ds = digits(value)
    g = int(ds[3:5]) if len(ds) == 9 else -1
    return len(ds) == 9 and ds[0] == "9" and (50 <= g <= 65 or 70 <= g <= 88 or 90 <= g <= 92 or 94 <= g <= 99)


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def looks_secret(value: str) -> bool:
    """A random-looking token: long, high entropy, mixing character classes (not a word or a plain number)."""
    classes = sum(bool(re.search(p, value)) for p in ("[a-z]", "[A-Z]", r"\d", r"[^A-Za-z\d]"))
    if re.fullmatch(r"[0-9a-f]{24,}|[0-9A-F]{24,}", value):  # hex has 16 symbols: a random 32-digit key scores ~3.1
        return entropy(value) >= 2.8 and classes >= 2
    return len(value) >= 16 and entropy(value) >= 3.2 and classes >= 2


def ip_ok(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def has_digit(value: str) -> bool:
    return any(ch.isdigit() for ch in value)


BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check_ok(value: str) -> bool:
    """Bitcoin/Litecoin legacy address: base58 of version + 20-byte hash + 4 bytes of double SHA-256."""
    import hashlib

    n = 0
    for ch in value:
        i = BASE58_ALPHABET.find(ch)
        if i < 0:
            return False
        n = n * 58 + i
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    raw = b"\0" * (len(value) - len(value.lstrip("1"))) + raw
    if len(raw) != 25:
        return False
    return hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]


BECH32_ALPHABET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32_polymod(hrp: str, values: list[int]) -> int:
    """BIP-173's BCH checksum state over the expanded human-readable part and the 5-bit data values."""
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32_ok(value: str) -> bool:
    """SegWit address (BIP-173 bech32 or BIP-350 bech32m): the 6-character BCH checksum holds."""
    if value.lower() != value and value.upper() != value:
        return False
    hrp, _, data = value.lower().rpartition("1")
    if not hrp or len(data) < 6 or any(ch not in BECH32_ALPHABET for ch in data):
        return False
    return bech32_polymod(hrp, [BECH32_ALPHABET.index(c) for c in data]) in (1, 0x2BC830A3)


_VIN_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
               **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
               **dict(zip("STUVWXYZ", range(2, 10), strict=True))}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_ok(value: str) -> bool:
    """North-American VIN check digit (position 9, ISO 3779 transliteration, 'X' for 10)."""
    value = value.upper()
    if len(value) != 17 or not has_digit(value) or not any(ch.isalpha() for ch in value):
        return False
    try:
        total = sum(_VIN_VALUES[ch] * w for ch, w in zip(value, _VIN_WEIGHTS, strict=True))
    except KeyError:
        return False
    check = total % 11
    return value[8] == ("X" if check == 10 else str(check))


TIMESTAMP_DIGITS = regex.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:[01]\d|2[0-3])[0-5]\d(?:[0-5]\d)?")


def gtin_ok(value: str) -> bool:
    """A GS1 barcode number (EAN-8, UPC-A, EAN-13, GTIN-14): weights 3,1,3,… from the right, before the check digit."""
    if len(value) not in (8, 12, 13, 14) or not value.isdigit():
        return False
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(value[:-1])))
    return (10 - total % 10) % 10 == int(value[-1])


def card_ok(value: str) -> bool:
    """Luhn, and a 15-digit number must carry a 15-digit brand's prefix (Amex 34/37, UATP 1, JCB 2131/1800):
    other 15-digit Luhn numbers are device IMEIs; only Visa issued 13 digits (a South African ID number has them
    too). "89…" is the telecom industry's prefix: a SIM's ICCID."""
    ds = digits(value)
    if TIMESTAMP_DIGITS.fullmatch(ds):
        return False  # "20240815141203": an HL7 or log timestamp that happens to pass Luhn
    return (luhn_ok(ds) and (len(ds) != 15 or ds.startswith(("34", "37", "1", "2131")))
            and (len(ds) != 13 or ds.startswith("4")) and not (ds.startswith("89") and len(ds) >= 18))


def cn_resident_id_ok(value: str) -> bool:
    """GB 11643-1999: weights 2^(17-i) mod 11 over the first 17 digits; the check maps through "10X98765432"."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(value[:17]))
    return "10X98765432"[total % 11] == value[17].upper()


def imei_ok(value: str) -> bool:
    ds = digits(value)
    return len(ds) == 15 and luhn_ok(ds)


def tckn_ok(value: str) -> bool:
    d = [int(c) for c in digits(value)]
    return (len(d) == 11 and d[0] != 0 and (sum(d[0:9:2]) * 7 - sum(d[1:8:2])) % 10 == d[9]
            and sum(d[:10]) % 10 == d[10])


def clabe_ok(value: str) -> bool:
    """Mexico's 18-digit interbank account number: weights 3, 7, 1 and a mod-10 check digit."""
    d = [int(c) for c in digits(value)]
    return len(d) == 18 and (10 - sum(x * (3, 7, 1)[i % 3] % 10 for i, x in enumerate(d[:17])) % 10) % 10 == d[17]


def coordinates_ok(value: str) -> bool:
    """A decimal latitude, longitude pair in range (hemisphere letters allowed)."""
    nums = re.findall(r"[-+]?\d+(?:\.\d+)?", value)
    return len(nums) == 2 and abs(float(nums[0])) <= 90 and abs(float(nums[1])) <= 180


_CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8,
                    12, 14, 16, 10, 22, 25, 24, 23), strict=True))


def codice_fiscale_ok(value: str) -> bool:
    """Italian tax code: the 16th letter is the weighted sum of the first 15 mod 26."""
    v = value.upper()
    if len(v) != 16:
        return False
    total = sum(_CF_ODD[ch] if i % 2 == 0 else (int(ch) if ch.isdigit() else ord(ch) - 65)
                for i, ch in enumerate(v[:15]))
    return v[15] == chr(65 + total % 26)


def dni_ok(value: str) -> bool:
    """Spanish DNI/NIE: the letter is the number mod 23 (NIE's X/Y/Z stand for 0/1/2)."""
    v = value.upper().replace("-", "").replace(" ", "")
    body = v[:-1].replace("X", "0", 1).replace("Y", "1", 1).replace("Z", "2", 1) if v[0] in "XYZ" else v[:-1]
    return body.isdigit() and len(body) == 8 and v[-1] == "TRWAGMYFPDXBNJZSQVHLCKE"[int(body) % 23]


def nric_ok(value: str) -> bool:
    """Singapore NRIC/FIN (S, T, F, G series): weighted digits plus a series offset pick the check letter."""
    v = value.upper()
    if len(v) != 9 or v[0] not in "STFG" or not v[1:8].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(v[1:8], (2, 7, 6, 5, 4, 3, 2), strict=True)) + (4 if v[0] in "TG" else 0)
    letters = "JZIHGFEDCBA" if v[0] in "ST" else "XWUTRQPNMLK"
    return v[8] == letters[total % 11]


def nir_ok(value: str) -> bool:
    """French social security number (NIR): 13 digits (Corsica 2A/2B) and a key of 97 minus the number mod 97."""
    v = regex.sub(r"\s", "", value).upper()
    if len(v) != 15:
        return False
    body = v[:13].replace("2A", "19").replace("2B", "18")
    return body.isdigit() and v[13:].isdigit() and 97 - int(body) % 97 == int(v[13:])


def hetu_ok(value: str) -> bool:
    """Finnish personal identity code: DDMMYY, century sign, 3 digits, mod-31 check character."""
    v = value.upper()
    if len(v) != 11 or not (v[:6] + v[7:10]).isdigit():
        return False
    return v[10] == "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(v[:6] + v[7:10]) % 31]


def dea_ok(value: str) -> bool:
    """US DEA registration: (d1+d3+d5) + 2·(d2+d4+d6) ends in the 7th digit."""
    ds = [int(ch) for ch in value[2:]]
    return len(ds) == 7 and (ds[0] + ds[2] + ds[4] + 2 * (ds[1] + ds[3] + ds[5])) % 10 == ds[6]


# ------------------------------------------------------------------------------------------------ rules
@dataclass(frozen=True)
class Rule:
    """A pattern for one entity type. The value is group `v` when the pattern has one, else the whole match.
    `validate` (checksum or shape) must hold; `context` words in the window before lift the score."""

    entity: str
    pattern: str
    score: float
    validate: Callable[[str], bool] | None = None
    context: tuple[str, ...] = ()
    flags: int = 0
    invalid_score: float | None = None  # score when validate fails (None = drop)


def word_occurrences(text: str, word: str, not_before: str, not_after: str,
                     ignore_case: bool = False) -> Iterator[tuple[int, int]]:
    """Where `word` stands alone in `text`: the character before it is no letter, digit or one of `not_before`, the
    one after no letter, digit or one of `not_after`, and no "." joins it to a word ("anna.smith"). A plain string
    search: a regex per name and text would churn the regex module's compile cache (500 patterns) on every text."""
    hay, needle = (text.lower(), word.lower()) if ignore_case and len(text.lower()) == len(text) else (text, word)
    n, i = len(needle), hay.find(needle)
    while n and i != -1:
        before = text[i - 1] if i else ""
        after = text[i + n] if i + n < len(text) else ""
        if not (before and (before.isalnum() or before in not_before)) and not (
                after and (after.isalnum() or after in not_after)) and not (
                after == "." and i + n + 1 < len(text) and (text[i + n + 1].isalnum() or text[i + n + 1] == "_")):
            yield i, i + n
        i = hay.find(needle, i + 1)


@lru_cache(maxsize=1)
def english_stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


FOREIGN_LANGS = ("de", "fr", "es", "it", "nl", "pt")  # the other languages enterprise letters come in


@lru_cache(maxsize=1)
def foreign_stop_list() -> frozenset[str]:
    """spaCy's stop words of the other languages enterprise text comes in (FOREIGN_LANGS), every length."""
    import importlib

    return frozenset(w for lang in FOREIGN_LANGS
                     for w in importlib.import_module(f"spacy.lang.{lang}.stop_words").STOP_WORDS)


def foreign_word(word: str, limit: float = 3.0) -> bool:
    """A word at least this common (Zipf) in one of the other languages: "Anschrift", "Teléfono", "Indirizzo"."""
    return any(zipf(word, lang) >= limit for lang in FOREIGN_LANGS)


@lru_cache(maxsize=1)
def foreign_function_words() -> frozenset[str]:
    """Stop words of the other languages enterprise text comes in, plus letter formulas ("Sehr geehrte", "Mit
    freundlichen Grüßen", "Estimado", "Gentile"): the English NER model calls them names."""
    # short ones are also names: "Ali", "Ed", "Del", "Min"
    words = set(LETTER_WORDS) | {w for w in foreign_stop_list() if len(w) > 3}
    first, last = name_lists()
    return frozenset(w for w in words if w not in first and w not in last)


def function_words_only(value: str) -> bool:
    """Every word of `value` is another language's function word or a letter formula ("Ihre", "Mit freundlichen
    Grüßen", "Teléfono"): no name, place or group, whatever the NER model says."""
    words = [w.lower() for w in regex.findall(r"[\p{L}'’]+", value)]
    return bool(words) and all(w in foreign_function_words() for w in words)


LETTER_WORDS = frozenset({
    "mit", "geehrte", "geehrter", "freundlichen", "freundliche", "grüßen", "grüße", "gruß", "grüssen", "liebe", "lieber",
    "hallo", "danke", "vielen", "bitte", "estimado", "estimada", "estimados", "atentamente", "saludos", "cordiales",
    "cordialmente", "hola", "gracias", "teléfono", "telefono", "gentile", "gentili", "egregio", "egregia", "cordiali",
    "saluti", "distinti", "grazie", "ciao", "bonjour", "madame", "monsieur", "cordialement", "salutations", "merci",
    "bonsoir", "geachte", "hartelijk", "groeten", "vriendelijke", "prezado", "prezada", "obrigado", "obrigada",
    "atenciosamente", "olá", "caro", "cara", "cari", "querido", "querida", "cher", "chère", "beste", "szanowny",
    "szanowna", "szanowni", "drogi", "droga", "kära", "hej", "kedves", "vážený", "vážená", "stimate", "stimată"})
# lower-case words inside a name: "Ludwig van Beethoven", "Maria da Silva", "Omar bin Laden"
NAME_PARTICLES = frozenset({"de", "da", "di", "do", "dos", "das", "del", "della", "van", "von", "der", "den", "la",
                            "le", "du", "bin", "binti", "al", "el", "ter", "ten", "y", "e", "zu", "af"})


FILE_EXTENSIONS = frozenset({"json", "jsonl", "yaml", "toml", "html", "docx", "xlsx", "pptx", "java", "scala", "conf",
                             "lock", "parquet", "ipynb", "jpeg", "tiff", "webp", "mpeg", "wav", "flac", "gguf",
                             "safetensors", "onnx", "pickle", "bash", "fish", "psql", "sqlite", "proto", "vue", "tsx",
                             "dart", "swift", "kotlin", "gradle", "cmake", "make", "rules", "tmpl", "jinja", "mako"})


def spaced_handle_ok(value: str) -> bool:
    """"@ john_d" is a handle, "@ home" or "@ the office" is not."""
    return value.lower() not in english_stop_words() and value.lower() not in COMMON_WORDS


CRYPTO_CUES = ("wallet", "bitcoin", "btc", "litecoin", "ltc", "crypto", "coin address", "deposit address",
               "send to address")
_SEP = r"(?i:\.?\s*(?:\((?=\s*(?:number|num|no|nr|#)\b)\s*)?(?:number|num|no|nr|id|#|code)?\.?\s*(?:is|was|:|#|=|-)?\s*)"  # "number is", "no.:", "#", "ID:"
_ID_TOKEN = r"(?P<v>(?=[A-Za-z0-9/-]*\d)[A-Za-z0-9](?:[A-Za-z0-9/.-]{2,22}[A-Za-z0-9]))\b"


_GROUPED_ID = r"(?P<v>\d{1,6}(?:[ .-]\d{1,7}){1,4}(?:-[0-9Kk])?)(?![\w-])"


_ON_CARD = r"[ \t]+(?:on|at|from|of)[ \t]+(?:back[ \t]+of[ \t]+)?(?:\w+[ \t]+){0,2}(?:card|back)"


_USER_CUE = r"user ?name|user ?id|screen ?name|account name|gamertag|ign|in-game name|in game name"
_PLATFORMS = r"ig|insta|instagram|snap|snapchat|tiktok|twitch|reddit|psn|venmo|cash ?app|telegram|twitter|discord|steam|xbox|kik"


# "is" and its signs in the languages records come in: "Mein Login ist …", "mon identifiant est …", "é", "jest"
_FOREIGN_IS = (r"(?:[ \t]*\([^()\n]{1,20}\))?[ \t]*(?:[:#=]|\b(?:is|ist|est|es|è|é|jest|was|war|era|était|to))?[ \t]*:?"
               r"[ \t]*")


def _after(cues: str, value: str = _ID_TOKEN) -> str:
    """`value` right after one of the cue words (case-insensitive cue, value as given)."""
    return r"(?i:\b(?:" + cues + r")(?!\w))" + _SEP + value  # a whole cue: "reg" is no cue inside "REGARDING"


_PW_CUE = (r"(?i:\b(?:password|passwd|pwd|pw|passcode|pass code|passphrase|pass phrase|pin(?: code)?|otp|"
           r"one[- ]time (?:password|passcode|code|pin)|verification code|security code|auth(?:entication)? code|"
           r"2fa code|mfa code|sms code|login code|access code|backup code|recovery code|recovery key|unlock code|"
           r"reset code|memorable word|memorable information|security answer|secret answer|"
           r"(?:gate|door|alarm|lockbox|key ?safe|keypad|entry|building|garage|safe) code|"
           r"kennwort|passwort|mot de passe|contraseña|wachtwoord|hasło|haslo|senha|parola d['’]ordine|"
           r"(?:temporary )?access pass|wi-?fi pass)\b)")
_PW_VALUE = r"(?!\((?i:cvv2?|cvc2?|csc|pin|otp)\)|\((?i:optional|required|if any|see below|again|twice)\b)(?P<v>\"[^\"\n]{3,64}\"|'[^'\n]{3,64}'|`[^`\n]{3,64}`|[^\s\"'`]{2,63}[^\s\"'`.,;:!?)…](?:!(?=[,;]))?)"


def _secret_ok(value: str) -> bool:
    """A password-shaped value that is no word of "my password is expired"."""
    return password_like(value) and value.strip("\"'`").lower() not in _NOT_PASSWORDS


# Slack/Teams broadcasts, not people: "@channel heads up", "@here"
BROADCAST_MENTIONS = frozenset({"channel", "here", "everyone", "all", "team", "room", "group"})
# accounts every system has; a log line naming them points at no one
SYSTEM_LOGINS = frozenset({"root", "admin", "administrator", "user", "username", "guest", "test", "postgres", "mysql",
                           "sa", "default", "nobody", "ubuntu", "ec2-user", "oracle", "www-data", "git", "anonymous"})


def _personal_login(value: str) -> bool:
    return value.lower() not in SYSTEM_LOGINS and not value.startswith(("<", "$", "{", "%"))


def password_like(value: str) -> bool:
    """Has a digit, an ASCII symbol or an inner capital: 'hunter2', 'S3cret!', 'correctHorse' (not 'needs',
    not 'ASAP'), or is quoted."""
    return value[:1] in ("\"", "'", "`") or bool(re.search(r"\d|[!-/:-@\[-`{-~]|[a-z][A-Z]", value))


RULES: tuple[Rule, ...] = (
    # --- secrets
    Rule("PRIVATE_KEY", r"(?i)-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----",
         1.0),
    Rule("API_KEY", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b", 1.0),
    Rule("API_KEY", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})\b", 1.0),
    Rule("API_KEY", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", 1.0),
    Rule("API_KEY", r"\b(?:[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|AIza[0-9A-Za-z_-]{35}|sk-[A-Za-z0-9_-]{20,}"
                    r"|glpat-[A-Za-z0-9_-]{20}|npm_[A-Za-z0-9]{36})\b", 1.0),
    Rule("API_KEY", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}", 1.0),  # JWT
    Rule("API_KEY", r"(?i:\b(?:token|api[ _-]?key|secret|access key|secret key|key|credential)s?\b\s*(?:is|:|=)?\s*)"
                    r"(?P<v>[A-Za-z0-9_+/=.~-]{16,})", 0.9, looks_secret),
    Rule("API_KEY", r"(?i:\bbearer\s+)(?P<v>[A-Za-z0-9._~+/=-]{16,})", 0.9),
    # HTTP basic credentials are a base64 "user:password": "Authorization: Basic dXNlcjpwYXNz…"
    Rule("PASSWORD", r"(?i:\bauthorization[\"']?\s*[:=]\s*[\"']?basic\s+)(?P<v>[A-Za-z0-9+/]{8,}={0,2})", 0.95),
    Rule("API_KEY", r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}\b", 1.0),  # SendGrid
    Rule("API_KEY", r"\b(?:AC|SK)[0-9a-f]{32}\b", 0.9),  # Twilio account and key sids
    # a public key's comment names its owner: "ssh-ed25519 AAAAC3… jdoe@laptop"
    Rule("USERNAME", r"\b(?:ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-nistp\d+)[ \t]+[A-Za-z0-9+/]{40,}={0,3}[ \t]+"
                     r"(?P<v>[\w.-]+@[\w.-]+)", 0.85),
    # environment files: "DB_PASS=…", "SMTP_PASSWD: …"
    Rule("PASSWORD", r"(?:\b(?i:[a-z0-9]+_(?:pass|passwd|password|pwd|pw)(?:_[a-z0-9]+)?|(?:pass|passwd|pwd)_[a-z0-9]+)|"
                     r"\b(?:PASS|PASSWD))[ \t]*[:=][ \t]*[\"']?"
                     r"(?P<v>[^\s\"']{4,128})", 0.9, _secret_ok),
    Rule("API_KEY", r"(?i:\b[\w.-]*(?:key|token|secret|auth|credential|signature|sig|session|sessionid|sid|cookie)"
                    r"[\w.-]*[\"']?\s*[:=]\s*[\"']?)"
                    r"(?P<v>[A-Za-z0-9_+/=.~-]{16,})", 0.9, looks_secret),
    # "password: x", "pwd=x", "PIN changed to x": whatever follows is the secret
    Rule("PASSWORD", _PW_CUE + r"(?i:(?:\s+(?:is|was))?\s*[:=]|(?:\s+(?:was|is|has been|had been|been|got))?\s+"
                               r"(?:set|changed|reset|updated) to\b)\s*" + _PW_VALUE,
         0.9, lambda v: v.strip("\"'`").lower() not in _NOT_PASSWORDS),
    # "my PIN is 4432" / "password is hunter2" — but "my PIN is blocked", "my PIN was entered wrong" are not
    # (and "new pw should be Winter#2025", "the PIN is now 8812")
    Rule("PASSWORD", _PW_CUE + r"(?i:\s+(?:is[ \t]+now|now[ \t]+is|(?:is|was)[ \t]+still|still|(?:should|will|would|must|"
                               r"shall|could|can)[ \t]+be|becomes|became|is|was|ist|war|est|était|es|era|è|é|jest|"
                               r"było)\b)\s*" + _PW_VALUE, 0.9, _secret_ok),
    Rule("PASSWORD", _PW_CUE + r"\s+" + _PW_VALUE, 0.9, lambda v: password_like(v) and v.lower() not in _NOT_PASSWORDS),
    # "Temporary password issued: Tq7#mZ2!pL", "PIN sent: 4471"
    Rule("PASSWORD", _PW_CUE + r"(?i:[ \t]+(?:issued|assigned|generated|given|provided|created|sent|used)[ \t]*(?::|=|is\b))"
                               r"[ \t]*" + _PW_VALUE, 0.9, _secret_ok),
    # "asked for his memorable word ('buttercup')", "a passcode, 739104, sent by text"
    Rule("PASSWORD", _PW_CUE + r"[ \t]*\([ \t]*(?P<v>'[^'\n]{3,64}'|\"[^\"\n]{3,64}\"|[^\s()]{3,40})[ \t]*\)", 0.9, _secret_ok),
    Rule("PASSWORD", _PW_CUE + r",[ \t]*(?P<v>\d{4,8}),", 0.85),
    # the answer to a security question is a password: "Security question: first pet's name? Answer: Biscuit"
    Rule("PASSWORD", r"(?<=(?i:\b(?:security|secret|challenge)[ \t]+question)[^\n]{0,80})(?i:\banswer)[ \t]*[:=][ \t]*"
                     r"(?P<v>[^\s.,;!?]+(?:[ \t][^\s.,;!?]+){0,2})", 0.85,
         lambda v: v.lower() not in _NOT_PASSWORDS),
    # what the secret opens comes between: "Wi-Fi password for guests: Sunflower2024", "the PIN to the safe is 4412"
    Rule("PASSWORD", _PW_CUE + r"(?i:[ \t]+(?:for|to|of|on|in)[ \t]+(?!(?:\w+[ \t]+){0,2}(?:card|back)\b)"
                               r"(?:(?:the|my|our|your|his|her|their)[ \t]+)?[\w-]+"
                               r"(?:[ \t]+[\w-]+)?(?:[ \t]*:|[ \t]+(?:is|was)\b:?))[ \t]*" + _PW_VALUE, 0.9, _secret_ok),
    # --- contact
    # the login in a connection URL ("postgres://billing_svc:…@10.20.4.17"), a directory entry
    # ("bind_dn = cn=svc_ldap_ro,ou=service"), an SSH log line ("Accepted publickey for aokafor from …") and an access
    # log's user field ("203.0.113.45 - jmartinez [12/Mar/2024:…"); shared system accounts (root, admin) are no one's
    Rule("USERNAME", r"(?i)\b[a-z][a-z0-9+.-]{1,15}://(?P<v>[^\s:/@<>{}$]{2,64}):[^\s/@]{1,128}@", 0.9, _personal_login),
    Rule("USERNAME", r"(?i)(?<![\w-])(?:cn|uid)=(?P<v>[A-Za-z0-9_.-]{2,40})(?=,(?:ou|dc|cn|o)=)", 0.85, _personal_login),
    Rule("USERNAME", r"\b(?:Accepted|Failed) (?:password|publickey|keyboard-interactive(?:/pam)?|none) for "
                     r"(?:invalid user )?(?P<v>[A-Za-z0-9_.-]{2,32}) from\b", 0.9, _personal_login),
    Rule("USERNAME", r"(?:^|(?<=[\s:]))(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]{3,39}) (?:\S+ )?"
                     r"(?P<v>[A-Za-z0-9_.@-]*[A-Za-z][A-Za-z0-9_.@-]*) \[\d{1,2}/\w{3}/\d{4}:", 0.9, _personal_login),
    # "requested by account trader_vk88", "from user cryptoKestrel_91": a handle with a digit or an underscore
    Rule("USERNAME", r"(?i:\b(?:account|user|login|username|agent|requester|requestor|assignee|operator|technician)[ \t]+)"
                     r"(?P<v>(?=[A-Za-z0-9._-]*[_\d])[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9])\b(?![@-])", 0.8,
         lambda v: _personal_login(v) and not ip_ok(v) and not regex.fullmatch(r"\p{Lu}[A-Za-z]+\d{1,2}", v)
         or bool(re.search(r"_", v))),
    # a login and its password side by side: "Admin login okettering / Thermo#Home77", "creds: jdoe / S3cret!"
    Rule("USERNAME", r"(?i:\b(?:login|credentials|creds|user(?:name)?)[ \t]*:?[ \t]*)(?P<v>[A-Za-z0-9_.@-]{3,32})"
                     r"(?=[ \t]*/[ \t]*(?=\S*[\d!@#$%^&*])\S{4,64})", 0.85,
         lambda v: _personal_login(v) and (bool(re.search(r"[\d_.]", v)) or zipf(v.lower()) < 3.0)),
    Rule("PASSWORD", r"(?<=(?i:\b(?:login|credentials|creds|user(?:name)?)[ \t]*:?[ \t]*)[A-Za-z0-9_.@-]{3,32}[ \t]*/[ \t]*)"
                     r"(?P<v>[^\s/\"']{4,64}?)(?=[.,;]?(?:\s|$))", 0.85,
         lambda v: password_like(v) and bool(regex.search(r"\p{L}", v))),
    # "changed password from Summer2023! to B3rl1n@Night"
    # "Temp password given over the phone: Winter!Lake82": a few words between the cue and the colon
    Rule("PASSWORD", _PW_CUE + r"(?:[ \t]+[\w-]+){1,5}?[ \t]*:[ \t]*(?P<v>[^\s\"'`]{4,63}[^\s\"'`.,;:!?)…]"
                     r"(?:!(?=[,;]|[ \t]+\p{Ll}))?)", 0.85,
         lambda v: _secret_ok(v) and regex.search(r"\d", v) is not None and regex.search(r"\p{L}", v) is not None),
    # "a senha nova é Verao@2024!", "mot de passe « Ete2024!Soleil »", "la contraseña temporal es …"
    Rule("PASSWORD", _PW_CUE + r"(?i:(?:[ \t]+(?:nova|novo|new|temporary|temp|temporária|temporario|temporário|"
                     r"temporaire|provisoire|provisória|nuevo|nueva|temporal|neue|neues|tijdelijke|nieuwe|nuovo|nuova|"
                     r"temporanea|tymczasowe|nowe)){1,2})?[ \t]*(?:[:=]|\b(?:is|é|est|es|è|ist|jest|was|era|war|was|"
                     r"wordt|wurde)\b)?[ \t]*[«“„\"']?[ \t]*(?<=[\s:=«“„\"'])(?P<v>[^\s«»“”„\"'<>(\[-][^\s«»“”„\"']{3,62}[^\s«»“”„\"'.,;:!?)…](?:!(?=[,;]|[ \t]+\p{Ll}))?)", 0.85,
         lambda v: password_like(v) and v.lower() not in _NOT_PASSWORDS and regex.search(r"\d|[^\w]", v) is not None),
    Rule("PASSWORD", r"(?<=(?i:\buser[ \t]+)[A-Za-z0-9_.-]{2,32}[ \t]*/[ \t]*)(?i:pass(?:word)?|pw|pwd)[ \t]+"
                     r"(?P<v>\S{4,64}?)(?=[,;]?(?:\s|$))", 0.9, password_like),
    Rule("PASSWORD", r"(?<=(?i:\b(?:password|passcode|pin)\b)[^\n]{0,40}?)(?i:\b(?:wrote|written|noted|saved|kept|"
                     r"stored)[ \t]+(?:it[ \t]+)?(?:down[ \t]+)?as[ \t]+)(?P<v>\S{4,64}?)(?=[,;.]?(?:\s|$))", 0.85,
         password_like),
    Rule("PASSWORD", _PW_CUE + r"(?i:[ \t]+from[ \t]+)(?P<v>\S{4,64}?)(?=[ \t]+to[ \t])", 0.9, password_like),
    Rule("PASSWORD", r"(?<=" + _PW_CUE + r"(?i:[ \t]+from[ \t]+)\S{4,64}[ \t]+(?i:to)[ \t]+)(?P<v>\S{4,64}?)(?=[.,;]?(?:\s|$))",
         0.9, password_like),
    # a card's expiry next to the card: "Visa 4532 …, exp 11/26", "expiring 04/27"
    Rule("CREDIT_CARD", r"(?i:\b(?:exp(?:iry|ires|iring|\.)?|valid (?:thru|through|until)|good thru)[ \t]*:?[ \t]*)"
                        r"(?P<v>(?:0[1-9]|1[0-2])[/-](?:\d{2}|20\d{2}))(?![\d/])", 0.3,
         context=("card", "visa", "mastercard", "amex", "discover", "cvv", "debit", "credit")),
    # "my account rdeshpande got locked": after "account", a token no dictionary knows; "user: builder, pass: …"
    Rule("USERNAME", r"(?i:\b(?:my|the|your|his|her|their|user)[ \t]+account[ \t]+)(?P<v>[a-z][a-z0-9._-]{2,30}[a-z0-9])\b(?![@-])",
         0.6, lambda v: v not in english_stop_words() and zipf(v) < 2.0 and not typo_of_common(v, 4.5)),
    Rule("USERNAME", r"(?i:(?<![A-Za-z])(?:user|usr|login|username)[ \t]*[:=][ \t]*)(?P<v>[A-Za-z0-9_.-]{2,32})"
                     r"(?=[ \t]*[,;/|][ \t]*(?i:pass|pw|pwd|password)\b)", 0.85, _personal_login),
    # --- contact
    # credentials inside a connection URL or a curl/wget user flag: "mysql://root:hunter2@db", "curl -u admin:S3cr3t"
    Rule("PASSWORD", r"(?i)\b[a-z][a-z0-9+.-]{1,15}://[^\s:/@]{1,64}:(?P<v>[^\s/@]{1,128})@", 1.0),
    Rule("PASSWORD", r"(?<!\S)(?:(?:-u|--user)[ \t=]+[^\s:\"']{1,64}:|(?:--password|--pass)[ \t=]+)"
                     r"(?P<v>[^\s\"']{3,128})(?=[\s\"']|$)", 0.9, lambda v: password_like(v)),
    Rule("EMAIL_ADDRESS", r"(?<![\w.+%-])[\w.+-]{1,64}%40[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", 0.9),
    # spoken and obfuscated e-mails: "john dot smith at gmail dot com", "priya underscore k at outlook dot com",
    # "j.smith [at] gmail [dot] com", "anna(at)firma.de"; the domain must end in a known top-level domain
    Rule("EMAIL_ADDRESS", r"(?i)(?<![\w.])[a-z0-9][\w.+-]*(?:[ \t]+(?:dot|underscore|dash|hyphen)[ \t]+[\w+-]+)*"
                          r"(?:[ \t]+at[ \t]+[a-z0-9][\w-]*(?:[ \t]+dot[ \t]+[a-z0-9][\w-]*)*[ \t]+dot[ \t]+"
                          r"|[ \t]*[\[(]at[\])][ \t]*[a-z0-9][\w-]*(?:(?:[ \t]*[\[(]dot[\])][ \t]*|\.)[a-z0-9][\w-]*)*"
                          r"(?:[ \t]*[\[(]dot[\])][ \t]*|\.))"  # spoken "at … dot", or bracketed "[at]"/"(at)"
                          r"(?:com|org|net|edu|gov|io|co|uk|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|pl|ie|in|au|ca|us|"
                          r"jp|cn|br|mx|info|biz|me)\b", 0.85),
    # a code comment assigns work to a handle: "TODO(ahmed.farouk)", "FIXME(jdoe)"
    # who keyed a record, as systems print it: "Checked by: rnguyen", "Intake by: jtorres", "Tech: smalloy"
    Rule("USERNAME", r"(?i:\b(?:(?:checked|intake|entered|keyed|posted|reviewed|approved|created|modified|updated|"
                     r"processed|verified|requested|reported|submitted|closed|resolved|completed)[ \t]+by|tech|"
                     r"technician|operator|clerk|rph|reporter|requester|requestor|assignee|submitter|author)[ \t]*:[ \t]*)(?P<v>[a-z][a-z0-9._-]{2,20}[a-z0-9])(?![\w@.-])", 0.8,
         lambda v: not everyday_word(v, 3.0) and v not in SYSTEM_LOGINS),
    # logins in system logs and admin notes: "sudo: dkaminski : TTY=…", "mysql -u dkaminski -pR3port!ng_2024",
    # "session opened for user root by dkaminski(uid=1043)", "CORP\\lvanderberg", "C:\\Users\\lvanderberg\\",
    # "- AD: fbrouwer", "GitHub: femkeb-dev", "my IAM user is sanne.vandijk"
    Rule("USERNAME", r"\bsudo:[ \t]+(?P<v>[a-z_][a-z0-9_.-]{1,31})[ \t]+:", 0.85, lambda v: v not in SYSTEM_LOGINS),
    Rule("USERNAME", r"\bby[ \t]+(?P<v>[a-z_][a-z0-9_.-]{1,31})\(uid=\d+\)", 0.85, lambda v: v not in SYSTEM_LOGINS),
    Rule("USERNAME", r"(?<![\w\\])[A-Z][A-Z0-9-]{1,15}\\{1,2}(?P<v>[a-z][a-z0-9._-]{2,30})\b", 0.8,
         lambda v: v not in SYSTEM_LOGINS),
    Rule("USERNAME", r"(?i:\b[a-z]:\\{1,2}users\\{1,2})(?P<v>[A-Za-z][A-Za-z0-9._-]{2,30})(?=\\)", 0.8,
         lambda v: v.lower() not in SYSTEM_LOGINS | {"public", "default", "all users", "administrator"}),
    Rule("PASSWORD", r"\b(?:mysql|mysqldump|mariadb)\b[^\n]*?(?<=\s)-p(?P<v>[^\s-][^\s]{3,63})", 0.9),
    Rule("USERNAME", r"\b(?:mysql|mysqldump|mariadb|psql|ssh|sshpass|ftp|smbclient)\b[^\n]*?(?<=\s)(?:-u|-U|--user(?:name)?=?)"
                     r"[ \t]*(?P<v>[A-Za-z0-9_.-]{2,32})\b", 0.85, lambda v: v.lower() not in SYSTEM_LOGINS),
    Rule("USERNAME", r"(?i:\b(?:ad(?:-konto|[ \t]+account)?|active[ \t]+directory|github|gitlab|salesforce|okta|slack|"
                     r"jira|iam[ \t]+user|sap[ \t]+user|entra(?:[ \t]+id)?|azure[ \t]+ad)(?:[ \t]+deaktivieren)?[ \t]*"
                     r"(?::|[ \t]is)[ \t]*)(?P<v>[a-z][a-z0-9._-]{2,30}[a-z0-9])\b(?![@.]\w)", 0.8,
         lambda v: not everyday_word(v, 3.0) and v not in SYSTEM_LOGINS),
    Rule("USERNAME", r"\b(?:TODO|FIXME|XXX|HACK|NOTE|BUG)\((?P<v>[\w.@-]{2,40})\)", 0.85),
    Rule("EMAIL_ADDRESS", r"(?<![\w.+%-])(?<!://[^\s:/@]{1,64}:)[\w.+%-]*\w@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                          r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+", 0.95),
    Rule("URL", r"(?i)\b(?:https?://|ftp://|www\.)[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]]", 0.85),
    Rule("URL", r"(?i)(?<![\w.@/])(?:www\.)?(?:linkedin\.com|github\.com|gitlab\.com|twitter\.com|x\.com|"
                r"facebook\.com|fb\.com|instagram\.com|t\.me|tiktok\.com|youtube\.com|medium\.com|behance\.net|"
                r"dribbble\.com|stackoverflow\.com/users|calendly\.com|gofundme\.com|paypal\.me|linktr\.ee|venmo\.com|"
                r"cash\.app|buymeacoffee\.com|ko-fi\.com|patreon\.com|about\.me|substack\.com|wa\.me|fb\.me|"
                r"bsky\.app|threads\.net|soundcloud\.com|vimeo\.com|flickr\.com|pinterest\.com|etsy\.com/shop|"
                r"twitch\.tv|mastodon\.social|xing\.com/profile|orcid\.org|scholar\.google\.com)/[^\s<>\"'`]+"
                r"[^\s<>\"'`.,;:!?)\]]", 0.85),
    Rule("USERNAME", r"(?<![\w@.>:/=+])@(?P<v>[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,28}[A-Za-z0-9_])?)\b(?!\.[a-z]{2,}\b)", 0.6,
         lambda v: v.lower() not in BROADCAST_MENTIONS),
    # "RT @ jane_doe": tokenised social text puts a space after the @; the handle must hold a letter, not be a word
    Rule("USERNAME", r"(?<![\w@.])@ (?P<v>(?=\w*[A-Za-z])[A-Za-z0-9_]{2,30}(?: _(?: [A-Za-z0-9]{1,30}(?= |$)|"
                     r"(?= |$)))*)(?![.@]\w)", 0.5, lambda v: spaced_handle_ok(v.split(" ")[0])),
    # Reddit's "u / name" in tokenised text; its underscores spaced too ("u / Womble _ Don")
    Rule("USERNAME", r"(?<![\w/])[u] / (?P<v>[A-Za-z0-9][A-Za-z0-9_-]{2,20}(?: _ [A-Za-z0-9]{1,20})*)\b", 0.7),
    Rule("USERNAME", _after(_USER_CUE + r"|(?:wechat|skype|telegram|discord|"
                            r"signal|line|kakao(?:talk)?|snapchat|instagram|twitter|tiktok|github|slack)[ \t]*(?:id|handle)",
                            r"(?P<v>@?[A-Za-z0-9_.-]{3,32})\b"), 0.85,
         lambda v: v.lower() not in _NOT_PASSWORDS and (bool(re.search(r"[\d_.@]", v)) or zipf(v.lower()) < 3.0)),
    # after "is"/":"/"=" any token is the name ("my username is anna"); with nothing between, only a handle-shaped or
    # rare one is ("when the user name contained an apostrophe")
    Rule("USERNAME", r"(?i:\b(?:" + _USER_CUE + r")(?:[ \t]*[:=#]|[ \t]+(?:is|was)\b:?))"
                     r"[ \t]*(?P<v>@?[A-Za-z0-9_.-]{3,32})\b", 0.85,
         lambda v: v.lower() not in _NOT_PASSWORDS and v.lower() not in english_stop_words()),
    # "Mein Login ist tobi_kranich88", "Mon identifiant est mlgarnier_75", "Gebruikersnaam is fvdberg1971"
    Rule("USERNAME", r"(?i:\b(?:login|benutzername|benutzerkennung|identifiant|nom[ \t]+d['’]utilisateur|gebruikersnaam|"
                     r"nombre[ \t]+de[ \t]+usuario|usuario|nome[ \t]+utente|utente|nazwa[ \t]+użytkownika|utilizador)"
                     r"[ \t]+(?:ist|est|es|è|é|is|jest|:)[ \t]*:?[ \t]*)(?P<v>@?[A-Za-z0-9_.-]{3,32})\b", 0.85,
         lambda v: v.lower() not in _NOT_PASSWORDS and (bool(re.search(r"[\d_.]", v)) or zipf(v.lower()) < 3.0)),
    # "his ig is zeke.the.great", "venmo: jdoe-22", "my snap is kayy_b"
    Rule("USERNAME", r"(?i:\b(?:" + _PLATFORMS + r")(?:[ \t]+(?:handle[ \t]+|name[ \t]+|account[ \t]+)?is|"
                     r"[ \t]*:))[ \t]*@?(?P<v>[A-Za-z0-9_.-]{2,31}[A-Za-z0-9_])\b", 0.85,
         lambda v: v.lower() not in _NOT_PASSWORDS and v.lower() not in english_stop_words() and v.lower() not in (
             "private", "down", "open", "closed", "broken", "dead", "blocked", "banned", "gone", "deleted")),
    # forum bylines and platform handles in brackets: "Posted by: wyndo_dj82", "posted as NotYourDoormat23",
    # "u/throwaway_mike88", "texts you on Snapchat (kojo_vibez233)"
    Rule("USERNAME", r"(?i:\b(?:posted|submitted|written|shared|uploaded|commented|replied|asked)[ \t]+(?:by|as)[ \t]*:?[ \t]*)"
                     r"@?(?P<v>[A-Za-z0-9_.-]{3,32})\b(?![@-])", 0.85,
         lambda v: bool(re.search(r"[\d_]|[a-z][A-Z]", v)) and not ip_ok(v)),
    Rule("USERNAME", r"(?<![\w/])u/(?P<v>[A-Za-z0-9_-]{3,20})\b", 0.85),
    Rule("USERNAME", r"(?i:\b(?:" + _PLATFORMS + r"|whatsapp|signal|wechat|line|facebook|fb|youtube|threads|bluesky)"
                     r"[ \t]*\([ \t]*)@?(?P<v>[A-Za-z0-9_.-]{3,31})[ \t]*\)", 0.85,
         lambda v: bool(re.search(r"[\d_.]", v)) or zipf(v.lower()) < 2.5),
    # Discord's legacy tag: "shadowfox#4821"
    Rule("USERNAME", r"(?<![\w#@])(?P<v>[A-Za-z0-9_.]{2,32}#\d{4})(?![\w#])", 0.3,
         context=("discord", "add me", "tag", "gamertag", "battle.net", "battletag")),
    # "or snap dakota_k22": right after the platform, only a token shaped like a handle
    Rule("USERNAME", r"(?i:\b(?:" + _PLATFORMS + r")[ \t]+)@?(?P<v>[A-Za-z][A-Za-z0-9_.-]{1,30}[A-Za-z0-9_])\b(?![@-])", 0.8,
         lambda v: bool(re.search(r"[a-z][\d_.]|[\d_.][a-z]", v, re.I)) and len(re.findall(r"[A-Za-z]", v)) >= 3
         and not regex.search(r"\.(?:com|net|org)$", v)),
    Rule("USERNAME", r"(?i:\b(?:logged|signed|log|sign)[ -]?(?:in|on)[ \t]+as[ \t]+)(?P<v>@?[A-Za-z0-9_.-]{2,31}[A-Za-z0-9_])\b",
         0.85, lambda v: v.lower() not in english_stop_words()),
    # log lines: "auth: login ok user=mkowalski src=…" (only "=": a JSON "user" key may hold a chat message)
    Rule("USERNAME", r"(?i:(?<![\w.-])(?:user|usr|uid|username|user_name|userid|user_id|login|account|acct)=)"
                     r"(?P<v>[A-Za-z0-9_.@-]*[A-Za-z][A-Za-z0-9_.@-]*)", 0.85,
         lambda v: v.lower() not in _NOT_PASSWORDS and v.lower() not in ("null", "none", "true", "false")),
    # JSON logs: {"event":"login_failed","user":"lzawadzka"} (a handle-shaped or unknown word; "user": "hello there" is
    # a chat message)
    Rule("USERNAME", r"\"(?:user|usr|login|actor|principal|account|user_name|userName|uname)\"[ \t]*:[ \t]*\""
                     r"(?P<v>[A-Za-z0-9_.@-]{3,40})\"", 0.85,
         lambda v: _personal_login(v) and (bool(re.search(r"[\d_.]", v)) or zipf(v.lower()) < 2.5)),
    # login lines: "user: kbarrows_77, pass: 6WqZ!x9vR2" ("pass:" is a password only after a login word, not the
    # "boarding pass: 12A")
    # (a chat transcript's "User: hello" is a speaker, not a login: the value must look like a handle)
    Rule("USERNAME", r"(?i:(?<![A-Za-z])(?:user|usr|login)[ \t]*[:=][ \t]*[\"']?)(?P<v>@?[A-Za-z0-9_.-]{2,31}[A-Za-z0-9_])"
                     r"\b(?![@-])", 0.85,
         lambda v: v.lower() not in english_stop_words() and v.lower() not in _NOT_PASSWORDS and (
             bool(re.search(r"[\d_.]", v)) or zipf(v.lower()) < 2.5)),
    Rule("PASSWORD", r"(?<=(?i:\b(?:user|usr|login|username|account|credentials?|e-?mail)\b)[^\n]{0,60})"
                     r"(?i:\bpass[ \t]*:[ \t]*)" + _PW_VALUE, 0.9,
         lambda v: password_like(v) and v.lower() not in _NOT_PASSWORDS),
    # "reset VPN access for user jmcallister": after a bare "user", only a token no dictionary knows
    Rule("USERNAME", r"(?i:\b(?:user|gebruiker|usuario|usuário|utilisateur|benutzer|utente)[ \t]+[«\"“„']?[ \t]*)"
                     r"(?P<v>[a-z][a-z0-9._-]{2,30}[a-z0-9])\b(?![@-])", 0.6,
         lambda v: v not in english_stop_words() and zipf(v) < 2.0 and not typo_of_common(v, 4.5)),
    # initial.surname logins: "laptop assigned to e.nakamura" (not "e.coli", not "a.json")
    Rule("USERNAME", r"(?<![\w.@/-])(?P<v>[a-z]\.[a-z]{4,20})(?![\w@/-]|\.\w)", 0.6,
         lambda v: v[2:] in name_lists()[1] or (zipf(v[2:]) < 3.2 and v[2:] not in FILE_EXTENSIONS)),
    # a handle built from a first name: "Nelson_Kuhic52", "Maria.Lopez88"
    Rule("USERNAME", r"(?<![\w.@-])(?P<v>\p{Lu}\p{Ll}+[_.]\p{Lu}\p{Ll}+\d*)(?![\w@-]|\.\w)", 0.6,
         lambda v: regex.split(r"[_.]", v)[0].lower() in name_lists()[0] or "_" in v or v[-1].isdigit()),
    Rule("USERNAME", r"(?<![\w.@-])(?P<v>\p{Lu}\p{Ll}+\.\p{Lu}\p{Ll}+)(?![\w@-]|\.\w)", 0.3,
         context=("logged in", "signed in", "login", "log in", "user", "account", "username", "as ")),
    # "login"/"handle" are also verbs and nouns ("handle top-ups", "login screen"): a plain word needs ":"/"is"
    Rule("USERNAME", r"(?i:\b(?:login|handle)(?:\s+(?:is|was))?\s*[:=]\s*|\b(?:login|handle)\s+(?:is|was)\s+)"
                     r"(?P<v>@?[A-Za-z0-9_.-]{3,32})\b", 0.85, lambda v: v.lower() not in _NOT_PASSWORDS),
    Rule("USERNAME", r"(?i:\b(?:login|handle)\s+[('\"‘“]?)(?P<v>@?[A-Za-z0-9_.-]{3,32})\b", 0.85,
         lambda v: bool(re.search(r"[\d_@.]", v)) and not ip_ok(v)),
    Rule("IP_ADDRESS", r"(?<![\w.])(?<!\p{L}/)(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)", 0.9, ip_ok),  # not "Chrome/124.0.0.0"
    Rule("IP_ADDRESS", r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]{3,39}(?![\w:])",
         0.85, lambda v: ":" in v and ip_ok(v) and not re.fullmatch(r"\d{1,2}:\d{2}(?::\d{2})?", v)),
    Rule("MAC_ADDRESS", r"\b[0-9A-Fa-f]{2}(?:([:-])[0-9A-Fa-f]{2})(?:\1[0-9A-Fa-f]{2}){4}\b|"
                        r"\b[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\b", 0.9),
    # --- finance
    Rule("CREDIT_CARD", r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])", 0.9, card_ok,
         context=("card", "visa", "mastercard", "amex", "credit", "debit", "cc")),
    Rule("CREDIT_CARD", _after(r"card|cc|visa|mastercard|amex|credit card|debit card|tarjeta|carte|kreditkarte|"
                               r"karte|cartão|carta di credito|creditcard|(?<!id )(?<!identity )card on (?:file|record)",
                               r"(?P<v>\d(?:[ -]?\d){11,18})\b"), 1.0),
    # a masked number still shows its last digits: "****4821", "XXXX-XXXX-XXXX-1234", "•••• 0931"
    Rule("CREDIT_CARD", r"(?<![\w*•])(?:[*•]{4}|[Xx]{4})(?:[ -]?(?:[*•]{4}|[Xx]{4})){0,3}[ -]?\d{4}(?![\w-])", 0.8),
    Rule("CREDIT_CARD", _after(r"cvv2?|cvc2?|card security code|card verification(?: value| code)?",
                               r"(?P<v>\d{3,4})\b"), 0.9),
    # "the CVV on the card is 382", "Security code (CVC): 7391", "cvv on the back: 049"
    Rule("CREDIT_CARD", r"(?i:\b(?:(?:cvv2?|cvc2?|csc)(?:" + _ON_CARD + r")?|(?:security|card) code(?:[ \t]*\("
                        r"(?:cvv2?|cvc2?|csc)\)|" + _ON_CARD + r"))(?:[ \t]*:|[ \t]+(?:is|was)\b:?))[ \t]*"
                        r"(?P<v>\d{3,4})(?![\w-])", 0.9),
    Rule("CRYPTO", r"(?<![\w/])[13LMmn2][1-9A-HJ-NP-Za-km-z]{25,34}\b", 0.9, base58check_ok,
         invalid_score=0.15, context=CRYPTO_CUES),  # a typo'd or made-up address after "wallet" is still one
    Rule("CRYPTO", r"\b(?i:bc|tb|ltc)1[02-9ac-hj-np-zAC-HJ-NP-Z]{11,71}\b", 0.9, bech32_ok, invalid_score=0.15,
         context=CRYPTO_CUES),
    Rule("CRYPTO", r"\b0x[0-9a-fA-F]{40}\b(?!-)", 0.85),  # Ethereum-style account (no checksum without keccak)
    Rule("CRYPTO", r"(?<![\w/])T[1-9A-HJ-NP-Za-km-z]{33}\b", 0.9, base58check_ok, invalid_score=0.15,
         context=(*CRYPTO_CUES, "trc20", "trc-20", "tron", "trx")),  # TRON (USDT TRC-20)
    Rule("ROUTING_NUMBER", _after(r"routing|aba|rtn|transit|routing and transit|bank code|blz|bic|swift|swift code|"
                                  r"swift/bic",
                                  r"(?P<v>\d{9}|\d{8}|[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\b"), 0.9),
    Rule("ROUTING_NUMBER", r"\b[A-Z]{4}0[A-Z0-9]{6}\b", 0.4, context=("ifsc", "branch code", "neft", "rtgs")),
    Rule("ROUTING_NUMBER", r"(?<!\d)\d{9}(?!\d)", 0.3, aba_ok, context=("routing", "aba", "rtn", "transit")),
    Rule("SORT_CODE", r"(?<![\d-])\d{2}-\d{2}-\d{2}(?![\d-])", 0.3, context=("sort code", "sort", "sortcode")),
    Rule("SORT_CODE", _after(r"sort code|sort-code|sortcode", r"(?P<v>\d{2}[ -]?\d{2}[ -]?\d{2})(?![\d-])"), 0.9),
    # the last four digits a statement or an agent names: "the card ending in 7721"
    Rule("CREDIT_CARD", r"(?i:\b(?:card|visa|mastercard|amex)(?:[ \t]+number)?[ \t]+(?:ending|ends)(?:[ \t]+(?:in|with))?"
                        r"[ \t]*:?[ \t]*)(?P<v>\d{4})(?![\d-])", 0.8),
    Rule("US_BANK_NUMBER", r"(?<![\w-])\d{3}[ ]?\d{3}[ ]?\d{11}[ ]?\d(?![\w-])", 0.6, clabe_ok,
         context=("clabe", "cuenta", "transferencia", "spei")),  # Mexican CLABE
    Rule("US_BANK_NUMBER", r"(?i:\b(?:bank account|checking account|savings account|account|acct|acc|act|a/c|bban|"
                           r"konto|compte)\.?(?:\s*\(?\s*(?:number|num|no|nr|#))?\.?\s*(?:is|:|#|=)?\s*)"
                           r"(?P<v>(?:[A-Z]{2,4}-)?\d(?:[ -]?\d){5,19})\b", 1.0),
    # --- government ids
    Rule("US_SSN", r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])|(?<!\d)(?<!\d )\d{3} \d{2} \d{4}(?![\d ])", 0.6,
         lambda v: ssn_ok(v) or itin_ok(v), context=("ssn", "social security", "social", "taxpayer", "itin")),
    Rule("US_SSN", _after(r"ssn|social security|social sec|ss#", r"(?P<v>\d{3}[- ]?\d{2}[- ]?\d{4})\b"), 0.95),
    # "SSN ends in 4432", "social security number last four: 6789": the part a call centre asks for
    Rule("US_SSN", r"(?i:\b(?:ssn|social security(?: number)?|ss#)[ \t]+(?:ends?[ \t]+(?:in|with)|ending(?:[ \t]+in)?|"
                   r"last[ \t]+(?:4|four)(?:[ \t]+digits)?)(?:[ \t]*(?:is|are|:|-))?)[ \t]*(?P<v>\d{4})(?![\d-])", 0.9),
    Rule("US_ITIN", _after(r"itin|individual taxpayer", r"(?P<v>9\d{2}[- ]?\d{2}[- ]?\d{4})\b"), 0.95),
    Rule("PASSPORT", _after(r"passport|passport number|travel document|reisepass|passeport|pasaporte"), 0.95),
    Rule("DRIVER_LICENSE", _after(r"driver'?s? licen[cs]e|driving licen[cs]e|driver licen[cs]e|licen[cs]e|dl(?![a-z0-9])|"
                                  r"cdl|führerschein|permis de conduire"), 0.9),
    Rule("TAX_ID", _after(r"tax ?id|tax identification|tax reference|tax file|tin|ein|fein|employer identification|"
                          r"vat|vat reg(?:istration)?|utr|steuer-?id|steuernummer|nif|cpf|abn|tfn"), 0.9),
    Rule("TAX_ID", r"(?<![\d-])\d{2}-\d{7}(?![\d-])", 0.3, context=("ein", "tax", "employer", "tin")),
    Rule("TAX_ID", _after(r"vat|vat reg(?:istration)?|vat id|ust-?id(?:nr)?|tva|iva|btw",
                          r"(?P<v>[A-Z]{2}[ ]?\d{2,3}(?:[ ]?\d{2,4}){2,3})\b"), 0.9),  # "VAT No: GB 123 4567 89"
    Rule("NATIONAL_ID", _after(r"ni|nino|ni number|national insurance(?: number)?",
                               r"(?P<v>[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D])\b"), 0.95),  # also HMRC's example "QQ …"
    Rule("NATIONAL_ID", r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", 0.85),
    Rule("NATIONAL_ID", r"(?<!\d)(?<!\d )[2-9]\d{3} ?\d{4} ?\d{4}(?![\d])", 0.85, verhoeff_ok,
         context=("aadhaar", "aadhar", "uid", "uidai")),
    # German social insurance (area, birth date, initial, serial) and health insurance numbers, after their cue
    Rule("NATIONAL_ID", _after(r"sozialversicherungsnummer|rentenversicherungsnummer|versicherungsnummer|"
                               r"versichertennummer|sv-nummer|svnr|rvnr|krankenversichertennummer|kvnr",
                               r"(?P<v>\d{2} ?[0-3]\d[01]\d\d{2} ?[A-Z] ?\d{3}|[A-Z] ?\d{9})\b"), 0.95),
    Rule("NATIONAL_ID", r"\b[A-Z]{3}[ABCFGHLJPT][A-Z]\d{4}[A-Z]\b", 0.85),  # Indian PAN
    # South African ID: birth date, serial, citizenship, Luhn
    Rule("NATIONAL_ID", r"(?<![\w-])\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{4}[01]\d{2}(?![\w-])", 0.6, luhn_ok,
         context=("id number", "id no", "identity", "id:", "home affairs", "south africa", "rsa")),
    # Turkish T.C. Kimlik No: 11 digits, two check digits
    Rule("NATIONAL_ID", r"(?<![\w-])[1-9]\d{10}(?![\w-])", 0.3, tckn_ok,
         context=("kimlik", "tckn", "t.c.", "tc no", "turkish id", "identity")),
    # Mexico: CURP (shape is distinctive), RFC after its cue
    Rule("NATIONAL_ID", r"\b[A-Z][AEIOUX][A-Z]{2}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[HMX](?:AS|B[CS]|C[CLMSH]|D[FG]|"
                        r"G[TR]|HG|JC|M[CNS]|N[ETL]|OC|PL|Q[TR]|S[PLR]|T[CSL]|VZ|YN|ZS|NE)[B-DF-HJ-NP-TV-Z]{3}[A-Z\d]\d\b",
         0.9),
    Rule("TAX_ID", _after(r"rfc", r"(?P<v>[A-ZÑ&]{3,4}\d{6}[A-Z\d]{3})\b"), 0.9),
    Rule("POSTCODE", r"\b(?:[AC-FHKNPRTV-Y]\d{2}|D6W)[ ]?[0-9AC-FHKNPRTV-Y]{4}\b", 0.3,
         context=("eircode", "ireland", "dublin", "co. ", "county", "cork", "galway", "limerick", "waterford",
                  "kilkenny", "wexford", "sligo", "kerry", "donegal", "mayo", "clare", "tipperary", "kildare",
                  "wicklow", "athlone", "drogheda", "dundalk", "ennis", "tralee")),  # Irish Eircode
    # Ireland: PPS number after its cue
    Rule("NATIONAL_ID", _after(r"ppsn|pps number|pps no|pps", r"(?P<v>\d{7}[A-W][A-IW]?)\b"), 0.9),
    Rule("NATIONAL_ID", r"(?<!\d)(?<!\d )\d{3} ?\d{3} ?\d{4}(?![\d])", 0.5, nhs_ok, context=("nhs", "nhs number", "nhs no")),
    Rule("NATIONAL_ID", _after(r"nhs|national id|national identity|national insurance|ni|nino|id card|identity card|"
                               r"identity number|personal id|personnummer|bsn|dni|nie|nric|sin|citizen id|"
                               r"aadhaar|aadhar|pan|pan card|cnp|pesel|codice fiscale|insee|ahv|cpr|nik|ktp|"
                               r"nomor induk kependudukan"), 0.9),
    # ids written in digit groups after their name: "SIN is 046 454 286", "IRD number 49-091-850", "RUT 12.345.678-5",
    # "Korean RRN 800101-1234567", "SSS no. 34-1234567-8", "Medicare card 2123 45670 1"
    Rule("NATIONAL_ID", _after(r"sin|social insurance|ird|rut|run|rrn|resident registration|my number|sss|philhealth|"
                               r"rg|dni|cpr|personnummer|fødselsnummer|national id|identity number|citizen id",
                               _GROUPED_ID), 0.9),
    Rule("TAX_ID", _after(r"tfn|tax file|tin|tax ?id|tax identification|ird|abn|cpf|nif|utr|steuer-?id|"
                          r"steuer-?identifikationsnummer|steuernummer|idnr", _GROUPED_ID), 0.9),
    Rule("INSURANCE_ID", _after(r"medicare(?: card)?|health card|health insurance|insurance|pension", _GROUPED_ID),
         0.85),
    # a utility meter is the household's: "Meter serial E13UK04877", "Zähler mit der Nummer 1ESY1160448822", MPRN
    Rule("DEVICE_ID", _after(r"meter(?: serial| number| no\.?| id)?|mprn|mpan|zählernummer|zähler(?: mit der)? nummer|"
                             r"num[ée]ro de compteur|n[°º] de compteur|compteur|pdl|pce|cups|contador"), 0.85),
    Rule("INSURANCE_ID", _after(r"p[óo]liza|polizza|police"), 0.85),
    # a card number in four groups with a card network's prefix, though its check digit fails (a typo, a test card)
    Rule("CREDIT_CARD", r"(?<!(?i:order|ref|reference|invoice|tracking|shipment|parcel|po|no\.?|nr\.?|#)[ \t:#]*)"
                        r"(?<![\w-])(?:4\d{3}|5[1-5]\d\d|2[2-7]\d\d)(?:[ -]\d{4}){3}(?![\w-])", 0.6),
    # an IBAN written in groups of four with its country's length, whatever its check digits
    Rule("IBAN_CODE", r"\b(?:(?:DE|ES|SE|SK|CZ|TN|RO)\d{2}(?:[ ]\d{4}){5}|(?:PL|HU|CY|AL)\d{2}(?:[ ]\d{4}){6}|"
                      r"(?:FR|IT|MC|SM|GR)\d{2}(?:[ ][A-Z0-9]{4}){5}[ ][A-Z0-9]{3}|(?:NL)\d{2}[ ][A-Z]{4}(?:[ ]\d{4}){2}[ ]\d{2}|"
                      r"(?:BE)\d{2}(?:[ ]\d{4}){3}|(?:PT)\d{2}(?:[ ]\d{4}){5}[ ]\d|(?:AT|EE|LT)\d{2}(?:[ ]\d{4}){4}|"
                      r"(?:IE|GB)\d{2}[ ][A-Z]{4}(?:[ ]\d{4}){3}[ ]\d{2})\b", 0.75),
    # service tokens named like "<vendor>_live_<random>": "ksh_live_4fQ9zR2mT7vX1bN8pL6wY3cD"
    Rule("API_KEY", r"\b[a-z]{2,8}_(?:live|test|prod|sk|pk)_[A-Za-z0-9]{16,}\b", 0.9),
    # US Medicare Beneficiary Identifier: 11 characters in a fixed letter/digit pattern, no S, L, O, I, B or Z
    # ("1EG4-TE5-MK73"); printed 4-3-4 or run together
    Rule("INSURANCE_ID", r"\b[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y\d]\d(?P<d>-?)[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y\d]\d"
                         r"(?P=d)[AC-HJKMNP-RT-Y]{2}\d{2}\b", 0.85),
    # account and card numbers named by their cue whatever their check digits say: a typo is still someone's account
    Rule("US_BANK_NUMBER", _after(r"clabe(?:[ \t]+(?:para|de)[ \t]+\p{L}+)?|cvu|cbu|rekening|no\.?[ \t]+rekening|nomor[ \t]+rekening",
                                  r"(?P<v>\d(?:[ -]?\d){9,21})(?![\w-])"), 0.9),
    Rule("INSURANCE_ID", _after(r"tessera sanitaria(?: n\.?)?|sha(?: no\.?| number)|nhif(?: no\.?| number)?|"
                                r"philhealth(?: no\.?)?"), 0.9),
    Rule("NATIONAL_ID", _after(r"carta d['’]identit[àa](?: n\.?)?|cni(?: n[°º]\.?)?|c[ée]dula(?: de ciudadan[íi]a)?"
                               r"(?: no\.?| n[°º]\.?)?|id no\.?|nin|bvn|kra pin|npwp|nik",
                               r"(?P<v>(?=[A-Za-z0-9.-]*\d)[A-Za-z0-9](?:[A-Za-z0-9.-]{2,22}[A-Za-z0-9]))\b"), 0.9),
    Rule("DRIVER_LICENSE", _after(r"führerschein-?nr|permis de conduire(?: n[°º]\.?)?|patente(?: di guida)?(?: n\.?)?|"
                                  r"licencia de conducir|carteira de motorista|rijbewijs(?:nummer)?"), 0.9),
    Rule("VEHICLE_ID", _after(r"vin|fin|fahrgestellnummer|chassis(?: no\.?| number)?|vehicle identification number",
                              r"(?P<v>[A-HJ-NPR-Z0-9]{17})\b"), 0.9),
    # Chinese resident identity number: region, birth date, serial, ISO 7064 check ("310104198807152348")
    Rule("NATIONAL_ID", r"(?<![\w-])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\w-])",
         0.85, cn_resident_id_ok),
    Rule("NATIONAL_ID", _after(r"cccd|cmnd|căn cước(?: công dân)?|citizen identity card|id card(?:[ \t]+(?:on file|"
                               r"no\.?|number))?|identity card(?:[ \t]+(?:on file|no\.?|number))?|emirates id|hkid|mykad|"
                               r"curp|cédula|carte d'identité|personalausweis(?:nummer)?"), 0.9),
    # identifiers named in the language of the record: "Versicherungsnummer lautet KFZ-4471-88213", "póliza de hogar
    # nº HG-771-204598", "N° de contrat : MAAF-AUTO-7781204", "Personalnummer 20-3318", "UHID: KMH-2210-88341"
    Rule("INSURANCE_ID", _after(r"versicherungsnummer(?:[ \t]+lautet)?|versichertennummer|versicherten-?nr|"
                                r"(?:n[°º][ \t]*|numéro[ \t]+)de[ \t]+contrat|"
                                r"(?:n[°º]|número)[ \t]+de[ \t]+(?:póliza|apólice)|póliza(?:[ \t]+de[ \t]+\w+)?[ \t]+n[º°o]\.?|"
                                r"apólice(?:[ \t]+n[º°o]\.?)?|polizza(?:[ \t]+n[º°o]?\.?)?|"
                                r"authori[sz]ation code|prior auth(?:ori[sz]ation)?(?: number)?|pre-?auth(?: number)?"), 0.85),
    Rule("MEDICAL_RECORD", _after(r"uhid|hosp(?:ital)?\.?[ \t]+(?:no|nr|number)|nhi(?: number)?|ip no|op no|nhc|"
                                  r"n[º°][ \t]+(?:de[ \t]+)?historia(?:[ \t]+cl[íi]nica)?|historia[ \t]+cl[íi]nica|nhis(?: no\.?)?|"
                                  r"mrn(?:[ \t]+for[ \t]+(?:the[ \t]+)?\w+(?:[ \t]+(?:kid|child|baby|boy|girl|"
                                  r"patient|twins?))?)?"), 0.9),
    Rule("EMPLOYEE_ID", _after(r"personalnummer|pers\.?-?nr|personnel number|staff no|mitarbeiternummer|matricule|"
                               r"número de emplead[oa]|n[.º°]+ de emplead[oa]|numero di matricola"), 0.9),
    # the same ids named in the record's language, with its own "is": "Polizza attuale n.: RCA-4471029", "A minha
    # apólice é AU-00781245", "codice cliente 0098817263", "patiëntnummer 7004519", "Nr ewidencyjny pracownika: MX-0382"
    Rule("INSURANCE_ID", r"(?i:\b(?:versicherungsschein(?:-?nr\.?|nummer)?|(?:n\.?[º°]|número)[ \t]+de[ \t]+p[óo]liza|"
                         r"polizza(?:[ \t]+attuale)?(?:[ \t]+n\.?)?|ap[óo]lice|numer[ \t]+polisy|polisnummer|"
                         r"num[ée]ro[ \t]+de[ \t]+police)" + _FOREIGN_IS + r")" + _ID_TOKEN, 0.85),
    Rule("CUSTOMER_ID", r"(?i:\bclient[e]?[ \t]+n[°º][ \t]*)(?P<v>\d{2,6}(?:[ ]\d{2,6}){1,4})(?![\w-])", 0.85),
    Rule("CUSTOMER_ID", r"(?i:\b(?:codice[ \t]+cliente|num[ée]ro[ \t]+(?:de[ \t]+)?client|n[°º][ \t]*client|kundennummer|"
                        r"kunden-?nr\.?|n[úu]mero[ \t]+de[ \t]+cliente|klantnummer|numer[ \t]+klienta|client[e]?[ \t]+n[°º]|"
                        r"contrat[ \t]+n[°º]|kundennummer[ \t]+beim[ \t]+\w+[ \t]+anbieter|"
                        r"n[úu]mero[ \t]+de[ \t]+contribuinte)" + _FOREIGN_IS + r")" + _ID_TOKEN, 0.85),
    Rule("MEDICAL_RECORD", r"(?i:\b(?:pati[ëe]ntnummer|patientennummer|num[ée]ro[ \t]+(?:de[ \t]+)?patient|"
                           r"numero[ \t]+paziente|n[úu]mero[ \t]+de[ \t]+paciente|numer[ \t]+pacjenta)" + _FOREIGN_IS + r")"
                           + _ID_TOKEN, 0.9),
    Rule("EMPLOYEE_ID", r"(?i:\b(?:personeelsnummer|matricola(?:[ \t]+n\.?)?|nr[ \t]+ewidencyjny(?:[ \t]+pracownika)?|"
                        r"numer[ \t]+pracownika|num[ée]ro[ \t]+d['’]employ[ée]|n[úu]mero[ \t]+de[ \t]+funcion[áa]rio)"
                        + _FOREIGN_IS + r")" + _ID_TOKEN, 0.9),
    Rule("DRIVER_LICENSE", _after(r"licencia(?:[ \t]+(?:federal|de conducir|de manejo))?|carteira de motorista|cnh|"
                                  r"rijbewijs(?:nummer)?|patente di guida"), 0.85),
    # number plates after their name, in the shapes plates have: "plate KA-01-HX-9032", "Placas: JKL-48-92",
    # "Kennzeichen S-MD 4471"
    Rule("VEHICLE_ID", r"(?i:\b(?:(?:licen[cs]e|number|registration|reg)[ \t]+)?(?:plates?|placas?|kennzeichen|matrícula|"
                       r"immatriculation|targa|kenteken)(?:[ \t]*\([^()\n]{1,30}\))?[ \t]*(?:no\.?|number|nr\.?)?[ \t]*[:#]?[ \t]*)"
                       r"(?P<v>(?=[\p{Lu}0-9 -]*\d)(?=[\p{Lu}0-9 -]*\p{Lu})[\p{Lu}0-9]{1,4}(?:[ -][\p{Lu}0-9]{1,4}){1,3}|"
                       r"(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{5,8})(?![\w-])", 0.85),
    # an Indian UPI payment address: "upi id rverma1990@okicici" (no dot after the @, so no e-mail)
    Rule("ID_NUMBER", r"(?<![\w.@-])(?P<v>[A-Za-z0-9._-]{2,40}@(?:ok(?:icici|hdfcbank|axis|sbi)|ybl|ibl|axl|paytm|upi|apl|"
                      r"icici|sbi|hdfcbank|axisbank|kotak|yesbank|airtel|jio|fbl|pt(?:hdfc|sbi|yes|axis)|freecharge|ikwik|"
                      r"abfspay|waicici|wahdfcbank|pnb|boi|unionbank|idfcbank|indus|federal|rbl|kmbl|aubank|timecosmos))"
                      r"(?![\w@-]|\.\w)", 0.9),
    Rule("ID_NUMBER", r"(?i:\bupi(?:[ \t]+(?:id|address|handle|vpa))?[ \t]*(?:is|:|=)?[ \t]*)(?P<v>[A-Za-z0-9._-]{2,40}@[A-Za-z]{2,20})"
                      r"(?![\w@-]|\.\w)", 0.9),
    # a membership number in digit groups: "IKEA Family member: 6275 9800 4412 7763"
    Rule("CUSTOMER_ID", _after(r"member|membership|loyalty|club ?card|family member|rewards|bonus card|card no",
                               r"(?P<v>\d{3,5}(?:[ -]\d{3,5}){2,4})(?![\w-])"), 0.85),
    Rule("NATIONAL_ID", r"\b[A-Z]{1,2}\d{6}\([0-9A]\)", 0.85),  # Hong Kong identity card: "A123456(7)"
    Rule("NATIONAL_ID", r"(?i)\b(?:\d{8}|[XYZ]\d{7})-?[A-HJ-NP-TV-Z]\b", 0.7, dni_ok, invalid_score=0.3,
         context=("dni", "nif", "nie", "documento")),
    Rule("NATIONAL_ID", r"(?<!\d)(?<!\d )[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?![\d])", 0.85,
         nir_ok, invalid_score=0.3, context=("sécurité sociale", "securite sociale", "nir ", "nir:", "insee",
                                             "carte vitale")),
    Rule("NATIONAL_ID", r"(?i)\b[A-Z]{6}[\dLMNP-V]{2}[A-EHLMPRST][\dLMNP-V]{2}[A-Z][\dLMNP-V]{3}[A-Z]\b", 0.9,
         codice_fiscale_ok, invalid_score=0.3, context=("c.f.", "codice fiscale", "cod. fisc", "cf:", "cf ")),
    Rule("NATIONAL_ID", r"(?i)\b[STFG]\d{7}[A-Z]\b", 0.7, nric_ok, context=("nric", "fin:", "fin no")),
    Rule("NATIONAL_ID", r"(?i)(?<![\d-])[0-3]\d[01]\d\d{2}[-+A-FU-Y]\d{3}[0-9A-Y]\b", 0.7, hetu_ok,
         context=("hetu", "henkilötunnus", "personal identity code")),
    # --- vehicles, devices, places
    Rule("VEHICLE_ID", r"(?i)\b(?=[A-Z]*\d)(?=\d*[A-Z])[A-HJ-NPR-Z0-9]{17}\b", 0.85, vin_ok, invalid_score=0.3,
         context=("vin ", "vin:", "vin#", "vehicle", "chassis")),
    Rule("VEHICLE_ID", _after(r"vin|vehicle identification|chassis", r"(?P<v>(?i:[A-HJ-NPR-Z0-9]{17}))\b"), 0.95),
    Rule("VEHICLE_ID", _after(r"licen[cs]e plate|number plate|registration plate|plate number|plate no|plate(?=\s*[:#=])|"
                              r"(?:car|truck|van|vehicle|lorry|bike|motorcycle|trailer|taxi|cab|bus)[ \t]+plate|"
                              r"reg(?:istration)? mark|(?:vehicle|car|van|truck)[ \t]+reg(?:istration)?|registration|reg no|reg|vrm|"
                              r"kennzeichen|immatriculation|"
                              r"matr[ií]cula|targa",
                              r"(?P<v>(?=[\p{Lu}0-9 -]*\d)(?=[\p{Lu}0-9 -]*\p{Lu})[\p{Lu}0-9]{1,4}(?:[ -]?[\p{Lu}0-9]{1,4}){1,3})\b"),
         0.85),
    # the UK's current plate shape right after a vehicle word: "and vehicle GH12 XYZ", "my car LV19XKP"
    Rule("VEHICLE_ID", r"(?i:\b(?:vehicle|car|van|truck|lorry|motorbike|motorcycle|taxi)[ \t]+(?:registered[ \t]+|"
                       r"(?:with[ \t]+)?reg(?:istration)?\.?[ \t]+)?)(?P<v>[A-Z]{2}\d{2}[ ]?[A-Z]{3})\b", 0.85),
    # a bare "plate" only when a vehicle was named shortly before: "your vehicle … with plate WY-4KP-22"
    Rule("VEHICLE_ID", r"(?i:\b(?:vehicle|car|van|truck|vin)\b[^.\n]{0,60}?\bplate[ \t]+)"
                       r"(?P<v>(?=[\p{Lu}0-9 -]*\d)(?=[\p{Lu}0-9 -]*\p{Lu})[\p{Lu}0-9]{1,4}(?:[ -]?[\p{Lu}0-9]{1,4}){1,3})\b",
         0.85),
    Rule("DEVICE_ID", r"(?<![\w-])89\d{16,18}(?![\w-])", 0.6, lambda v: luhn_ok(v)),  # a SIM's ICCID
    Rule("DEVICE_ID", r"(?<![\w-])\d{2}[ -]?\d{6}[ -]?\d{6}[ -]?\d(?![\w-])", 0.5,
         lambda v: imei_ok(v) and not card_ok(v), context=("imei", "device", "handset", "serial", "phone")),
    Rule("DEVICE_ID", _after(r"imei|imeisv|meid|imsi|iccid|esn|udid|device id|device serial|device identifier|"
                             r"serial number|serial no|s/n|android id|advertising id|idfa|gaid|idfv|hostname|host name|"
                             r"computer name|machine name|device name",
                             r"(?P<v>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|"
                             r"\d{2,8}(?:[ -]\d{1,8}){1,4}(?![ -]?\d)|(?=[A-Za-z0-9-]*\d)[A-Za-z0-9](?:[A-Za-z0-9-/.]{2,30}[A-Za-z0-9]))\b"),
         0.95),
    # a bare "serial" only before a serial-shaped code: "serial R58M42ABCDE" (not "serial 12-lead ECGs")
    Rule("DEVICE_ID", r"(?i:\bserial)[ \t]*[:#=]?[ \t]*(?P<v>(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{8,20})(?![\w-])",
         0.9),
    Rule("GPS_COORDINATES", r"(?<![\d.])\d{1,2}(?:\.\d+°?|°)[ \t]*[NSns],?[ \t]*\d{1,3}(?:\.\d+°?|°)[ \t]*[EWew]\b", 0.85,
         coordinates_ok),
    Rule("GPS_COORDINATES", r"(?<![\d.])[-+]?\d{1,2}\.\d+°[ \t]*,[ \t]*[-+]?\d{1,3}\.\d+°", 0.85, coordinates_ok),
    Rule("GPS_COORDINATES", r"(?i)\b\d{1,2}°[ \t]*\d{1,2}['′][ \t]*(?:\d{1,2}(?:\.\d+)?(?:\"|″|'')[ \t]*)?[NS],?[ \t]*"
                            r"\d{1,3}°[ \t]*\d{1,2}['′][ \t]*(?:\d{1,2}(?:\.\d+)?(?:\"|″|'')[ \t]*)?[EW]\b", 0.85),
    # a bare decimal pair is as often a pair of measurements: it needs a location word before it
    Rule("GPS_COORDINATES", r"(?<![\d.])[-+]?\d{1,2}\.\d{2,}[ \t]*[,;/][ \t]*[-+]?\d{1,3}\.\d{2,}(?![\d.])", 0.35,
         coordinates_ok, context=("latitude", "lat:", "lat ", "lat/", "gps", "coordinates", "coords", "location",
                                  "located", "geo:", "geolocation", "position", "seen at", "on the map", "pinned",
                                  "lives at", "home at", "reported at", "last seen", "waypoint", "ping", "pinged",
                                  "tracked", "tracker", "map", "drone", "vehicle at", "parked at", "spotted at")),
    # four or more decimals on both sides, whole degrees far apart: a position ("40.7128, -74.0060"), not a pair of
    # rates or scores ("1.0845, 1.0871", "0.8123, 0.7654")
    Rule("GPS_COORDINATES", r"(?<![\d.])[-+]?\d{1,2}\.\d{4,}[ \t]*,[ \t]*[-+]?\d{1,3}\.\d{4,}(?![\d.])", 0.6,
         lambda v: coordinates_ok(v) and abs(int(float(v.split(",")[0])) - int(float(v.split(",")[1]))) >= 2),
    # --- licences
    Rule("MEDICAL_LICENSE", r"(?i)\b[ABCDEFGHJKLMPRSTUX][A-Z9]\d{7}\b", 0.5, dea_ok, invalid_score=0.3,
         context=("dea", "licen", "prescriber", "registration")),
    Rule("MEDICAL_LICENSE", _after(r"dea|npi|medical licen[cs]e|licen[cs]e to practi[cs]e|gmc|prescriber|imc|nmbi|nmc|"
                                   r"ahpra|hcpc|big-?nummer|rpps|n[º°] de colegiad[oa]|colegiad[oa]|reg\.? no\.?|"
                                   r"registration no\.?"), 0.9),
    # --- health, insurance, work, customer
    Rule("MEDICAL_RECORD", _after(r"mrn|medical record|med rec|patient|patient id|chart|hospital number|"
                                  r"health record|case"), 0.9),
    # a payer's member id after the payer's name: "Ins: BCBS MA XJH882716401", "Aetna W123456789"
    Rule("INSURANCE_ID", r"(?:(?i:\b(?:ins|insurance|insurer|payer|plan|coverage)\b)[ \t]*:?[ \t]*(?:[A-Z][\w&-]*[ \t]+){0,3}"
                         r"|\b(?i:bcbs|blue cross|aetna|cigna|humana|unitedhealthcare|uhc|kaiser|anthem|medicare|"
                         r"medicaid)[ \t]+(?:[A-Z]{2}[ \t]+)?)(?P<v>[A-Z]{1,4}\d{6,12})\b", 0.85),
    Rule("INSURANCE_ID", _after(r"insurance|policy|member|subscriber|medicare|medicaid|health plan|"
                                r"insurance id|beneficiary|claim") + r"(?![ \t]+v\d)", 0.85),  # "policy RP-0441 v3.2": a document
    Rule("INSURANCE_ID", _after(r"insurance|policy|member|subscriber|beneficiary",  # "Member ID: XQB 774 210 993"
                                r"(?P<v>[A-Z]{2,4}[ -]?\d{3,6}(?:[ -]\d{2,6}){1,3})(?![\w-])"), 0.9),
    Rule("EMPLOYEE_ID", _after(r"employee|staff|personnel|badge|payroll|worker|emp"), 0.85),
    # an identifier whose cue names no domain: "the unique identifier … is UID-7f3a9c21", "Certificate number
    # CERT-88213-XZ", "Biometric template ID BIO-55-918273"
    Rule("ID_NUMBER", _after(r"unique (?:identifier|id)|identifier|certificate|certification|biometric(?: template)?|"
                             r"record id|person id|profile id|case id|file id|student id|student|school id|pupil id|pupil|"
                             r"(?:roll|admission|enrol?ment)(?=[ \t]*\.?[ \t]*(?:no|nr|number|num|#|id)\b)|"
                             r"learner id|commission|nmls(?: id)?|matricola|"
                             r"matriculation|enrol?lment|bar|state bar|sbn|bar registration|attorney registration|sra|"
                             r"solicitor|badge|collar|warrant card|shoulder",
                             r"(?:(?i:is|was)[ \t]+)?" + _ID_TOKEN), 0.85),
    # a biometric sample's hash or encoding: "Fingerprint hash: 9f86d0…", "voiceprint: dGhpcyBpcyBh…"
    Rule("ID_NUMBER", _after(r"(?:fingerprint|biometric|face ?print|voice ?print|iris|retina(?:l)?)(?:[ \t]+(?:scan|"
                             r"template|hash|code|id|identifier|data|sample)){0,2}",
                             r"(?:(?i:sha-?256|sha-?1|md5)[ \t]*:[ \t]*)?(?P<v>[A-Fa-f0-9]{16,128}|[A-Za-z0-9+/]{20,}={0,2})"
                             r"(?![\w+/=])"), 0.85, has_digit),
    # "(ID 44-1092)": capital "ID" only, and not the id of a thing ("Product ID", "Order ID", "trace ID")
    Rule("ID_NUMBER", r"(?<![\w-])(?<!(?i:product|order|sku|ticket|transaction|job|build|request|session|item|part|"
                      r"model|version|invoice|batch|run|task|issue|bug|commit|event|process|thread|message|trace|"
                      r"correlation|device|app|client|tenant|object|record|file|document|case|group|project|form|"
                      r"template|schema|table|column|field|resource|asset|node|cluster|instance|image|container)[ \t])"
                      r"(?<!,[ \t]?)ID[ \t]*[:#]?[ \t]*(?:(?:is|was)[ \t]+)?" + _ID_TOKEN, 0.75),  # (", ID 83702" is Idaho)
    Rule("ID_NUMBER", r"(?i:\b(?:unique[ \t]+)?identifier\b[^.\n:;]{0,40}?[ \t](?:is|was)[ \t]+)" + _ID_TOKEN, 0.85),
    Rule("CUSTOMER_ID", _after(r"customer|client|cust|account holder|loyalty|membership|user|subscriber|"
                               r"reference|ref|cif|crm|frequent flyer|frequent flier|miles and more|miles & more|"
                               r"skywards|avios|aadvantage|rewards|bonus card|club card|clubcard|nectar|"
                               r"\w+points|\w+miles|\w+rewards"), 0.85),
    Rule("CUSTOMER_ID", _after(r"frequent flyer|frequent flier|miles and more|miles & more|skywards|aadvantage",
                               r"(?P<v>[A-Z]{2}[ ]?\d[\d ]{5,16}\d)\b"), 0.85),  # "LH 992 017 334 5": airline code first
    # Malay and Tamil names carry a patronymic: "NUR SYAFIQAH BT RAZALI", "Ahmad bin Ismail", "Kumar a/l Rajan"
    Rule("PERSON", r"\b\p{Lu}[\p{L}'-]+(?:[ \t]\p{Lu}[\p{L}'-]+){0,3}[ \t](?:bin|binti|BIN|BINTI|BT|BTE|Bt|A/L|A/P|a/l|a/p)"
                   r"[ \t]\p{Lu}[\p{L}'-]+(?:[ \t]\p{Lu}[\p{L}'-]+){0,2}\b", 0.8),
    # a name spelled out on a call: "Rahul Deshpande, R-A-H-U-L"
    Rule("PERSON", r"(?<![\w-])\p{Lu}(?:-\p{Lu}){3,}(?![\w-])", 0.6),
    # spelled with spaces on a call: "last name M A R S H", "A D E Y E M I, hyphen, B A K A R E"
    Rule("PERSON", r"(?<![\w])\p{Lu}(?:[ ]\p{Lu}){2,}(?:,?[ ]+(?i:hyphen|dash)[ ,]+\p{Lu}(?:[ ]\p{Lu}){1,})?(?![\w])", 0.2,
         context=("spell", "spelt", "spelled", "surname", "last name", "first name", "family name", "name is",
                  "letter by letter")),
    # airline and hotel systems write the passenger SURNAME/GIVEN with a title: "BECKER/LUKAS MR", "Nair/Priya Ms"
    Rule("PERSON", r"(?<![\w/])(?P<v>\p{Lu}[\p{Lu}'-]+(?:[ -]\p{Lu}[\p{Lu}'-]+)?/\p{Lu}[\p{Lu}'-]+(?:[ ]\p{Lu}[\p{Lu}'-]+)?"
                    r"[ ]?(?:MR|MRS|MS|MISS|MSTR|DR|CHD|INF)|\p{Lu}\p{Ll}+(?:[ -]\p{Lu}\p{Ll}+)?/\p{Lu}\p{Ll}+[ ]?"
                    r"(?:Mr|Mrs|Ms|Miss|Mstr|Dr))(?![\w/])", 0.85,
         lambda v: (g := regex.split(r"[/ ]", v)[1].lower()) in raw_name_lists()[0] or zipf(g) < 3.5),
)

_NOT_PASSWORDS = {"reset", "expired", "incorrect", "wrong", "changed", "required", "the", "a", "an", "my", "your",
                  "not", "protected", "manager", "field", "and", "or", "for", "is", "was", "to", "again", "policy",
                  "please", "help", "has", "had", "have", "been", "will", "be", "it", "that", "this", "with",
                  "rules", "change", "recovery", "forgotten", "forgot", "locked", "hint", "strength", "here",
                  "twice", "number", "code", "login", "on", "in", "at", "of", "from", "but", "so", "if", "when"}


@lru_cache(maxsize=1)
def _compiled() -> tuple[tuple[Rule, regex.Pattern], ...]:
    return tuple((r, regex.compile(r.pattern, r.flags | regex.MULTILINE)) for r in RULES)


def _context_before(text: str, start: int, words: tuple[str, ...]) -> bool:
    window = text[max(0, start - CONTEXT_WINDOW):start].lower()
    return any(w in window for w in words)


PREFIXED_IDS = frozenset({"EMPLOYEE_ID", "CUSTOMER_ID", "MEDICAL_RECORD", "INSURANCE_ID", "US_BANK_NUMBER"})
_ID_PREFIX = regex.compile(r"(?<![\w-])[A-Z]{2,5}-$")


ORG_ID_TYPES = frozenset({"TAX_ID", "MEDICAL_LICENSE", "INSURANCE_ID"})
# numbers a practice, an employer or a plan holds, not a person: "group NPI 1992837465", "Group #: 5021",
# "FEDERAL TAX I.D. NUMBER … 31-1849260 [EIN]", "Coral Coast Pediatric Dentistry, TIN 59-3318420"
ORG_ID_BEFORE = regex.compile(r"(?i:\b(?:group|billing|facility|organi[sz]ation(?:al)?|practice|clinic|hospital|"
                              r"pharmacy)[ \t]+npi\b|\bgroup(?:[ \t]*(?:no\.?|number|#|id|num))?\b|\bfed(?:eral)?\.?[ \t]+"
                              r"tax\b)[^\n]{0,30}$")
ORG_BEFORE = regex.compile(r"(?i:\b(?:llc|inc|ltd|plc|pllc|pc|corp|group|center|centre|dentistry|hospital|clinic|"
                           r"practice|medicine|health|associates|partners|company|co)\b\.?[ \t,]*(?:\(|,)?[ \t]*"
                           r"(?:tin|ein|fein|tax ?id)\b[^\n]{0,8}$)")


def org_identifier(text: str, start: int, value: str) -> bool:
    """The identifier belongs to an organisation: a group's NPI or plan number, or an employer number (EIN shape)
    after the firm's name or marked [EIN]."""
    if ORG_ID_BEFORE.search(text, max(0, start - 60), start):
        return True
    return bool(regex.fullmatch(r"\d{2}-\d{7}", value)) and bool(
        ORG_BEFORE.search(text, max(0, start - 60), start) or regex.match(r"[ \t]*[\[(]EIN[\])]", text[start + len(value):]))


def pattern_spans(text: str) -> Iterator[Span]:
    """Every rule's matches, scored (validation failures dropped, context boosts applied)."""
    for rule, rx in _compiled():
        for m in rx.finditer(text):
            if "v" in rx.groupindex and m.group("v") is not None:
                start, end = m.span("v")
            else:
                start, end = m.span()
            value = text[start:end]
            score = rule.score
            if rule.validate is not None and not rule.validate(value):
                if rule.invalid_score is None:
                    continue
                score = rule.invalid_score
            if rule.context and _context_before(text, start, rule.context):
                score = min(1.0, score + CONTEXT_BOOST)
            if rule.entity in ORG_ID_TYPES and org_identifier(text, start, value):
                continue
            if rule.entity in PREFIXED_IDS and (prefix := _ID_PREFIX.search(text, 0, start)):
                start = prefix.start()  # the cue "emp" matched inside the id "EMP-004521"
            yield Span(start, end, rule.entity, score)


# ----------------------------------------------------------------------------------------------- IBANs
IBAN_CANDIDATE = regex.compile(r"(?i)\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
IBAN_CUE = ("iban",)


def iban_spans(text: str) -> Iterator[Span]:
    """IBAN-shaped runs, cut back to the longest prefix that passes mod-97 ("GB82 WEST … 32 ASAP" keeps the
    IBAN, not "ASAP"); after the word IBAN a run that fails the check still counts (a typo is still an IBAN)."""
    for m in IBAN_CANDIDATE.finditer(text):
        value = m.group()
        cut = len(value)
        while cut >= 15:
            if iban_ok(value[:cut]):
                yield Span(m.start(), m.start() + cut, "IBAN_CODE", 0.95)
                break
            nxt = value.rfind(" ", 0, cut)
            cut = nxt if nxt > 0 else cut - 1
        else:
            if _context_before(text, m.start(), IBAN_CUE):
                yield Span(m.start(), m.end(), "IBAN_CODE", 0.8)


# ---------------------------------------------------------------------------------------------- phones
PHONE_CANDIDATE = regex.compile(r"(?<![\w+/.-])(?:\+|\b00)?\(?\d(?:[ ().\-/]{0,3}\d){6,16}"
                                r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6})?\b(?![/.-]\d)")
PHONE_CONTEXT = ("phone", "telephone", "tel", "mobile", "cell", "call", "reach", "contact", "number", "fax",
                 "whatsapp", "ring", "text", "landline", "sms", "tél", "handy", "móvil", "telefon", "ph")
# what a shop, a plant or a registry numbers: the digits after these words are no phone ("Receipt 0412-887-20391")
NOT_PHONE_BEFORE = regex.compile(
    r"(?i:\b(?:orders?|po|p\.o\.|purchase order|receipt|invoice|inv|ref|reference|txn|transaction|tracking|ticket|"
    r"build|version|company|registration|reg|si|pn|part|article|artikel|art\.-?nr|item|sku|container|shipment|awb|"
    r"booking|confirmation|bestellung|bestellnummer|auftrag|rechnung|lieferschein|pedido|factura|commande|facture|"
    r"auth|authori[sz]ation|claim|case|icn|trace|batch|run|statement|utr|rrn|acknowledgement|"
    r"zamówienia|zamówienie|ordine|fattura|bestelling|factuur|encomenda|nota fiscal)"
    r"(?:[ \t]+(?:no|nr|number|num|id|code|ref))?\.?[ \t]*(?:[:#]|is\b|was\b)?[ \t]*)(?:(?!(?i:call|ring|tel|phone|mobile|cell|text|fax|whatsapp)\b)\p{Lu}[\p{L}]{1,11}[ \t]+)?$"
    r"|\b[A-Z]{3}[UJZ][ \t]?$")  # ISO 6346 container owner code: "MSCU 4481920"
# keys of counts and codes that no field list names: their numbers are no phones
NUMBER_KEYS = frozenset({"docs", "count", "total", "rows", "bytes", "size", "duration", "duration_ms", "elapsed", "items",
                         "records", "id", "uid", "pid", "tid", "seq", "offset", "port", "status", "code", "order",
                         "order_id", "orderid", "invoice", "txn", "txn_id", "ts", "timestamp", "epoch", "build", "version",
                         "sku", "gtin", "ean", "upc", "batch", "lot", "serial"})
PHONE_MAX = 0.85  # below every cue-introduced id (0.9), so "routing number 011000015" stays a routing number
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "ES", "IT", "NL", "BR", "CA", "IE")
_DATE_LIKE = regex.compile(r"\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}")


# a firm's or a public service's line: "call us on", "Customer care:", "our 24/7 contact centre on", "Dial-in:"
ORG_PHONE_BEFORE = regex.compile(
    r"(?i:\b(?:call|ring|contact|phone|text)[ \t]+us\b|\bour[ \t]+(?:[\w/&-]+[ \t]+){0,3}(?:desk|line|lines|centre|center|"
    r"team|office|helpline|hotline|number|switchboard|branch)\b|\bcustomer[ \t]+(?:care|services?|support|helpline|line)\b|"
    r"\bhelp[ \t]?line|\bhot[ \t]?line|\b(?:help|service|trade|front|reception)[ \t]?desk\b|\bmain[ \t]+(?:reception|line|"
    r"number|switchboard|office)\b|\bswitchboard\b|\bhead[ \t]+office\b|\bcall[ \t]+the[ \t]+office\b|\btoll[ -]?free\b|"
    r"\bfree[ \t]?phone\b|\bdial[ -]?in\b|\b(?:conference|out-of-hours)[ \t]+(?:bridge|line)\b|\bbridge:|\bpbx\b|"
    r"\b(?:contact|call)[ \t]+cent(?:re|er)\b|\bpartner[ \t]+line\b|\bmedia[ \t]+enquiries\b|\bservicenummer\b|"
    r"\bservice[ \t]+client\b|\bnumero[ \t]+verde\b|\bservizio[ \t]+clienti\b|\batenci[oó]n[ \t]+al[ \t]+cliente\b|"
    r"\blocatel\b|\bsac\b|\bcentral[ \t]*:|\bklantenservice\b|\bkundenservice\b|\bhotline\b)[^\n]{0,40}$")


# regions a toll-free number is also checked in (after PHONE_REGIONS): Australia's 1300/1800, Singapore, the
# Philippines, South Africa
TOLL_FREE_REGIONS = ("AU", "SG", "PH", "ZA")


@lru_cache(maxsize=4096)
def _valid_number(value: str) -> tuple[Any, int]:
    """The number parsed in the first likely region where it is valid, and that region's index (-1: none). One parse
    serves both `phone_valid` and `toll_free`."""
    import phonenumbers

    core = regex.split(r"\s?(?:x|ext\.?|extension)\s?\d", value)[0]
    for i, region in enumerate(("US",) if core.startswith("+") else (*PHONE_REGIONS, *TOLL_FREE_REGIONS)):
        try:
            num = phonenumbers.parse(core, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(num):
            return num, i
    return None, -1


def toll_free(value: str) -> bool:
    """A free-call number (`phonenumbers`' own number plans): a firm's or an agency's line, never a person's."""
    import phonenumbers

    num, _ = _valid_number(value)
    return num is not None and phonenumbers.number_type(num) == phonenumbers.PhoneNumberType.TOLL_FREE


def phone_valid(value: str) -> bool:
    """A real number in E.164 terms for some likely region (via `phonenumbers`), not merely phone-shaped."""
    return 0 <= _valid_number(value)[1] < len(PHONE_REGIONS)


def phone_spans(text: str) -> Iterator[Span]:
    """Phone-shaped digit runs: valid numbers score 0.7, others 0.3; a cue word before adds 0.4."""
    for m in PHONE_CANDIDATE.finditer(text):
        value = m.group()
        n = len(digits(value))
        if n < 7 or _DATE_LIKE.fullmatch(value) or (n >= 13 and luhn_ok(value)):
            continue
        if regex.match(r":\d{2}", text[m.end():m.end() + 3]):
            continue  # "[2024-02-11 08:45:12]": a timestamp, cut at the hour
        if regex.fullmatch(r"(?:1[89]|20)\d\d[ \t]*[-–][ \t]*(?:1[89]|20)\d\d", value):
            continue  # "1941-2024": a span of years
        if regex.search(r"\d{1,2}/\d{1,2}/\d{2,4}", value):
            continue  # "03/01/2024 - 03/31/2024": a range of dates
        if TIMESTAMP_DIGITS.fullmatch(value) or (not value.startswith("+") and gtin_ok(value)
                                                 and not _context_before(text, m.start(), PHONE_CONTEXT)):
            continue  # "20240612083015" (an HL7 timestamp), "4006381333931" (an EAN-13 barcode)
        line_start = text.rfind("\n", 0, m.start()) + 1
        if HL7_SEGMENT.match(text, line_start) and text.count("|", line_start, m.start()) >= 2 or (
                "~" in text and "*" in text and x12_line(text, m.start())):
            continue  # inside an HL7 or X12 segment only the phone fields hold phones (`hl7_spans`, `x12_spans`)
        if (key := regex.search(r"(?:^|[\s,{;&?])\"?(?P<k>[A-Za-z_][\w.-]{0,30})\"?[ \t]*[=:][ \t]*\"?$",
                                text[max(0, m.start() - 40):m.start()])) and not value.startswith("+") and (
                field_type(key.group("k"))[0] not in ("PHONE_NUMBER", "PERSON", None)
                or key.group("k").lower() in NUMBER_KEYS):
            continue  # "docs=2188401", "order_id: 5829104471": the key names what the number is
        if regex.fullmatch(r"(?:1[89]|20)\d\d/\d{1,5}", value) or NOT_PHONE_BEFORE.search(text, max(0, m.start() - 40),
                                                                                          m.start()):
            continue  # "SI 1998/1833"; "order 5829104471", "PO 4500188213", "Bestellung 73920114", "MSCU 4481920"
        if ORG_PHONE_BEFORE.search(text, max(0, m.start() - 80), m.start()) or (
                toll_free(value) and not regex.search(r"(?i)\d\s?(?:x|ext)", value)):
            continue  # "Customer care: 1300 464 278", "call us on …", "0800 028 4411": a firm's line ("800-555-0150 ext
            # 4471" is someone's desk)
        score = 0.7 if phone_valid(value) else 0.3
        if value.startswith("+") and n >= 8:
            score = max(score, 0.6)
        if _context_before(text, m.start(), PHONE_CONTEXT):
            score = min(PHONE_MAX, score + CONTEXT_BOOST)
        yield Span(m.start(), m.end(), "PHONE_NUMBER", score)


# --------------------------------------------------------------------------------------------- addresses
_STREET_WORDS = (
    "street|st|avenue|ave|av|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|ter|circle|cir|"
    "parkway|pkwy|highway|hwy|square|sq|close|crescent|cres|alley|aly|bypass|causeway|center|centre|cove|crossing|"
    "expressway|freeway|gardens|gdns|grove|heights|hts|hill|hollow|junction|landing|loop|manor|meadows?|mews|mill|"
    "motorway|orchard|pass|path|pike|plaza|plz|point|port|ridge|row|run|spur|station|summit|trail|trl|turnpike|"
    "valley|view|villa|village|vista|walk|wharf|wynd|estate|green|park|rise|bank|brook|burg|camp|canyon|cliffs?|"
    "prospekt|prospect|"
    "club|common|corners?|creek|crest|dale|dam|divide|estates|extension|falls|ferry|fields?|flats?|ford|forest|"
    "forge|fork|fort|glen|harbor|harbour|haven|island|isle|key|knolls?|lake|lakes|lights?|lodge|mall|mission|"
    "mount|mountain|neck|oval|overpass|pines|plains|prairie|radial|ramp|ranch|rapids|rest|route|shoals?|shores?|"
    "skyway|springs?|squares|stravenue|stream|streets|throughway|trace|track|trafficway|tunnel|underpass|union|"
    "unions|viaduct|ville|ways|wells?|terr|blvd\\.|hwy|mills|points|ports|ridges|hills|groves|views|villages|villas|"
    "walks|brooks|courts|coves|drives|fords|forges|forks|glens|greens|harbors|islands|junctions|keys|locks|manors|"
    "mountains|parks|parkways|roads|spurs|valleys|centers|circles|burgs|inlet|approach|arcade|bend|broadway|circuit|"
    "concourse|courtyard|esplanade|parade|promenade|quay|quays|ridgeway|roadway|strand|vale|walkway|brae|grange")
_UNIT = (r"(?:,?[ \t]*\n?[ \t]*(?i:apt|apartment|suite|ste|unit|flat|floor|fl|room|rm|#|no\.?|piso|planta|puerta|"
         r"escalera|esc\.|stiege|stock|etage|app\.?|interno|int\.|scala|bis|bldg|building)(?![^\W\d_])\.?[ \t]*#?[ \t]*[\w/-]{1,6}"
         r"(?:[ \t]+(?i:piso|planta|puerta)[ \t]+[\w-]{1,4})?"
         r"|,?[ \t]*\d{1,2}[ºª°](?:[ \t]*(?:[A-Z]\b|(?i:izq(?:da|uierda)?|dcha|dch|derecha|centro)\b\.?))?)")
_POST = (r"(?:\d{4,5}(?:-\d{3,4})?|\d{2}-\d{3}|[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2}|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d|"
         r"(?:[AC-FHKNPRTV-Y]\d{2}|D6W)[ \t]?[0-9AC-FHKNPRTV-Y]{4})")  # … Irish Eircode
_LOWER_STOP = (r"(?:the|a|an|on|in|at|to|of|my|your|our|per|for|from|and|or|by|with|this|that|every|each|last|next|"
               r"is|was|are|be|it|its|i|we|you|he|she|they|than|then|more|less|about|over|under|after|before)")
_CITY_WORD = r"(?!(?i:" + _LOWER_STOP + r")\b)[\p{L}.'()-]+"  # "…, it cost 45000" is no city line
_CITY_LINE = (r"(?:[ \t]*(?:,|\n)[ \t]*(?:(?:(?:" + _CITY_WORD + r"[ \t]){0,3}" + _CITY_WORD + r",?[ \t]*\n?[ \t]*"
              r"(?:[A-Za-z]{2,3}\.?,?[ \t]+)?"
              + _POST + r"|" + _POST + r",?[ \t]+\p{L}[\p{L}.'-]+(?:[ \t]\p{Lu}[\p{L}.'-]+){0,2}(?:[ \t]\(\p{L}{2}\))?"
              r"|(?:[\p{L}.'-]+[ \t]){0,2}[\p{L}.'-]+[ \t]*[- ][ \t]*\d{6}))(?!\d))")
_STREET_PLAIN = _STREET_WORDS
_ADDR_WORD = r"(?:\p{Lu}[\p{L}'.-]*|\d+(?:st|nd|rd|th)|[NSEW]\.?)"
_ROMANCE = ("via|viale|vicolo|piazza|piazzale|corso|contrada|borgo|strada|calle|camino|carretera|ronda|rambla|glorieta|"
            "carrer|avinguda|passeig|plaça|"
            "callejón|avenida|avda\\.|paseo|pasaje|plaza|travesía|urbanización|alameda|vía|cuesta|rua|travessa|largo|"
            "praça|estrada|ulica|ul\\.|aleja|rue|chemin|allée|impasse|quai")
_ROMANCE_FORMS = "|".join(sorted({f(w) for w in _ROMANCE.split("|") for f in (str.capitalize, str.upper, str.lower)}
                                 - {"via", "plaza", "largo", "corso", "borgo"}, key=len, reverse=True)) + (
    r"|Av\.(?=[ \t]+\p{Lu})")  # "Av. Reforma 222" (not "the Av. price")
_GERMANIC = "straße|strasse|str\\.|weg|gasse|platz|allee|damm|ufer|laan|straat|gracht|plein|vej|gade|gatan|vägen|veien"
_INDIAN = "nagar|marg|chowk|colony|gali|sector|layout|puram|halli|ganj|bagh|vihar|enclave|circle|cross|main"
_LOWER_CITY_ZIP = r"[ \t]+(?:[a-z.'-]+[ \t]){1,3}[a-z]{2}[ \t]+\d{5}(?:-\d{4})?\b"  # "… tulsa ok 74101"
ADDRESS_RULES = (
    # German streets named with a preposition, before a postcode or after an address label: "Am Kirchberg 3, 79112
    # Freiburg", "Straße: Am Sonnenhang 5", "In der Au 12"
    regex.compile(r"(?:(?<=(?i:straße|strasse|adresse|anschrift|wohnhaft|wohne|an meine adresse|lieferadresse|an)"
                  r"[ \t]*:?[ \t]*)|(?=\p{Lu}\p{Ll}+[^\n]{2,30}?\d{1,4}[a-z]?,?[ \t]*\n?[ \t]*\d{5}[ \t]+\p{Lu}))"
                  r"\b(?:Am|Im|An[ \t]+der|An[ \t]+den|Auf[ \t]+der|Auf[ \t]+dem|In[ \t]+der|In[ \t]+den|Zum|Zur|"
                  r"Unter[ \t]+den|Hinter[ \t]+der|Vor[ \t]+dem|Beim)[ \t]+\p{Lu}[\p{Ll}ßäöü-]+[ \t]+\d{1,4}[a-z]?\b"),
    # the street word after the name in other languages: "Brīvības iela 145-12", "Kossuth Lajos utca 12",
    # "Storgatan 5", "Heol y Nant" after its number ("27 Heol y Nant")
    regex.compile(r"\b\p{Lu}[\p{L}-]*(?:[ \t]+\p{Lu}[\p{L}-]*)?[ \t]+(?:iela|utca|út|tänav|gatve|gatvė|ulice|gata|gatan|"
                  r"vej|gade|vegen|veien|katu|tie|sokak|sokağı|caddesi|cad\.)[ \t]+\d{1,4}[a-zA-Z]?(?:[/-]\d{1,4})?\b"),
    regex.compile(r"(?<![\w-])\d{1,4}[a-zA-Z]?,?[ \t]+(?:Heol|Ffordd|Stryd|Lôn|Lon|Bóthar|Sráid)[ \t]+(?:[yr][ \t]+)?"
                  r"\p{Lu}[\p{L}'-]+(?:[ \t]+\p{Lu}[\p{L}'-]+)?\b"),
    # Indian flats and housing societies: "C-204, Sai Residency, Sector 21", "Flat 302, Al-Noor Residency"
    regex.compile(r"(?<![\w-])(?:[A-Z]-?\d{1,4}|(?i:flat|house|plot)[ \t]+(?:no\.?[ \t]*)?\d{1,4}[A-Z]?),[ \t]*"
                  r"(?:\p{Lu}[\p{L}.'-]*[ \t]+){1,3}(?:Residency|Apartments?|Towers?|Enclave|Heights|Society|Complex|"
                  r"Chambers|Mansion|Niwas|Sadan|Bhavan|Nagar|Colony|Layout|Gardens|Park|Villas?)\b(?:,[ \t]*"
                  r"(?:Sector|Phase|Block)[ \t]+\d{1,3}[A-Z]?)?"),
    # Indonesian and Malaysian streets: "Jl. Melati No. 5", "Jalan Ampang No. 12A", "Gg. Mawar 3"
    regex.compile(r"\b(?:Jl|Jln|Jalan|Gg|Gang|Lorong)\.?[ \t]+(?:\p{Lu}[\p{L}.'-]*[ \t]+){1,4}(?:(?i:no)\.?[ \t]*)?"
                  r"\d{1,4}[A-Za-z]?\b" + _CITY_LINE + r"?"),
    # "841 6th St", "0175 Williams Summit Apt. 282\nNorth Sarah, IL 52791", "12 Baker Street, London NW1 6XE"
    regex.compile(r"(?:\b(?i:flat|apt|apartment|unit|suite)\.?[ \t]*\w{1,5},?[ \t]+)?"
                  r"(?<![\w-])(?<!\d:)\d{1,6}[A-Za-z]?(?:-\d{1,4})?,?[ \t]+(?!(?i:dr)\b)(?:" + _ADDR_WORD + r",?[ \t]+){0,4}?"
                  r"(?=\p{Lu})(?i:" + _STREET_WORDS + "|" + _INDIAN + r")\b\.?"
                  r"(?:[ \t]+(?=\p{Lu})(?i:" + _STREET_WORDS + r")\b\.?){0,2}"  # "Park Avenue", "Harbor View Road"
                  + _UNIT + r"?" + _CITY_LINE + r"?"),
    # lower case: "46690 jody inlet suite 225" (words before the street type are not stop words)
    regex.compile(r"(?<![\w-])\d{1,5}[ \t]+(?:(?!" + _LOWER_STOP + r"\b)(?:[a-z]+|\d{1,3}(?:st|nd|rd|th))[ \t]+){1,3}(?:"
                  + _STREET_PLAIN + r")\b\.?(?:[ \t]+(?:nw|ne|sw|se)\b)?" + _UNIT + r"?(?:" + _CITY_LINE
                  + r"|" + _LOWER_CITY_ZIP  # "… ave nw washington dc 20500"
                  + r"|,?[ \t]+(?:[a-z.'-]+[ \t]){0,2}[a-z]{1,2}\d[a-z\d]?[ \t]?\d[a-z]{2}\b)?"),  # ", leeds ls6 3aa"
    # rural routes and highway contracts: "Rural Route 2, Box 118, Tupelo, MS 38801"
    regex.compile(r"\b(?i:rural[ \t]+route|r\.?r\.?|hc|highway[ \t]+contract)[ \t]*\d{1,3},?[ \t]*(?i:box)[ \t]*\d{1,5}\b"
                  + _CITY_LINE + r"?"),
    # Japanese block addresses: "3-14-2 Shibuya, Shibuya-ku, Tokyo 150-0002"
    regex.compile(r"(?<![\w-])\d{1,2}(?:-\d{1,4}){1,2}[ \t]+\p{Lu}[\p{L}-]+(?:,[ \t]*\p{Lu}[\p{L}-]+){0,3}?"
                  r"(?:,[ \t]*\p{Lu}[\p{L}]+-(?:ku|shi|cho|machi|gun|ken))(?:,[ \t]*\p{Lu}[\p{L}-]+)?(?:[ \t,]+\d{3}-\d{4})?"
                  r"(?![\w-])"),
    # "Hauptstraße 12", "Karl-Dieter-Allee 5-2", "winklerallee 8/7"
    regex.compile(r"\b\p{L}[\p{L}-]*(?i:" + _GERMANIC + r")[ \t]+\d{1,4}[a-zA-Z]?(?:[/-]\d{1,4})?\b" + _UNIT + r"?"
                  + _CITY_LINE + r"?"),
    # the street word apart, capitalised: "Schönhauser Allee 131, 10437 Berlin", "Kurfürstendamm" aside, "Berliner Ring 4"
    regex.compile(r"\b\p{Lu}[\p{L}-]*(?:[ \t]+(?:der|den|dem|am|an|im|auf))?[ \t]+(?:Straße|Strasse|Str\.|Weg|Gasse|Platz|"
                  r"Allee|Damm|Ufer|Ring|Chaussee|Steig|Laan|Straat|Gracht|Plein|Kade|Singel)[ \t]+\d{1,4}[a-zA-Z]?"
                  r"(?:[/-]\d{1,4})?\b" + _UNIT + r"?" + _CITY_LINE + r"?"),
    # "Via Roma 5", "Calle Mayor 7, 28013 Madrid", "Vicolo Morpurgo, 8", "12 rue de la Paix, 75002 Paris"
    regex.compile(r"(?:(?<![\w-])\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+)?\b(?:" + _ROMANCE_FORMS + r")[ \t]+"
                  r"(?:(?:d[aeiou]l?|de[il]?|des|aux|la|le|l'|d'|dos|das|of)[ \t]*)*\p{L}[\p{L}'’.-]*(?:[ \t]+[\p{L}'’.-]+){0,4}?"
                  r"(?:,?[ \t]+(?:n\.?[ºo°]?[ \t]*)?\d{1,4}[a-zA-Z]?(?:/\d{1,4})?\b|(?=[ \t]*[,\n])|"
                  r"[ \t]+\d{5}[ \t]+\p{L}[\p{L}'-]+(?=[ \t]*(?:$|[,.;\n]|[ \t]\p{Ll})))" + _UNIT + r"?"  # "4 rue du bac 75007 paris"
                  + _CITY_LINE + r"?"),
    # French order, number first: "8 avenue Victor Hugo, 69003 Lyon", "14 bd de la Liberté"
    regex.compile(r"(?<![\w-])\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?i:avenue|av\.|boulevard|bd|cours|route|place)[ \t]+"
                  r"(?:(?:d[eu]s?|la|l'|d')[ \t]*)*\p{Lu}[\p{L}'’.-]*(?:[ \t]+(?:\p{Lu}[\p{L}'’.-]*|d[eu]s?|la))"
                  r"{0,3}" + _UNIT + r"?" + _CITY_LINE + r"?"),
    # Indian blocks: "H.No. 49\nSwaminathan Ganj\nGuwahati 646010", "12/4, Gandhi Nagar, Pune - 411001"
    regex.compile(r"(?:\b(?i:h\.?[ \t]?no|house[ \t]no|flat[ \t]no|plot[ \t]no)\.?[ \t]*)?(?<![\w/-])\d{1,4}(?:/\d{1,4})?"
                  r"[ \t]*[,\n][ \t]*(?:\p{Lu}[\p{L}'.-]*[ \t]+){0,3}(?i:" + _INDIAN + r")\b" + _CITY_LINE + r"?"),
    # a three-line block ending in a six-digit PIN, at a line start or after a cue: "to 02\nGoda\nTiruvottiyur 921171"
    regex.compile(r"(?:(?<=^|\n)|(?<=[:,][ \t]*)|(?<=\b(?i:to|at|address|addr)[ \t]+))\d{1,4}(?:/\d{1,4})?[ \t]*\n[ \t]*\p{Lu}[\p{L}'.-]+(?:[ \t]+\p{Lu}[\p{L}'.-]+){0,3}[ \t]*\n"
                  r"[ \t]*\p{Lu}[\p{L}.'-]+(?:[ \t]+\p{Lu}[\p{L}.'-]+){0,2}[ \t]*-?[ \t]*\d{6}(?!\d)"),
    # "PO Box 123", military "USNS Brown\nFPO AE 04521", "PSC 1234, Box 5678\nAPO AA 12345"
    regex.compile(r"\b(?i:p\.?\s?o\.?\s?box|post office box|postfach|boîte postale)[ \t]*\d{1,6}\b(?:" + _CITY_LINE + r"|"
                  + _LOWER_CITY_ZIP + r")?"),
    regex.compile(r"(?i)\b(?:USNS|USNV|USS|USCGC|PSC|Unit)[ \t]+[\w ]{1,30}?,?(?:[ \t]*Box[ \t]*\d+)?[ \t]*\n?[ \t]*"
                  r"(?:APO|FPO|DPO)[ \t]+A[AEP][ \t]+\d{5}\b"),
)
POSTCODE_RULES = (
    (regex.compile(r"\b(?:GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})\b"), 0.7),  # UK
    (regex.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d\b"), 0.6),  # Canada
    (regex.compile(r"(?<![\w/.-])\d{5}(?:-\d{4})?(?![\w-]|[/.:]\d)"), 0.2),  # US / DE / FR: context needed
    (regex.compile(r"(?<![\w/.-])\d{4}(?: ?[A-Z]{2})?(?![\w-]|[/.:]\d)"), 0.1),  # NL / AU / CH etc.: context needed
    (regex.compile(r"(?<![\w/.-])\d{3}-\d{4}(?![\w-]|[/.:]\d)|(?<![\w/.-])\d{6}(?![\w-]|[/.:]\d)"), 0.1),  # JP / IN
    (regex.compile(r"(?<=,[ \t]*\p{Lu}\p{Ll}+[ \t]*[-–][ \t]*)[1-8]\d{5}(?![\w-]|[/.:]\d)"), 0.7),  # "Bengaluru - 560003"
    (regex.compile(r"(?<![\w/.-])\d{5}-\d{3}(?![\w-]|[/.:]\d)"), 0.2),  # Brazil's CEP: context needed
    (regex.compile(r"〒[ \t]?\K\d{3}-\d{4}"), 0.9),  # Japan's postal mark
    # after a house number and a comma, before a capitalised town: "Am Mühlgraben 3a, 04109 Leipzig",
    # "Keizersgracht 412-III, 1016 GC Amsterdam", "Via Roma 14/B, 90133 Palermo"
    (regex.compile(r"(?<=\p{L}[ \t]+\d{1,4}(?:[a-zA-Z]|[/-][\dA-Za-z]{1,4})?,[ \t]*)(?:\d{5}|\d{4}[ ]?[A-Z]{2}|\d{2}-\d{3}|"
                   r"\d{4}-\d{3})(?=[ \t]+\p{Lu}\p{Ll})"), 0.7),
)
# a postcode after the street and its extras on the same line: "Calle Urdaneta 12, 3º izda., 20006 Donostia",
# "Lindenstraße 47, 2. OG links, 10969 Berlin"; an Indian PIN after the locality: "Sector 21, Kharghar 410210"
POSTCODE_AFTER_STREET = regex.compile(
    r"(?<=(?i:\b(?:calle|c/|avenida|avda\.|av\.|rua|via|viale|corso|rue|boulevard|bd|chemin|carrer|plaza|paseo|"
    r"ul\.|ulica|aleja|straat|laan|weg)\b|\p{L}(?:straße|strasse|str\.|weg|gasse|allee|platz|ring|damm|laan|straat))"
    r"[^\n]{2,50}?,[ \t]*)(?P<v>\d{5})(?=[ \t]+\p{Lu}\p{Ll})")
INDIAN_PIN = regex.compile(r"(?<=(?i:\b(?:sector|phase|block|nagar|colony|layout|road|marg|residency|apartments|"
                           r"society|enclave|chowk|lane|street|cross|main)\b)[^\n]{0,40}?[ \t,]+\p{Lu}[\p{L}]+"
                           r"(?:[ \t]+\(?[EWNS]\)?)?[ \t,–-]*)(?P<v>[1-8]\d{5}|[1-8]\d{2}[ ]\d{3})(?!\d)")
# the city line of a postal block, postcode first or last: "80339 München", "3511 NK Utrecht", "69005 LYON",
# "Singapore 550512", "New Delhi - 110058", "Shibuya-ku, Tokyo 150-0022"
POSTCODE_FIRST_LINE = regex.compile(
    r"(?m)^[ \t]*(?P<v>\d{5}|\d{4}[ ]?[A-Z]{2}|\d{2}-\d{3}|\d{3}-\d{4}|\d{4})[ \t]+(?P<city>\p{Lu}[\p{L}'-]+"
    r"(?:[ \t-]+\p{Lu}?[\p{L}'-]+){0,2})[ \t]*(?:\(\p{L}{2}\))?[ \t]*$")
POSTCODE_LAST_LINE = regex.compile(
    r"(?m)^[ \t]*(?P<city>\p{Lu}[\p{L}'.-]+(?:[ \t,]+\p{Lu}?[\p{L}'.-]+){0,4})[ \t]*[-–,]?[ \t]*"
    r"(?P<v>[1-9]\d{5}|\d{3}-\d{4}|\d{5}-\d{3}|\d{5}|\d{4})[ \t]*$")
# first words of a line that are labels or counts, not a city: "Total 12345", "Build 20240", "Room 10112"
NOT_CITY_WORDS = frozenset({"total", "build", "version", "room", "chapter", "page", "ward", "bed", "floor", "level",
                            "gate", "dock", "tickets", "ticket", "sold", "budget", "year", "item", "items", "qty",
                            "order", "invoice", "ref", "case", "step", "phase", "grade", "class", "block", "lot", "unit",
                            "suite", "apt", "flat", "score", "points", "id", "no", "number", "amount", "balance",
                            "batch", "part", "serial", "model", "code", "pin", "account", "policy", "claim"})


def postal_line_spans(text: str) -> Iterator[Span]:
    """The postcode on a postal block's city line; the line before must look like part of an address (a digit, or a
    street or unit word), so "2024 Budget" or "Tickets sold 48213" on their own are left alone."""
    if "\n" not in text:
        return
    for rx in (POSTCODE_FIRST_LINE, POSTCODE_LAST_LINE):
        for m in rx.finditer(text):
            city = m.group("city")
            first = regex.split(r"[ \t,-]+", city)[0].lower()
            if first in NOT_CITY_WORDS or first in english_stop_words() or regex.fullmatch(r"(?:19|20)\d\d", m.group("v")):
                continue
            end = m.start()
            while end and text[end - 1].isspace():
                end -= 1  # the last non-blank line before the match
            before = text[text.rfind("\n", 0, end) + 1:end]
            if before and (has_digit(before) or _STREET_LINE.search(before) or (
                    len(m.group("v")) == 6 and regex.fullmatch(r"[ \t]*\p{Lu}[\p{L}'.-]+(?:[ \t]+\p{Lu}[\p{L}'.-]+)?,?[ \t]*", before))):
                # (an Indian PIN also after a locality line: "Malleswaram\nBengaluru 560003")
                yield Span(*m.span("v"), "POSTCODE", 0.7)
POSTCODE_CONTEXT = ("zip", "postcode", "post code", "postal", "plz", "code postal", "pin code", "cap ", "eircode", "cp ",
                    "kode pos",
                    "c.p.", "cep ", "cep:", "pincode", "pin-code", "código postal", "postleitzahl")
US_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|IA|IL|IN|KS|KY|LA|MA|MD|ME|MI|MN|MO|MS|MT|NC|ND|NE|NH|NJ|NM|NV|NY|OH|OK|"
             "OR|PA|RI|SC|SD|TN|TX|UT|VA|VT|WA|WI|WV|WY|DC|PR|GU|VI|AS|MP")
# a state code before the number ("Boston, MA 02118"); Idaho only after "City,": "Product ID 88213"; not "PN 100-0387"
_STATE_BEFORE = regex.compile(r"\b(?:" + US_STATES + r")[ \t]*$|,[ \t]*ID[ \t]*$")


# what comes before a house number belongs to the address: "Unit 5/12 Smith St", "Flat 402, Shanti Apartments,
# MG Road", "Plot 14, Admiralty Way"
_LEAD_UNIT = (r"\b(?:flat|apt|apartment|unit|suite|plot|house|shop|lot|villa|door|level|floor|block|blk|bldg|building|"
              r"tower|wing)\.?(?:[ \t]*(?:no|#)\.?)?[ \t]*")
_LEAD_NUM = r"(?:\d{1,4}[a-z]?[ \t]*[/,][ \t]*|\d{1,4}[a-z]?,?[ \t]+)"
_ADDR_LEAD = regex.compile(r"(?i:(?:" + _LEAD_UNIT + _LEAD_NUM + r")?" + _LEAD_UNIT + _LEAD_NUM + r"?|\d{1,4}/|"
                           r"\b\d{1,3}(?:st|nd|rd|th)[ \t]+(?:floor|fl\.?)[ \t]*,?[ \t]*)$")  # "5th Floor, 742 …"


# what an address match may still be followed by on its line: up to three short comma-separated parts (locality,
# district, city) ending in a postcode, and the city after a postcode that comes first ("…, 3rd Cross, Indiranagar 2nd
# Stage, Bengaluru 560038", "… m. 109, 00-514 Warszawa")
_TAIL_WORD = r"(?:[\p{Lu}\d][\p{L}\d.'/-]*|\p{Ll}{1,3}\.)"  # "Indiranagar", "2nd", "m." (not "it", "then")
_ADDR_TAIL = regex.compile(
    r"(?:[ \t]*,?[ \t]*(?:" + _TAIL_WORD + r"[ \t]){0,3}" + _TAIL_WORD + r"[ \t]*,){0,3}[ \t]*(?:\p{Lu}[\p{L}-]+[ \t]+)?"
    r"(?:\d{6}|\d{5}|\d{2}-\d{3}|\d{3}[ ]\d{2}|[A-Z]\d[A-Z][ ]?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?[ ]\d[A-Z]{2})(?![\w-])"
    r"(?:[ \t]+\p{Lu}[\p{L}-]+(?:[ \t]+\p{Lu}[\p{L}-]+)?)?")


_STREET_LINE = regex.compile(r"(?i)\b(?:" + _STREET_WORDS + r"|" + _GERMANIC + r"|" + _ROMANCE + r"|" + _INDIAN
                             + r"|bairro|colonia|col\.|barangay|blok|jalan|chome|ku)\b")


def address_spans(text: str) -> Iterator[Span]:
    for rx in ADDRESS_RULES:
        for m in rx.finditer(text):
            value = m.group().rstrip(" \t,")
            lead = _ADDR_LEAD.search(text, max(0, m.start() - 40), m.start())
            start = lead.start() if lead else m.start()
            end = m.start() + len(value)
            if tail := _ADDR_TAIL.match(text, end):
                end = tail.end()
            yield Span(start, end, "STREET_ADDRESS", 0.8)
    for rx, score in POSTCODE_RULES:
        for m in rx.finditer(text):
            s = score
            if _context_before(text, m.start(), POSTCODE_CONTEXT):
                s += 0.6
            elif score < 0.3 and _STATE_BEFORE.search(text[max(0, m.start() - 6):m.start()]):
                s += 0.5  # "Boston, MA 02118"
            yield Span(m.start(), m.end(), "POSTCODE", min(s, 1.0))
    for rx in (POSTCODE_AFTER_STREET, INDIAN_PIN):
        for m in rx.finditer(text):
            yield Span(*m.span("v"), "POSTCODE", 0.7)
    yield from postal_line_spans(text)


# -------------------------------------------------------------------------------------------- birth dates
_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
           r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|"
           # French, German, Spanish, Italian, Dutch, Portuguese: "4 mars 1981", "12. März 1975", "3 de mayo de 1990"
           r"janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|décembre|"
           r"januar|jänner|februar|märz|maerz|juni|juli|oktober|dezember|enero|febrero|marzo|abril|mayo|junio|julio|"
           r"agosto|septiembre|setiembre|octubre|noviembre|diciembre|gennaio|febbraio|aprile|maggio|giugno|luglio|"
           r"settembre|ottobre|dicembre|januari|februari|maart|mei|augustus|oktober|janeiro|fevereiro|março|maio|"
           r"junho|julho|setembro|outubro|novembro|dezembro)\.?")
DATE_VALUE = (r"(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}(?:st|nd|rd|th|er|º|\.)?\s+(?:of\s+|de\s+)?(?i:" + _MONTHS +
              r"),?\s+(?:de\s+)?\d{2,4}|"
              r"\d{1,2}[-/.](?i:" + _MONTHS + r")[-/.]\d{2,4}|"  # "12-Aug-1979", "03/MAR/85"
              r"(?i:" + _MONTHS + r")\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{2,4})")
DOB_RULE = regex.compile(r"(?i:\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|birthday|born(?: on| in)?|"
                         r"geburtsdatum|geboren(?: am)?|geb\.|né(?:e)? le|fecha de nacimiento|nacid[oa] el|nat[oa] il|"
                         r"nascid[oa] em|data di nascita|date de naissance|data de nascimento|geboortedatum)(?!\w))[^\n\d]{0,12}?"
                         r"(?P<v>" + DATE_VALUE + r")")
DATE_RULE = regex.compile(r"(?<![\w/.-])" + DATE_VALUE + r"(?![\w/-])")


# Call transcripts spell dates and numbers out: "march third nineteen eighty-two", "four oh four, five five five"
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_TEENS = "ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_ORDINALS = ("first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|"
             "fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth")
_DAY_WORDS = r"(?:(?:twenty|thirty)[ -](?:" + _ORDINALS + r")|" + _ORDINALS + r")"  # digits: DATE_RULE's
_YEAR_WORDS = (r"(?:(?:nineteen|twenty)[ -](?:(?:" + _TENS + r")(?:[ -](?:" + _UNITS + r"))?|" + _TEENS + r"|oh[ -](?:"
               + _UNITS + r"))|two thousand(?:[ -](?:and[ -])?(?:(?:" + _TENS + r")(?:[ -](?:" + _UNITS + r"))?|" + _TEENS
               + r"|" + _UNITS + r"))?)")
SPOKEN_DATE = regex.compile(
    r"(?i:\b(?:" + _MONTHS + r"[ \t]+(?:the[ \t]+)?" + _DAY_WORDS + r"|(?:the[ \t]+)?" + _DAY_WORDS
    + r"[ \t]+of[ \t]+" + _MONTHS + r")(?:,?[ \t]+(?:" + _YEAR_WORDS + r"))?\b)")
SPOKEN_DOB_CUE = regex.compile(r"(?i:\b(?:dob|date of birth|birth ?date|birthday|born)\b)[^\n]{0,40}$")
_DIGIT_WORD = {"zero": 1, "oh": 1, "one": 1, "two": 1, "three": 1, "four": 1, "five": 1, "six": 1, "seven": 1,
               "eight": 1, "nine": 1, "double": 1, "triple": 2}  # "double five" is two digits, "double" adds one
SPOKEN_DIGITS = regex.compile(r"(?i:\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double|triple)"
                              r"(?:[ \t]*[,-]?[ \t]*(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double|"
                              r"triple))+\b)")
SPOKEN_CUES = (("US_SSN", regex.compile(r"(?i:\b(?:ssn|social(?: security)?)\b)")),
               ("CREDIT_CARD", regex.compile(r"(?i:\bcard\b)")),
               ("POSTCODE", regex.compile(r"(?i:\b(?:zip|post ?code|postal code)\b)")),
               ("US_BANK_NUMBER", regex.compile(r"(?i:\baccount\b)")),
               ("PHONE_NUMBER", regex.compile(r"(?i:\b(?:phone|mobile|cell|call|reach|contact|ring|tel)\b)")))


_NUM_WORD = r"(?:" + _UNITS + "|" + _TEENS + "|" + _TENS + r"|hundred|oh|zero)"
# "I live at twelve oak street apartment four b": a spelled-out house number after an address cue
SPOKEN_ADDRESS = regex.compile(
    r"(?i:\b(?:live[sd]?|living|staying|located|based)[ \t]+at|\baddress[ \t]+is|\b(?:ship|deliver|send|mail)"
    r"(?:ped|ed|s)?[ \t]+(?:it[ \t]+)?to|\bmoved[ \t]+to)[ \t]+(?P<v>" + _NUM_WORD + r"(?:[ \t-]+" + _NUM_WORD
    + r"){0,4}[ \t]+(?:(?!(?i:" + _LOWER_STOP + r")\b)[\p{L}'-]+[ \t]+){1,3}(?i:" + _STREET_PLAIN + r")\b"
    r"(?:[ \t]+(?i:apartment|apt|unit|suite|flat)[ \t]+(?:" + _NUM_WORD + r"(?:[ \t-]+" + _NUM_WORD
    + r")*|\w{1,4})(?:[ \t]+[a-z]\b)?)?)")


# number words of the languages call centres transcribe: a run of five or more after a cue is a spoken number
# ("Null eins sieben eins, vier vier zwei", "Zéro six, quarante-sept, douze", "Tre tre nove, quattro quattro uno")
_NUMBER_WORDS = (
    "null|eins|ein|zwei|zwo|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|\\p{L}*zehn|\\p{L}*zig|dreißig|hundert|"
    "zéro|un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize|vingts?|trente|"
    "quarante|cinquante|soixante|cent|"
    "cero|uno|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|once|doce|trece|catorce|quince|dieci\\p{L}+|veint\\p{L}*|"
    "treinta|cuarenta|cincuenta|sesenta|setenta|ochenta|noventa|cien|ciento|"
    "zero|due|tre|quattro|cinque|sei|sette|otto|nove|dieci|undici|dodici|\\p{L}*dici|venti|trenta|quaranta|cinquanta|"
    "sessanta|settanta|ottanta|novanta|cento|"
    "um|uma|dois|duas|três|quatro|sete|oito|nove|dez|"
    "nul|een|één|twee|drie|vijf|zes|zeven|negen|tien|twaalf")
_NUMBER_WORD = r"(?i:(?:" + _NUMBER_WORDS + r")(?:-(?:et-)?(?:" + _NUMBER_WORDS + r"))*)"
SPOKEN_FOREIGN_DIGITS = regex.compile(
    r"(?<![\p{L}-])(?:\p{Lu}[ \t]+){0,4}" + _NUMBER_WORD + r"(?:(?:[ \t]*,?[ \t]+|[ \t]*-[ \t]*)(?:(?i:et|y|e|und|en)[ \t]+)?(?:" + _NUMBER_WORD
    + r"|\p{Lu})(?![\p{L}-])){4,}")
SPOKEN_FOREIGN_CUE = regex.compile(
    r"(?i:\b(?:telefon\p{L}*|handy\p{L}*|rufnummer|nummer|erreichen|t[ée]l[ée]phone|num[ée]ro|portable|joindre|"
    r"tel[ée]fono|m[óo]vil|celular|cellulare|telem[óo]vel|telefoonnummer|kundennummer|contrat|p[óo]liza|polizza|dni|nie|"
    r"codice|fiscale|cliente|client|kunden\p{L}*|ausweis\p{L}*|documento|carteira|number|phone)\b)")
_PHONE_CUE_WORDS = regex.compile(r"(?i:telefon|handy|rufnummer|erreichen|t[ée]l[ée]phone|portable|joindre|tel[ée]fono|"
                                 r"m[óo]vil|celular|cellulare|telem[óo]vel|telefoon|phone|ruf)")
# an e-mail address read aloud: "gwen dot marsh seventy seven at gmail dot com", "f Punkt brunnhuber at gmx Punkt de",
# "elodie point marchand tiret roux arobase orange point fr", "nacho punto beltran arroba hotmail punto es"
_SPOKEN_DOT = r"(?:dot|punkt|point|punto|ponto|kropka|punt)"
SPOKEN_EMAIL = regex.compile(
    r"(?i)[ \t]+(?:at|arobase|arroba|chiocciola|klammeraffe|małpa|apenstaartje)"
    r"[ \t]+(?P<domain>[\p{L}\d-]+(?:[ \t]+" + _SPOKEN_DOT + r"[ \t]+[\p{L}]{2,12}){1,3})\b")
_EMAIL_STOP = frozenset({"email", "e-mail", "mail", "address", "adresse", "correo", "electrónico", "electronico", "is",
                         "es", "est", "ist", "è", "é", "still", "my", "mi", "mon", "ma", "mein", "meine", "la", "le", "el",
                         "die", "der", "an", "à", "a", "bitte", "please", "it's", "its", "the", "to", "send", "it", "at",
                         "sì", "si", "oui", "ja", "yes", "yeah", "yep", "sure", "nein", "no", "non", "ok", "okay",
                         "registered", "id", "em", "o", "il", "lo", "de", "du", "van", "naar", "op", "sim"})


SPOKEN_TLDS = frozenset({"com", "net", "org", "edu", "gov", "io", "co", "uk", "de", "fr", "es", "it", "pt", "nl", "pl",
                         "be", "ch", "at", "ie", "se", "no", "dk", "fi", "in", "br", "mx", "ca", "au", "nz", "za", "ng",
                         "ke", "jp", "cn", "ru", "info", "biz", "eu", "me"})


def spoken_email_spans(text: str) -> Iterator[Span]:
    """An address read aloud: its domain ends in a dot word and a top-level domain ("gmail dot com", "gmx Punkt de"),
    and the local part runs back to the first word that is no part of it ("email is", "bitte an")."""
    for m in SPOKEN_EMAIL.finditer(text):
        labels = regex.split(r"(?i)[ \t]+" + _SPOKEN_DOT + r"[ \t]+", m.group("domain"))
        if labels[-1].lower() not in SPOKEN_TLDS or labels[0].lower() in english_stop_words() or (
                labels[0].lower() in _EMAIL_STOP):
            continue  # "at the point charge", "at some point President"
        # the local part: up to eight words back on the same line, to the first that is no part of it
        start = max(text.rfind("\n", 0, m.start()) + 1, m.start() - 80,
                    *(text.rfind(p, 0, m.start()) + 1 for p in (": ", "? ", "! ", ". ", ", ", "; ")))
        words = list(regex.finditer(r"[\p{L}\d'-]+", text, pos=start, endpos=m.start()))[-8:]
        k = len(words)
        while k and words[k - 1].group().lower() not in _EMAIL_STOP:
            k -= 1
        kept = words[k:]
        if not kept or not regex.search(r"(?i)\b(?:dot|punkt|point|punto|ponto|underscore|tiret|trait|bindestrich|guion|"
                                        r"gui[oó]n|dash|hyphen|trattino)\b", text[kept[0].start():m.end("domain")]):
            continue
        yield Span(kept[0].start(), m.end("domain"), "EMAIL_ADDRESS", 0.85)


# call-centre transcripts answer on the next line: "agent and the first line of the address\ncaller flat two forty
# one canal street"; a spoken (or digit) house number, one to three words and a street word, after an address word
_SPOKEN_HOUSE = r"(?:\d{1,4}[a-z]?|" + _NUM_WORD + r"(?:[ \t-]+" + _NUM_WORD + r"){0,4})"
SPOKEN_ADDRESS_LINE = regex.compile(
    r"(?i)(?<![\p{L}\d])(?P<v>(?:(?:flat|apartment|apt|unit)[ \t]+(?:[a-z]|" + _SPOKEN_HOUSE + r")[ \t]+)?" + _SPOKEN_HOUSE
    + r"[ \t]+(?:(?!(?:" + _LOWER_STOP + r")\b)[\p{L}'-]+[ \t]+){1,3}(?:" + _STREET_PLAIN + r"))\b")
SPOKEN_ADDRESS_CUE = regex.compile(r"(?i:\b(?:address|home|live|lives|living|moved|property|deliver|delivery|ship|"
                                   r"send|navigating|navigate|flat)\b)")
# a UK postcode read out: "m fourteen five r t", "s e five nine e n", "b s eight four l g"
_SPOKEN_PC_NUM = r"(?:" + _UNITS + "|" + _TEENS + "|" + _TENS + r"|zero|oh)"
SPOKEN_POSTCODE = regex.compile(r"(?i)(?<![\p{L}\d])(?P<v>[a-z](?:[ \t]+[a-z])?(?:[ \t]+" + _SPOKEN_PC_NUM + r"){1,2}"
                                r"(?:[ \t]+[a-z])?[ \t]+" + _SPOKEN_PC_NUM + r"(?:[ \t]+[a-z]){2})(?![\p{L}\d])")
SPOKEN_POSTCODE_CUE = regex.compile(r"(?i:\b(?:post ?code|postal code|zip(?: code)?|eircode)\b)")
_DIGIT_WORDS = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
# letters and digits read out after an id's name: "customer number … c c four four one nine zero seven"
SPOKEN_ALNUM = regex.compile(r"(?i)(?<![\p{L}\d])(?P<v>(?:[a-z]|" + _DIGIT_WORDS + r")(?:[ \t]+(?:[a-z]|" + _DIGIT_WORDS
                             + r")){5,15})(?![\p{L}\d])")
SPOKEN_ID_CUE = regex.compile(r"(?i:\b(?:customer|employee|member|account|policy|reference|staff|patient|client|"
                              r"membership|payroll)[ \t]+(?:number|no|id)\b|\b(?:mac|ip)(?:[ \t]+address)?\b)")
_SPOKEN_OCTET = r"(?:" + _DIGIT_WORDS + r"[ \t]+){0,2}" + _DIGIT_WORDS  # "one four nine"
SPOKEN_IP = regex.compile(r"(?i)(?<![\p{L}\d])(?P<v>" + _SPOKEN_OCTET + r"(?:[ \t]+dot[ \t]+" + _SPOKEN_OCTET
                          + r"){3})(?![\p{L}\d])")
# a name spelled out in lower case after "that's", "spelled": "donovan pryce p r y c e", "d e l a c r o i x hyphen o w e n s"
SPELLED_LOWER = regex.compile(r"(?i:\b(?:spell(?:ed|t|ing)?|that['’]?s|that is|its|it['’]s|surname|name)\b[^\n]{0,40}?"
                              r"(?:\n[^\n]{0,12}?)?)"
                              r"(?<![\p{L}\d])(?P<v>[a-z](?:[ ][a-z]){2,}(?:[ ]+(?:hyphen|dash)[ ]+[a-z](?:[ ][a-z])+)?)"
                              r"(?![\p{L}\d])")


def _cue_before(cue: regex.Pattern, text: str, pos: int, reach: int = 80) -> bool:
    """The cue is in the `reach` characters before `pos`, this line or the line before (a question and its answer)."""
    return bool(cue.search(text, max(0, pos - reach), pos))


# lower-case chat and speech-to-text name people after the words that address or mention them: "tell sam and priya",
# "message from imogen", "call doctor okonkwo", "so proud of u amaka", "brilliant rajeev", "my names kasia"
LOWER_NAME_CUE = regex.compile(
    r"(?<![\p{L}'’])(?P<cue>tell|told|ask|asked|message from|text from|msg from|texts? from|call|calling|ring|text|texted|"
    r"thanks|thank you|thx|ty|proud of (?:u|you)|miss (?:u|you)|love (?:u|you)|hi|hey|hiya|hello|yo|and|with|"
    r"my names|my name is|doctor|dr|brilliant|lovely|cheers|sorry|bye|congrats|congratulations)[ \t,]+"
    r"(?P<v>\p{Ll}[\p{Ll}'-]{2,})(?![\p{L}\d@_])")
_WEAK_LOWER_CUES = frozenset({"and", "with", "call", "calling", "ring", "text", "sorry", "bye", "hi", "hey", "hello",
                              "yo", "hiya"})
_THANKS = frozenset({"thanks", "thank you", "thx", "ty"})  # "thanks, gona try that": a name only ends the phrase
LOWER_SPEAKER = regex.compile(r"(?m)^(?P<v>\p{Ll}{3,15}):[ \t]")


def lower_name_spans(text: str) -> Iterator[Span]:
    """Names in lower-case text after a word that addresses or mentions someone: a known first name that is no
    everyday word, or (after a strong cue) a word rare in English and in the other languages."""
    if sum(c.isupper() for c in text) * 20 > sum(c.isalpha() for c in text):
        return  # cased text: the NER model and the capitalised-name rules see these names
    first = name_lists()[0]
    for m in LOWER_NAME_CUE.finditer(text, overlapped=True):
        word = m.group("v").rstrip("'-")
        if word in english_stop_words() or word in COMMON_WORDS or word in SALUTATION_NOUNS:
            continue
        known = word in first and zipf(word) < 4.0
        cue = m.group("cue").lower()
        rare = (cue not in _WEAK_LOWER_CUES and zipf(word) < RARE_ZIPF and not foreign_word(word, 3.5)
                and not regex.search(r"(?:ing|ed|ly|s)$", word) and (
                    cue not in _THANKS or regex.match(r"[ \t]*(?:[,.!?\n]|\p{Extended_Pictographic}|$)", text[m.end():])))
        if known or rare:
            yield Span(m.start("v"), m.start("v") + len(word), "PERSON", 0.6)
    for m in LOWER_SPEAKER.finditer(text):
        if m.group("v") in first and zipf(m.group("v")) < 4.0:
            yield Span(*m.span("v"), "PERSON", 0.6)


def spoken_spans(text: str) -> Iterator[Span]:
    """Dates and numbers spelled out the way speech-to-text writes them; a number needs a cue word before it."""
    for m in SPOKEN_ADDRESS.finditer(text):
        yield Span(*m.span("v"), "STREET_ADDRESS", 0.8)
    if text.count(" ") >= 0.9 * sum(c.isupper() for c in text) * 4:  # lower-case text: speech-to-text, chat
        for m in SPOKEN_ADDRESS_LINE.finditer(text):
            if _cue_before(SPOKEN_ADDRESS_CUE, text, m.start()):
                yield Span(*m.span("v"), "STREET_ADDRESS", 0.75)
        for m in SPOKEN_POSTCODE.finditer(text):
            if _cue_before(SPOKEN_POSTCODE_CUE, text, m.start(), 60):
                yield Span(*m.span("v"), "POSTCODE", 0.8)
        for m in SPOKEN_IP.finditer(text):
            yield Span(*m.span("v"), "IP_ADDRESS", 0.8)
        for m in SPOKEN_ALNUM.finditer(text):
            words = m.group("v").split()
            if sum(len(w) > 1 for w in words) >= 4 and (cue := SPOKEN_ID_CUE.search(text, max(0, m.start() - 80),
                                                                                       m.start())):
                etype = "MAC_ADDRESS" if cue.group().lower().startswith("mac") else "ID_NUMBER"
                yield Span(*m.span("v"), etype, 0.8)
        for m in SPELLED_LOWER.finditer(text):
            yield Span(*m.span("v"), "PERSON", 0.7)
    for m in SPOKEN_DATE.finditer(text):
        dob = SPOKEN_DOB_CUE.search(text[max(0, m.start() - 60):m.start()])
        yield Span(*m.span(), "DATE_OF_BIRTH" if dob else "DATE_TIME", 0.9 if dob else 0.5)
    for m in SPOKEN_DIGITS.finditer(text):
        n = sum(_DIGIT_WORD[w.lower()] for w in regex.findall(r"\p{L}+", m.group()))
        before = text[max(0, m.start() - 40):m.start()]
        cues = [(hits[-1].end(), etype) for etype, cue in SPOKEN_CUES if (hits := list(cue.finditer(before)))]
        if not cues and regex.search(r"(?i:\bnumber\b)", before):
            cues = [(0, "PHONE_NUMBER")]  # "the number is …": a bare "number" only when nothing says more
        if cues:  # the nearest cue says what it is: "my zip is …, and my phone is …", "card number …"
            etype = max(cues)[1]
            if n >= 7 or etype == "POSTCODE" and n >= 5:
                yield Span(*m.span(), etype, 0.8)
    for m in SPOKEN_FOREIGN_DIGITS.finditer(text):
        before = text[max(0, m.start() - 100):m.start()]
        if SPOKEN_FOREIGN_CUE.search(before):  # a phone word anywhere in the question makes it a phone number
            yield Span(*m.span(), "PHONE_NUMBER" if _PHONE_CUE_WORDS.search(before) else "ID_NUMBER", 0.8)
    yield from spoken_email_spans(text)


# a day and month without a year is a date only after a word of when ("admitted 02/03", "seen on 5/2"); "take 1/2
# tablet", "scored 3/5" are fractions
SHORT_DATE = regex.compile(
    r"(?i:\b(?:admitted|admission|discharged|seen|visited|visit|on|since|until|till|dated|due|appt|appointment|"
    r"surgery|dos|started|stopped|returned|scheduled(?:[ \t]+for)?|born|arrived|departed|left)[ \t]+(?:on[ \t]+)?)"
    r"(?P<v>(?:0?[1-9]|[12]\d|3[01])/(?:0?[1-9]|[12]\d|3[01]))(?![\w/]|[ \t]+(?i:tabs?|tablets?|cups?|doses?|of|mg|"
    r"dollars?|euros?|pounds?|points?|stars?)\b|[ \t]*%)")


def date_spans(text: str) -> Iterator[Span]:
    for m in DOB_RULE.finditer(text):
        yield Span(*m.span("v"), "DATE_OF_BIRTH", 0.95)
    for m in DATE_RULE.finditer(text):
        yield Span(*m.span(), "DATE_TIME", 0.5)
    for m in SHORT_DATE.finditer(text):
        if min(int(x) for x in m.group("v").split("/")) <= 12:
            yield Span(*m.span("v"), "DATE_TIME", 0.5)


# ---------------------------------------------------------------------------------------------------- names
TITLES = (r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Dra|Prof|Profa|Sir|Dame|Rev|Fr|Sr|Sra|Srta|Herr|Frau|Mme|Mlle|M|Dott|Dott\.ssa|Sig|Sig\.ra|"
          r"Ing|Dipl\.-Ing|Mag|Shri|Smt|Kumari|Sri|Mister|Madam|Don|Doña|Dña|Dª|"
          r"Doctor|Professor|Nurse|Capt|Sgt|Lt|Col|Hon|Judge|Officer|Detective|Pastor|Rabbi|Imam|"
          r"[Dd]e heer|Dhr|[Mm]evrouw|Mevr|Mw)")
_CAP = r"\p{Lu}[\p{Ll}'’-]*\p{Ll}[\p{L}'’-]*"  # "Anna", "O'Neil", "McDonald"
_INITIAL = r"\p{Lu}\."
TITLE_NAME = regex.compile(r"\b" + TITLES + r"\.?[ \t]+(?:(?:" + _CAP + r"|" + _INITIAL + r")[ \t]+){0,2}" + _CAP
                           + r"(?:-" + _CAP + r")?|\b(?i:" + TITLES + r")\.?[ \t]+(?:\p{Lu}\.?[ \t]+)?\p{Lu}{2,}(?:[ \t-]\p{Lu}{2,})?\b")
_NAME_TAIL = (r"(?<!\w)(?:" + _CAP + r"|\p{Lu}{2,})(?:[ \t]+(?:" + _INITIAL + r"[ \t]+)?(?:" + _CAP + r"|\p{Lu}{2,}))"
              r"{0,3}(?!\w)")
# "my name is" in the languages customers write in (also Hinglish, Nordic, Vietnamese, Indonesian, Polish, Turkish);
# the NER model reads it as part of the name (`redact.SELF_INTRO`)
SELF_INTRO_PHRASES = (r"(?:my name is|meu nome é|o meu nome é|mi nombre es|me llamo|je m['’]appelle|mon nom est|"
                      r"mein name ist|ich heiße|ich heisse|mijn naam is|ik heet|il mio nome è|mi chiamo|mera na+m|"
                      r"jag heter|jeg heter|jeg hedder|mitt namn är|mit+ navn er|nimeni on|tôi là|tên tôi là|tôi tên là|"
                      r"nama saya|nama aku|nazywam się|mam na imię|benim adım)")
STRONG_NAME_CUE = regex.compile(
    r"(?<=(?i:\b(?:my|his|her|their|our|your|\p{L}+['’]s)[ \t]+name(?:[ \t]+is|['’]s)|\bmy name is|\bname['’]s|"
    r"\bit['’]?s me,|\b(?:thanks|thx|thnx|cheers|regards|love)[ \t]*[-–—]|\bname(?:\s+is)?:|\bi am|\bi'm|\bthis is|\bdear|\bregards,|\bthanks,|\bthank you,|"
    r"\bsincerely,|\bcheers,|\bbest,|\bbest wishes,|\bmerci,|\bdanke,|\bgracias,|\bgrazie,|\bobrigad[oa],|\bbedankt,|"
    r"\bdziękuję,|\blove,|\bbesos,|\bbeijos,|\bbisous,|\bbaci,|\babrazos,|\bhugs,|\bxoxo,|\bregards(?=[ \t]*\n)|"
    r"\bbest wishes(?=[ \t]*\n)|\bcustomer:|\bclient:|\bpatient:|\bsigned|\bfull name:?|"
    r"\bcardholder:?|\baccount holder:?|\bsigned by|\bwritten by|\bnamed|\bcalled|\b" + SELF_INTRO_PHRASES + r")"
    r"[ \t]*\n?[ \t]*)" + _NAME_TAIL)
WEAK_NAME_CUE = regex.compile(
    r"(?<=(?i:\bhi|\bhello|\bhey|\bfrom:|\bto:|\bcall|\bring|\btext|\bwhatsapp|\bmessage|\bdm|\bit['’]?s|"
    r"\bcontact|\bask for|\bspeak to|\bspoke (?:to|with)|"
    r"\bcc:|\battn:?|\bby|\bmet with|\bwith|\bfor|\band|\bask|\btell|\bthank|\bthanks)[ \t]*\n?[ \t]*)" + _NAME_TAIL)
LOWER_AFTER_CUE = regex.compile(STRONG_NAME_CUE.pattern.split(")" + _NAME_TAIL)[0] + r")(?<!\w)\p{Ll}[\p{Ll}'-]+(?:[ \t]+\p{Ll}[\p{Ll}'-]+)?")
WORD = regex.compile(r"[\p{L}'’-]+")
CONTRACTION = regex.compile(r"(?i:i|you|we|they|he|she|it|that|there|here|what|who|let)['’]\p{L}{1,2}$")
NAME_LOCALES = ("en_US", "en_GB", "en_IN", "en_IE", "en_NG", "de_DE", "fr_FR", "es_ES", "es_MX", "it_IT", "pt_BR",
                "pt_PT", "nl_NL", "pl_PL", "sv_SE", "da_DK", "no_NO", "fi_FI", "cs_CZ", "tr_TR", "id_ID", "ro_RO",
                "hu_HU", "hr_HR", "sk_SK", "en_PK", "yo_NG", "zu_ZA", "sw")


@lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names), lower-cased, from Faker's person providers; common words removed."""
    from spacy.lang.en.stop_words import STOP_WORDS

    first, last = raw_name_lists()
    common = set(STOP_WORDS) | COMMON_WORDS
    return frozenset(first - common), frozenset(last - common)


@lru_cache(maxsize=1)
def raw_name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """Faker's first and last names with the everyday words among them ("grace", "mark"): for strong cues only."""
    import importlib

    first: set[str] = set()
    last: set[str] = set()
    for loc in NAME_LOCALES:
        try:
            prov = importlib.import_module(f"faker.providers.person.{loc}").Provider
        except ImportError:
            continue
        for attr, bucket in (("first_names", first), ("first_names_male", first), ("first_names_female", first),
                             ("last_names", last)):
            for name in getattr(prov, attr, ()) or ():
                if isinstance(name, str) and name.isalpha() and len(name) > 1:
                    bucket.add(name.lower())
    return frozenset(first | census_first_names()), frozenset(last)


def name_word(word: str) -> bool:
    """On Faker's or the census name lists, everyday words among them included ("grace", "mark")."""
    firsts, lasts = raw_name_lists()
    low = word.lower()
    return low in firsts or low in lasts


def everyday_word(word: str, limit: float = 4.5) -> bool:
    """A common English word (Zipf ≥ `limit`) that no name list has: "Great", "Blood", "Invoice"."""
    return zipf(word.lower()) >= limit and not name_word(word)


CENSUS_MAX_ZIPF = 4.0  # a census first name this common in English is the word ("chance", "tiny", "echo")
CENSUS_MAX_FOREIGN_ZIPF = 4.5  # ... or in another language ("mai", "santo", "viva", "latina", "oma")


@lru_cache(maxsize=1)
def census_first_names() -> frozenset[str]:
    """The US census first names of the `names` package (5,163, 1990 survey) that are not everyday words. Faker
    samples its lists for realistic fakes, so many given names are missing there ("archie", "emerson", "kendrick",
    "macy"); a redactor needs the long tail."""
    import importlib.resources

    base = importlib.resources.files("names")
    out = set()
    for fn in ("dist.male.first", "dist.female.first"):
        for line in base.joinpath(fn).read_text(encoding="ascii").splitlines():
            name = line.split(maxsplit=1)[0].lower() if line.strip() else ""
            once = zipf.__wrapped__  # ~30,000 one-off lookups: kept out of the cache the redaction loop uses
            if len(name) > 2 and name.isalpha() and once(name) < CENSUS_MAX_ZIPF and all(
                    once(name, lang) < CENSUS_MAX_FOREIGN_ZIPF for lang in FOREIGN_LANGS):
                out.add(name)
    return frozenset(out)


@lru_cache(maxsize=1)
def lowercase_first_names() -> frozenset[str]:
    """English first names that are safe to take as a name even in lower case ("poor emily", "freddie laughs"):
    chat and tweets drop capitals, so a redactor that needs them misses names. Names that are also everyday
    English words ("frank", "drew", "sue", "penny") are left out: lower case, they are usually the word."""
    import importlib

    names: set[str] = set()
    for loc in ("en_US", "en_GB"):
        prov = importlib.import_module(f"faker.providers.person.{loc}").Provider
        for attr in ("first_names", "first_names_male", "first_names_female"):
            names |= {n.lower() for n in getattr(prov, attr, ()) or () if isinstance(n, str) and len(n) > 2}
    return frozenset((names & name_lists()[0]) - ENGLISH_WORD_NAMES)


ENGLISH_WORD_NAMES = frozenset({
    "amber", "angel", "brandy", "carol", "chad", "crystal", "daisy", "dale", "dean", "destiny", "diamond", "drew",
    "earl", "ebony", "frank", "gene", "glen", "grant", "hazel", "heather", "holly", "hunter", "jack", "jade", "jay",
    "jean", "josh", "kent", "lance", "levi", "mason", "melody", "mercedes", "mike", "misty", "nick", "parker",
    "patty", "penny", "raven", "rick", "robin", "ross", "sally", "sandy", "savannah", "sierra", "sue", "tom",
    "bobby", "cole", "reece", "warren", "wayne", "norman", "august", "sydney", "florence", "regina", "kiara",
})


# capitalised words that are also names in some locale: never a name on their own
COMMON_WORDS = {
    "edit", "meta", "peace", "line", "server", "sad", "jet", "brit", "nazi", "patient", "doctor", "nurse",
    "will", "may", "june", "july", "april", "august", "grace", "hope", "faith", "joy", "art", "bill", "mark", "max",
    "rose", "summer", "dawn", "sky", "page", "bob", "long", "young", "best", "bell", "hill", "white", "black",
    "brown", "green", "gray", "grey", "king", "price", "rich", "love", "day", "case", "ward", "wood", "woods",
    "field", "stone", "hall", "lane", "street", "park", "bank", "card", "cash", "sale", "sales", "service", "bay",
    "hunt", "shop", "law", "money", "rate", "fee", "cost", "new", "old", "good", "fine", "well", "just", "sun",
    "star", "moon", "rain", "snow", "winter", "spring", "fall", "autumn", "monday", "tuesday", "wednesday",
    "thursday", "friday", "saturday", "sunday", "january", "february", "march", "september", "october",
    "november", "december", "dear", "hi", "hello", "thanks", "regards", "team", "support", "help", "please",
    "sir", "madam", "customer", "client", "account", "number", "loan", "home",
    "phone", "email", "mail", "office", "paris", "london", "berlin", "china", "india", "france", "germany", "italy",
    "spain", "jordan", "israel", "georgia", "virginia", "carolina", "dakota", "washington", "lincoln", "jackson",
    "houston", "austin", "dallas", "denver", "phoenix", "orlando", "trump", "apple", "amazon", "google", "ford",
    "early", "late", "fast", "more", "most", "less", "little", "big", "short", "strong", "free", "glad", "happy",
    "blue", "red", "gold", "silver", "english", "french", "german", "god", "lord", "christ", "jesus", "son",
    "baby", "boy", "girl", "man", "men", "woman", "women", "lady", "guy", "guys", "queen", "prince",
    "major", "general", "miss", "mister", "sister", "brother", "mother", "father", "mom", "dad", "amen", "media",
    "power", "light", "cloud", "river", "ocean", "island", "mountain", "valley", "north", "south", "east", "west",
    "center", "central", "union", "state", "city", "county", "world", "life", "live", "music", "game", "games",
    "news", "video", "photo", "time", "year", "week", "month", "today", "tonight", "tomorrow", "night", "morning",
    "evening", "paul", "so", "ok", "okay", "yes", "no", "lol", "omg", "via", "van", "von", "de", "da", "del", "la",
    "le", "di", "du", "des", "el", "al", "bin", "ben", "mac", "don", "dan", "ken", "ray", "sol", "ali",
    "don't", "can", "kelly", "ash", "chase", "lee", "gay", "kind", "reading", "wells", "banks", "holmes",
    "marsh", "moss", "nash", "oakley", "sterling", "tan", "tate", "trust", "victory", "webb", "wolf", "york",
}


ORG_WORDS = frozenset({
    "inc", "ltd", "llc", "plc", "gmbh", "ag", "sa", "corp", "corporation", "company", "co", "group", "bank", "trust",
    "university", "college", "school", "hospital", "clinic", "institute", "foundation", "association", "council",
    "ministry", "department", "agency", "committee", "party", "club", "fc", "united", "records", "studios", "media",
    "news", "times", "post", "journal", "tv", "radio", "airlines", "airways", "motors", "systems", "labs",
    "technologies", "solutions", "services", "holdings", "partners", "capital", "fund", "church", "center",
    "centre", "society", "union", "league", "team", "band", "network", "government", "police", "army", "navy",
})
# other languages' firm and institution words, never part of a person's name ("Krankenkasse AOK Bayern")
FOREIGN_ORG_WORDS = frozenset({
    "krankenkasse", "versicherung", "sparkasse", "volksbank", "stiftung", "verein", "klinikum", "krankenhaus",
    "finanzamt", "gemeinde", "mbh", "ohg", "sarl", "srl", "kft", "banque", "banca", "banco", "caixa", "mutuelle",
    "assurance", "assurances", "seguros", "hôpital", "clinique", "ospedale", "universität", "université",
    "universidad", "università",
})
ORG_WORDS = ORG_WORDS | FOREIGN_ORG_WORDS


# Clinical notes name diseases, signs and scores after people ("Horner's syndrome", "McBurney sign", "Apgar
# score") and drugs by brand ("take Lexapro as prescribed", "Metformin 500 mg"): a word right before these is
# not the patient, and redacting it removes the medical content a hospital fine-tunes for. After a possessive
# only the unambiguous eponym nouns count: "Horner's syndrome" is not a person, "Anna's test results" is Anna's.
EPONYM_AFTER = regex.compile(
    r"(?:['’]s)?[ \t]+(?i:syndrome|sign|triad|palsy|phenomenon|reflex|maneuver|manoeuvre|criteria|classification|"
    r"lymphoma|sarcoma|theorem|equation|constant|distribution|method|law|principle|paradox|razor|rule)s?\b"
    r"|[ \t]+(?i:(?:rating[ \t]+)?scale|score|test|procedure|operation|fracture|ulcer|tumou?r|node|effect|"
    r"disease|technique|curve|index|algorithm|estimator|coefficient|inequality|transform|"
    r"hypothesis|matrix|diagram|plot|chart|filter|kernel|operator|lemma|conjecture|integral|polynomial|blur|"
    r"level|surface|space|series|function|measure|limit|bound|radius|gas|spectrum|statistics|"
    r"rice|tea|salt|sauce|cake|bread|pie|salad|soup|wine|cheese|coffee|oil|"
    r"pudding|dressing)s?\b")
# "the Django app", "our Marie Curie fellowship", "the Victoria line": after a determiner, a name before one of these
# nouns names a thing
NAMED_THING_AFTER = regex.compile(
    r"[ \t]+(?i:app|application|notebook|fellowship|scholarship|lab|laboratory|ward|line|framework|pipeline|award|"
    r"prize|medal|lecture|institute|foundation|building|wing|library|package|plugin|server|cluster|dashboard|"
    r"stadium|theatre|theater|hall|bridge|tunnel|airport|station|memorial|programme|program|model|project|image|"
    r"festival|conference|summit|parade|carnival|expo|marathon|container|repo|repository|service|instance|sdk|cli|"
    r"bot|extension|module|widget|template|integration)s?\b")
DETERMINER_BEFORE = regex.compile(r"(?i:\b(?:the|our|their|your|this|that|a|an))[ \t]+$")
POSSESSIVE_DISEASE = regex.compile(r"['’]s[ \t]+(?i:disease)\b")  # "Crohn's disease"; "Anna's disease" stays Anna
DRUG_AFTER = regex.compile(
    r"[ \t]*(?:\d+(?:[.,]\d+)?[ \t]?(?i:mg|mcg|µg|g|ml|units?|iu)\b|(?i:as prescribed|tablets?|capsules?|"
    r"injections?|infusions?|patch|inhaler|drops|ointment|cream)\b)")
DRUG_BEFORE = regex.compile(r"(?i:\bprescribed(?:[ \t]+(?:you|him|her|them|the[ \t]+patient))?)[ \t]+$")
# Generic drug names end in the WHO's INN stems ("adalimumab", "zidovudine", "omeprazole", "lisinopril"): a capitalised
# one-word "person" with such an ending is a drug, unless the name lists know the word ("April", "Valentine").
DRUG_STEM = regex.compile(
    r"(?i:mab|vudine|navir|previr|buvir|pril|sartan|olol|statin|prazole|cillin|mycin|floxacin|tidine|dipine|"
    r"gliptin|parin|tinib|ciclib|lukast|setron|triptan|dronate|glitazone|afil|cycline|conazole|semide|thiazide|"
    r"azepam|zolam|oxetine|triptyline|profen|coxib|olone|asone|formin|glinide|lamide|platin|rubicin|taxel)$")
# The same for clinical words built from Greek and Latin suffixes ("Cholecystectomy", "Bradycardia", "Tachycardic"
# at the start of a sentence); suffixes that end common names ("Paloma", "Thomas") are left out.
MEDICAL_SUFFIX = regex.compile(
    r"(?i:itis|osis|(?:an|glyc|kal|natr|lipid|cyth|ur|septic|leuk|isch|hypox|bacter|vir)a?emia|ectomy|otomy|ostomy|"
    r"oscopy|ography|algia|plasty|pathy|plegia|paresis|trophy|megaly|rrhoea|rrhea|cardic|cardia|pnoea|pnea|uria|"
    r"penia|cytosis|lysis|ptysis|emesis|phagia|phasia)$")


# Bank and assistant tickets name payment networks, currencies and voice assistants that the small model and
# the surname lists take for people ("accept Visa or Mastercard?", "SWIFT transfers", "GBP to AUD").
NOT_PERSON_WORDS = frozenset({
    "mon", "tue", "tues", "wed", "weds", "thu", "thur", "thurs", "fri", "sat", "sun", "kimlik",  # "my shift Tue"
    "montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag", "lundi", "mardi", "mercredi",
    "jeudi", "vendredi", "samedi", "dimanche", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado",
    "visa", "mastercard", "maestro", "amex", "discover", "paypal", "venmo", "zelle", "revolut", "monzo", "klarna",
    "afterpay", "clearpay", "alipay", "paytm", "gpay", "swift", "sepa", "bacs", "chaps", "siri", "cortana", "bixby",
    "alexa", "tel", "fax", "mob", "cell", "phone", "email", "urgent", "asap", "atm", "pin", "iban", "bic", "usd",
    "eur", "gbp", "aud", "cad", "chf", "jpy", "cny", "nzd", "sek", "nok", "dkk", "pln", "huf", "czk", "inr", "zar",
    "mxn", "brl", "hkd", "sgd", "rub", "btc", "eth", "ltc", "xmr",
    "bitcoin", "ethereum", "ether", "litecoin", "monero", "dogecoin", "solana", "cardano", "tether", "ripple",
    # parties of a contract and parts of a document: "the Licensee shall …", "Annex A.9"
    "licensee", "licensor", "lessee", "lessor", "borrower", "lender", "tenant", "landlord", "buyer", "seller",
    "purchaser", "vendor", "contractor", "subcontractor", "employer", "guarantor", "assignee", "assignor", "grantor",
    "grantee", "trustee", "mortgagor", "mortgagee", "licensees", "parties", "discloser", "recipient", "indemnitor",
    "annex", "appendix", "exhibit", "schedule", "clause", "section", "article", "addendum", "recital",
    # workplace software a ticket names like a colleague: "the Jira ticket", "a Confluence page"
    "jira", "confluence", "slack", "zoom", "salesforce", "servicenow", "workday", "sharepoint", "onedrive", "outlook",
    "excel", "powerpoint", "tableau", "jenkins", "kubernetes", "terraform", "ansible", "grafana", "kibana", "splunk",
    "zendesk", "hubspot", "trello", "asana", "notion", "figma", "bitbucket", "okta", "datadog", "snowflake",
    # platforms, games and makes that social posts capitalise like names
    "youtube", "wikipedia", "linux", "ubuntu", "android", "iphone", "ipad", "xbox", "playstation", "nintendo",
    "minecraft", "pokemon", "fortnite", "roblox", "netflix", "spotify", "instagram", "facebook", "twitter", "tiktok",
    "reddit", "whatsapp", "snapchat", "retweet", "ferrari", "lamborghini", "bugatti", "porsche", "maserati", "tesla",
    # chat interjections and shorthand
    "idk", "lol", "lmao", "omg", "umm", "um", "hmm", "hurray", "hooray", "yay", "wow", "ugh", "meh", "gawd", "thanku",
    "thankyou", "tysm", "smh", "tbh", "imo", "imho", "btw", "fyi", "lmk", "nvm", "haha", "hahaha", "lmfao", "rofl"})
# First and last words of place and venue names that also hold a first name: "san antonio", "Madison Square"
PLACE_FIRST = frozenset({"san", "santa", "los", "las", "st", "ste", "fort", "ft", "mount", "mt", "lake", "port", "são",
                         "sao", "santo", "ciudad", "villa", "vila", "puerto", "porto", "col", "colonia", "kota",
                         "kecamatan", "kec", "kelurahan", "kel", "kabupaten", "kab", "desa", "barangay", "brgy"})
PLACE_LAST = frozenset({"square", "park", "garden", "gardens", "mall", "mart", "plaza", "hall", "bridge", "tower",
                        "station", "airport", "beach", "bay", "valley", "stadium", "arena", "grill", "diner", "cafe",
                        "café", "bar", "pub", "pizza", "burger", "burgers", "kitchen", "restaurant", "hotel", "inn",
                        "motel", "steakhouse", "bistro", "tavern", "county", "city", "island", "heights", "falls",
                        "house", "palace", "museum", "observatory", "glacier", "alley", "academy"})
# place words that are also common surnames: after a first name (or a hyphenated Korean given name) they are one
# ("John Hall", "Ji-woo Park")
SURNAME_PLACES = frozenset({"hall", "park", "house"})
# A make before a model that is also a first name: "Skoda Octavia", "Toyota Camry", "Nissan Leaf"
CAR_MAKES = frozenset({"skoda", "toyota", "honda", "ford", "vw", "volkswagen", "nissan", "hyundai", "kia", "bmw", "audi",
                       "mercedes-benz", "renault", "peugeot", "citroen", "citroën", "fiat", "opel", "vauxhall", "mazda",
                       "subaru", "volvo", "tesla", "chevrolet", "chevy", "dodge", "jeep", "lexus", "dacia", "suzuki",
                       "mitsubishi", "porsche", "ferrari", "lamborghini", "maserati", "alfa", "cupra", "genesis"})
# Firms named after people: in finance and law texts these are the counterparty, not a person
FIRM_NAMES = frozenset({
    "morgan stanley", "goldman sachs", "charles schwab", "wells fargo", "merrill lynch", "jp morgan", "j.p. morgan",
    "raymond james", "edward jones", "dow jones", "lloyds", "barclays", "ernst young", "ernst & young",
    "johnson & johnson", "procter & gamble", "marks & spencer", "baker mckenzie", "clifford chance", "allen & overy",
    "jones day", "sidley austin", "latham & watkins", "kirkland & ellis", "slaughter and may", "linklaters",
    "freshfields", "hewlett packard", "thomson reuters", "thermo fisher", "eli lilly", "bristol myers squibb",
    "walt disney", "ralph lauren", "tommy hilfiger", "calvin klein", "estée lauder", "estee lauder", "hugo boss",
    "louis vuitton", "christian dior", "harley davidson", "rolls royce", "mercedes benz", "dolce & gabbana",
    "ben & jerry's", "deloitte", "mckinsey", "booz allen", "booz allen hamilton", "bain", "kpmg", "grant thornton",
    "baker tilly", "charles river", "john deere", "john lewis", "ted baker", "paul smith", "dr martens",
    "sherwin williams", "black & decker", "stanley black & decker", "smith & wesson", "johnson controls",
    "morgan lewis", "davis polk", "sullivan & cromwell", "cravath", "wachtell", "simpson thacher", "white & case",
    "norton rose", "herbert smith", "hogan lovells", "dla piper", "ashurst", "macquarie", "schroders",
    "fidelity", "vanguard", "t. rowe price", "t rowe price", "franklin templeton", "nomura", "rothschild",
    "lazard", "jefferies", "piper sandler", "evercore", "moelis", "houlihan lokey", "cantor fitzgerald"})


CAPS_NAME_CUE = regex.compile(
    r"(?i:\b(?:patient|pt|name|client|customer|member|user|caller|dear|hi|hello|hey|thanks|thank you|dr|mr|mrs|ms|"
    r"miss|mx|nurse|signed|regards|attn)\b)[\s.:,'’-]*$")


# "Saint Mary's Hospital", "John Hopkins Hospital", "Maria Pia Clinic": a name right before a capitalised institution
# word is part of the institution's name
INSTITUTION_AFTER = regex.compile(
    r"(?:['’]s)?[ \t]+(?:Hospital|Hospitals|Clinic|Medical|Health|Healthcare|Center|Centre|University|College|School|"
    r"Institute|Foundation|Pharmacy|Hotel|Church|Bank|Inc|Ltd|LLC|PLC|GmbH|Corp|Corporation|Company|Group|"
    r"Associates|Laboratories|Labs|Memorial|"
    # rooms, sites and firms named after someone: "the Lovelace Room", "Alexander Fleming Lab", "Tallis Logistics"
    r"Room|Rooms|Lab|Laboratory|Building|Suite|Library|Lounge|Theatre|Theater|Auditorium|Logistics|Solicitors|"
    r"Management|Team|Comms|Communications|Partners|Consulting|Holdings|Services|Systems|Solutions|Technologies|"
    r"Pharma|Capital|Insurance|Trust|Council|Committee|Department|Dept|Office|Store|Shop|Society|Association|Club|"
    r"Fund|Lecture|Prize|Award|Fellowship|Motors|Realty|Properties|Estates|Investments|Industries|Enterprises|"
    r"Ventures|Analytics|Software|Media|Studios|Airlines|Energy|Foods|Retail|Legal|Accountants|Architects|"
    r"Engineering|Construction|Transport|Freight|Shipping|Haulage|"
    r"B\.?V|N\.?V|Sp|Lda|S\.?A|SAS|SARL|S\.?L|S\.?p\.?A|S\.?r\.?l|AG|KG|Oy|AB|ApS|S\.?A\.?U)\b")


# "Hospital Juan de Dios", "Universidade Federal …", "Klinik Hirslanden": a name right after one is the institution's
INSTITUTION_BEFORE = regex.compile(
    r"(?:\b(?:Hospital|Hospitalario|Hôpital|Hopital|Ospedale|Klinik|Klinikum|Clinic|Clínica|Clinica|Policlinico|"
    r"Sanatorio|Universidad|Universidade|Università|Universität|Fundación|Fundação|Instituto|Istituto|Centro|"
    r"Centre|Center)(?:[ \t]+(?:de|do|da|das|dos|del|la|los|di|des|of|the|General|Geral|Universitario|"
    r"Universitário|Regional|Central|Federal|Nacional|Municipal|Memorial|Saint|San|Santa|São|St\.?))*"
    r"|\bUniversity[ \t]+of)[ \t]+$")
TITLED = regex.compile(TITLES + r"\.?[ \t]")
TITLED_BEFORE = regex.compile(r"\b" + TITLES + r"\.?[ \t]+$")


SPELLED = regex.compile(r"\p{Lu}(?:[ -]\p{Lu}){2,}(?:,?[ ]+(?i:hyphen|dash)[ ,]+\p{Lu}(?:[ -]\p{Lu})+)?")
SPELLED_LOWER_VALUE = regex.compile(r"[a-z](?:[ ][a-z]){2,}(?:[ ]+(?:hyphen|dash)[ ]+[a-z](?:[ ][a-z])+)?")


def not_a_name(text: str, start: int, end: int) -> bool:
    """A PERSON span that is a payment network, currency or assistant, part of an institution's name, or one short
    ALL-CAPS word that is no first name in mixed-case text (an acronym: "ATM", "KYC"; "Patient: ANN" stays a name,
    and so do short names in ALL-CAPS text)."""
    value = text[start:end]
    if SPELLED.fullmatch(value) or SPELLED_LOWER_VALUE.fullmatch(value):
        return False  # "M A R S H": a name spelled out letter by letter (each letter is an everyday "word")
    words = [w.lower() for w in regex.findall(r"[\p{L}']+", value)]
    if words and all(w in NOT_PERSON_WORDS for w in words) or any(w in FOREIGN_ORG_WORDS for w in words):
        return True  # "Youtube", "Krankenkasse AOK Bayern"
    if len(words) > 1 and words[0] in NOT_PERSON_WORDS and all(len(w) <= 2 for w in words[1:]):
        return True  # "Appendix B", "Schedule A"
    if regex.fullmatch(TITLES + r"\.?", value.strip()):
        return True  # "Mrs" alone: the title of a name the span lost
    if regex.search(r"[\p{So}\p{Sk}]", value):
        return True  # "Sana tu ❤ Reconecta": no name holds an emoji or symbol
    if words and all(everyday_word(w) for w in words):
        return True  # "Great Work", "Battle", "Girl": everyday words no name list has
    if regex.fullmatch(r"(?i)(?:basel|solvency|mifid|psd|ucits|crd|crr|emir)(?:[ \t]+(?:I{1,3}|IV|V|\d))?",
                       value) and (value[-1] in "IV0123456789" or regex.match(r"[ \t]+(?:I{1,3}|IV|V|\d)\b", text[end:])):
        return True  # "Basel III", "Solvency II": rulebooks, not people
    if " ".join(value.lower().split()) in FIRM_NAMES:
        return True  # "Morgan Stanley", "Goldman Sachs"
    if len(words) <= 3 and NAMED_THING_AFTER.match(text, end) and DETERMINER_BEFORE.search(text, max(0, start - 8), start):
        return True  # "the Django app", "our Marie Curie fellowship", "the Nightingale ward": a thing named after someone
    if words and all(regex.search(r"(\p{L})\1\1|(?:ha){3}|(?:ks){3}", w) for w in words) and not regex.search(
            r"\p{Ll}\p{Lu}", value):
        return True  # "Loooool", "Beyoooooond", "Hahahahhaha": no name holds a letter three times running (a
        # camel-case handle may: "iDubbbz")
    if len(words) > 1 and (words[0] in PLACE_FIRST or words[-1] in PLACE_LAST and not (
            words[-1] in SURNAME_PLACES and (words[0] in name_lists()[0] or "-" in value.split()[0])) or (
            words[0] in CAR_MAKES)) or (
            (before := regex.search(r"(\p{L}[\p{L}-]*)[ \t]+$", text[max(0, start - 20):start]))
            and before.group(1).lower() in CAR_MAKES):
        return True  # "san jose", "St Louis", "Madison Square", "Oliver Garden": a place or a venue
    if function_words_only(value):
        return True  # "Ihre", "Mit freundlichen Grüßen", "Teléfono"
    if words in (["bill"], ["ship"], ["sold"], ["deliver"], ["remit"]) and regex.match(r"(?i:[ \t]+to)[ \t]*:", text[end:]):
        return True  # "Bill to: …", "Ship To: …": an invoice's field label
    if regex.search(r"(?i)-(?:id|nr|no|nummer|number|code)$", value) or len(words) == 1 and regex.search(
            r"(?i)\p{L}{4}(?:nummer|kennzeichen|kennung|anschrift|adresse|datum|straße|strasse)$", value):
        return True  # "Steuer-ID", "Kunden-Nr", "Versicherungsnummer": the label of a number
    if (INSTITUTION_AFTER.match(text, end) or len(words) > 1 and INSTITUTION_AFTER.fullmatch(" " + value.split()[-1])
            or INSTITUTION_BEFORE.search(text[max(0, start - 60):start])):
        # "Mary Hospital": the name lists took the start of "St. Mary Hospital" for a first name; a titled name
        # stays a person ("Dr. Chen's Clinic" names Dr. Chen)
        return not (TITLED.match(value) or TITLED_BEFORE.search(text[max(0, start - 16):start]))
    if len(words) == 1 and value.isupper() and len(value) <= 4:
        letters = [c for c in text if c.isalpha()]
        if sum(c.isupper() for c in letters) >= 0.5 * len(letters):
            return False  # ALL-CAPS text: capitals say nothing
        # a short first name in capitals is mostly a clinical or banking acronym ("elevated AMY", "the NICU",
        # "GERD", "ANA titre"); it is a name after a person cue ("Patient: ANN", "Dear EVA", "Dr. IDA")
        return words[0] not in name_lists()[0] or not CAPS_NAME_CUE.search(text[max(0, start - 30):start])
    return False


def medical_term(text: str, start: int, end: int) -> bool:
    """The one-word span is an eponym or a drug by its context ("Cushing syndrome", "prescribed Prilosec"), not a
    person. A full or titled name stays a name whatever follows it ("Anna Kowalski's test", "Dr. Horner's")."""
    if any(c.isspace() for c in text[start:end]):
        return False
    value, (first, last) = text[start:end], name_lists()
    if (len(value) >= 6 and (DRUG_STEM.search(value) or MEDICAL_SUFFIX.search(value))
            and value.lower() not in first and value.lower() not in last):
        return True
    if POSSESSIVE_DISEASE.match(text, end):
        return value.lower() not in first
    return bool(EPONYM_AFTER.match(text, end) or DRUG_AFTER.match(text, end)
                or DRUG_BEFORE.search(text[max(0, start - 40):start]))


def person_like(text: str, cased: bool = True) -> bool:
    """1-3 alphabetic words, no organisation word, at least one a known first or last name (`cased=False`:
    any known name word; the text may also carry other characters)."""
    words = text.replace("’", "'").split()
    if not cased:
        words = [w for w in regex.findall(r"[\p{L}']+", text) if w.strip("'")]
    else:
        words = [w for w in words if not regex.fullmatch(r"\p{Lu}\.", w)]  # initials: "T. Nguyen"
    if not 1 <= len(words) <= 3 or any(not w.replace("'", "").replace("-", "").isalpha() for w in words):
        return False
    low = [w.lower().strip("'") for w in words]
    if any(w in ORG_WORDS for w in low):
        return False
    first, last = name_lists()
    return any(w in first or w in last for w in low)


def _cap(word: str) -> bool:
    """Title case, each part of a hyphenated word too: "Anna", "Opoku-Mensah"."""
    return all(len(p) > 1 and p[0].isupper() and p[1:].islower() for p in word.split("-"))


def _csv_row(text: str, pos: int, commas: int = 3) -> bool:
    """The line around `pos` is a comma-separated row: `commas` or more commas, none followed by a space."""
    line = text[text.rfind("\n", 0, pos) + 1:(text.find("\n", pos) + 1 or len(text) + 1) - 1]
    line = regex.sub(r'"[^"\n]*"', "", line)  # a quoted cell may hold ", ": "Av. Reforma 222, CDMX"
    return line.count(",") >= commas and ", " not in line


def gazetteer_spans(text: str) -> Iterator[Span]:
    """Names from the first/last-name lists: "Anna Kowalski", "ANNA KOWALSKI", "anna kowalski", "Kowalski, Anna"."""
    first, last = name_lists()
    words = [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]
    i = 0
    while i < len(words):
        s, e, w = words[i]
        low = w.lower()
        nxt = words[i + 1] if i + 1 < len(words) else None
        gap_ok = nxt is not None and text[e:nxt[0]] in (" ", "  ", "\t")
        # a CSV row without a header: "Juan,Carlos,Mendoza,1985-11-30,…": next columns hold the rest of the name
        # (the row is checked only for a first name before a comma: the check reads the whole line)
        csv_gap = low in first and nxt is not None and text[e:nxt[0]] == "," and _csv_row(text, s)
        if low in first and nxt is not None and (gap_ok or csv_gap and (nxt[2].lower() in last or nxt[2].lower() in first)):
            nlow, nw = nxt[2].lower(), nxt[2]
            same_case = ((_cap(w) and _cap(nw)) or (w.isupper() and nw.isupper() and len(w) > 1)
                         or (w.islower() and nw.islower() and nlow in last and len(nw) > 3 and len(w) > 2))
            if same_case and (nlow in last or _cap(nw) and nlow not in COMMON_WORDS and not w.isupper()
                              and not NAMED_THING_AFTER.match(" " + nw)):  # "Thu Festival", "Ada Lab"
                end = nxt[1]
                sep = "," if csv_gap else " "
                if i + 2 < len(words) and text[end:words[i + 2][0]] == sep and words[i + 2][2].lower() in last and (
                        words[i + 2][2][0].isupper() == nw[0].isupper()):
                    end = words[i + 2][1]
                    i += 1
                if csv_gap:  # one span per cell, so the row keeps its columns
                    yield from (Span(a, b, "PERSON", 0.75) for a, b, _ in words[i:i + 3] if b <= end)
                else:
                    yield Span(s, end, "PERSON", 0.75 if nlow in last else 0.55)
                i += 2
                continue
        if (low in last and low not in first and _cap(w) and zipf(low) < 3.5 and gap_ok and _cap(nxt[2])
                and nxt[2].lower() in first):  # surname first, as registers and rosters write it: "Halvorsen Ingrid"
            end = nxt[1]
            if i + 2 < len(words) and text[end:words[i + 2][0]] == " " and _cap(words[i + 2][2]) and (
                    words[i + 2][2].lower() in first):  # "Okonkwo Chidi Emeka"
                end = words[i + 2][1]
                i += 1
            yield Span(s, end, "PERSON", 0.6)
            i += 2
            continue
        if low in first and len(w) > 2 and _cap(w):  # a lone "Eleanor reported…": weaker, above the threshold
            if not (low in MONTHS and regex.search(r"\d", text[max(0, s - 12):e + 12])) and not regex.search(
                    r"\d(?:st|nd|rd|th)[ \t]+$", text[max(0, s - 8):s]) and not (  # "Sep 17", "5th of Jan", "5th Floor"
                    zipf(low) >= 4.0 and regex.match(r"[ \t]+#?\d", text[e:e + 3])) and not regex.match(
                    r"[ \t]+(?:me|us)\b", text[e:e + 5]):  # "Lot 14": a word and a number; "Ping me": a verb
                yield Span(s, e, "PERSON", 0.45)
        elif w.islower() and low in lowercase_first_names():  # "omg poor emily": chat drops capitals
            yield Span(s, e, "PERSON", 0.45)
        i += 1


_NAME_CELL = regex.compile(r"(?<=^|,)(?P<v>\p{Lu}\p{Ll}+(?:[ ]\p{Lu}[\p{Ll}'-]+){1,2})(?=,|$)", regex.M)


def csv_name_spans(text: str) -> Iterator[Span]:
    """A cell of a headerless CSV row made of 2-3 name words where one is on the name lists and the others are
    rare ("Okonkwo Chidi Emeka"); a row has no sentence for the NER model to read."""
    first, last = name_lists()
    for line in regex.finditer(r"^[^\n\"]+$", text, regex.M):  # a line without quoted cells
        if not _csv_row(text, line.start(), commas=2):
            continue
        for m in _NAME_CELL.finditer(text, line.start(), line.end()):
            words = m.group("v").lower().split()
            if any(w in first or w in last for w in words) and all(
                    w in first or w in last or zipf(w) < RARE_ZIPF for w in words) and not any(
                    w in ORG_WORDS or w in PLACE_FIRST or w in PLACE_LAST or w in NOT_PERSON_WORDS for w in words):
                yield Span(*m.span("v"), "PERSON", 0.6)


# e-mail headers: the display name before an address, `"Okafor, Ngozi" <ngozi.okafor@…>`, `Anna Kowalski <ak@…>`
DISPLAY_NAME = regex.compile(r"(?P<v>\p{Lu}[\p{L}'’.-]+(?:,?[ \t]+\p{Lu}[\p{L}'’.-]*){0,3})\"?[ \t]*<(?P<local>[^>@\s]+)@")
ROLE_MAILBOX = frozenset({"billing", "support", "info", "noreply", "no-reply", "donotreply", "sales", "admin", "team",
                          "hello", "contact", "service", "help", "office", "hr", "accounts", "accounting", "finance",
                          "security", "compliance", "news", "newsletter", "marketing", "jobs", "careers", "orders",
                          "claims", "mortgages", "loans", "facilities", "comms", "communications", "reception",
                          "enquiries", "inquiries", "privacy", "dpo", "legal", "press", "media", "customerservice",
                          "customercare", "care", "returns", "payments", "invoices", "bookings", "booking",
                          "reservations", "helpdesk", "servicedesk", "it", "webmaster", "postmaster", "abuse",
                          "feedback", "complaints", "recruitment", "admissions", "events", "partners", "procurement",
                          "purchasing", "ap", "ar", "payroll", "benefits", "studentservices", "registrar",
                          # the same in the languages mail comes in
                          "kontakt", "schaden", "kundenservice", "service-client", "serviceclient", "reklamacje",
                          "atencionalcliente", "atendimento", "contato", "contacto", "assistenza", "servizioclienti",
                          "klantenservice", "biuro", "itsupport", "itservicedesk", "refunds", "refund", "kadry",
                          "reclami", "reclamaciones", "reclamations"})


# "pls add sunita (sunita.rao@corp.example)": words before an address that its local part repeats are the name
NAME_BEFORE_MAIL = regex.compile(r"(?P<v>[\p{L}'’-]+(?:[ \t]+[\p{L}'’-]+){0,2})[ \t]*[(<][ \t]*(?P<local>[^\s@()<>]+)@")
# passport machine-readable zone, line 1 (type, issuer, SURNAME<<GIVEN<NAMES) and line 2 (number, dates, checks)
MRZ = regex.compile(r"\bP[A-Z<][A-Z<]{3}[A-Z]+<<[A-Z<]{2,}|\b[A-Z0-9<]{9}\d[A-Z<]{3}\d{6}\d[MFX<]\d{7}[A-Z0-9<]{14}\d{2}\b")


# Vietnamese names: family name, middle name, given name ("Nguyễn Văn An", "Tran Thi Mai"); the middle names
# that mark them are rarely English words
VIETNAMESE_NAME = regex.compile(
    r"\b(?P<v>(?:Nguyễn|Nguyen|Trần|Tran|Lê|Le|Phạm|Pham|Hoàng|Hoang|Huỳnh|Huynh|Phan|Vũ|Vu|Võ|Vo|Đặng|Dang|Bùi|Bui|"
    r"Đỗ|Do|Hồ|Ho|Ngô|Ngo|Dương|Duong|Lý|Ly|Trương|Truong|Đinh|Dinh|Mai|Đào|Dao|Cao|Lâm|Lam|Tạ|Ta|Trịnh|Trinh)"
    r"[ \t]+(?:Văn|Van|Thị|Thi|Đức|Duc|Hữu|Huu|Ngọc|Ngoc|Thanh|Minh|Quang|Xuân|Xuan|Công|Cong|Thu|Hoàng|Bảo|Bao)"
    r"[ \t]+\p{Lu}\p{Ll}*(?:[ \t]+\p{Lu}\p{Ll}+)?)\b")


# Lotus Notes addresses in old corporate mail: "Vince J Kaminski@ECT", "Sara Shackleton/HOU/ECT@ECT"
NOTES_NAME = regex.compile(r"(?<![\w/])(?P<v>\p{Lu}\p{Ll}+(?:[ \t]+\p{Lu}\.?)?[ \t]+\p{Lu}[\p{L}'’-]+)"
                           r"(?P<sep>@[A-Z]{2,10}\b|/[A-Z]{2,6}/)")


def mail_and_mrz_spans(text: str) -> Iterator[Span]:
    for m in NOTES_NAME.finditer(text):
        if m.group("sep")[0] == "@" or m.group("v").split()[0].lower() in raw_name_lists()[0]:
            yield Span(*m.span("v"), "PERSON", 0.8)
    for m in NAME_BEFORE_MAIL.finditer(text):
        parts = set(regex.split(r"[._\d-]+", m.group("local").lower())) - ROLE_MAILBOX
        words = list(regex.finditer(r"[\p{L}'’-]+", m.group("v")))
        k = len(words)
        while k > 0 and len(words[k - 1].group()) > 1 and words[k - 1].group().lower() in parts:
            k -= 1
        if k < len(words):
            yield Span(m.start("v") + words[k].start(), m.end("v"), "PERSON", 0.8)
    for m in MRZ.finditer(text):
        yield Span(*m.span(), "PASSPORT", 0.9)


# a chat role with the agent's name in brackets: "Agent (Rohit): …", "Konsultant (Paweł): …", "Conseiller (Julien) :"
ROLE_WITH_NAME = regex.compile(r"(?m)^[ \t]*(?:\[[^\]\n]{1,25}\][ \t]*)?\p{L}[\p{L} .-]{1,25}?[ \t]*\((?P<v>\p{Lu}[\p{Ll}'’-]+"
                               r"(?:[ \t]\p{Lu}[\p{Ll}'’-]+)?)\)[ \t]*:")
# a chat line's speaker: "kofi: stuck at the gate", "[09:14] ngozi: morning!!"
SPEAKER = regex.compile(r"(?m)^[ \t]*(?:\[[^\]\n]{1,25}\][ \t]*|\d{1,2}:\d{2}(?::\d{2})?[ \t]+)?"
                        r"(?P<v>\p{L}[\p{L}'’-]{1,20}(?:[ \t]\p{L}[\p{L}'’-]{1,20})?)[ \t]*:[ \t]+(?P<say>[^\n]*)")
CHAT_ROLES = frozenset({"agent", "customer", "cust", "user", "bot", "system", "assistant", "support", "operator",
                        "caller", "client", "rep", "me", "you", "admin", "mod", "host", "guest", "dispatch", "driver",
                        "staff", "nurse", "doctor", "dr", "patient", "advisor", "adviser", "berater", "kundin", "kunde",
                        "cliente", "agente", "atendente", "seller", "buyer", "shop", "store", "team", "helpdesk"})


def speaker_word(word: str) -> bool:
    """A name on the lists that is no everyday word ("Ward:" heads a form), or a lower-case word that neither English
    nor the other languages know well ("kofi", "ngozi") but web text has seen (names are written; "apiversion" is
    not); a capitalised unknown one is left to the NER ("Einsender:")."""
    low = word.lower()
    if low in CHAT_ROLES or word.isupper() or zipf(low) >= 3.5:
        return False
    if name_word(word):
        return True
    return word.islower() and 1.0 <= zipf(low) < 3.2 and not foreign_word(low, 3.5)


def speaker_spans(text: str) -> Iterator[Span]:
    """The agent's name in brackets after a chat role ("Agent (Rohit): …"); and in a chat transcript (two speaker lines
    or more), a speaker that is no everyday or role word is a person, and so is every other mention of that word in
    the text: "kofi: stuck at the gate" … "… ask kofi". Lower-case names no list has are what the NER model misses."""
    for m in ROLE_WITH_NAME.finditer(text):
        if not everyday_word(m.group("v"), 4.0):
            yield Span(*m.span("v"), "PERSON", 0.8)
    if text.count(":") < 2:
        return
    # what follows is talk (two words at least), not a config value ("replicas: 3") or a lab result ("tsh: 4.1")
    speakers = [m for m in SPEAKER.finditer(text) if len(regex.findall(r"\p{L}{2,}", m.group("say"))) >= 2]
    if len(speakers) < 2 or len({m.group("v").lower() for m in speakers}) < 2 and len(speakers) < 3:
        return
    names = {m.group("v").lower() for m in speakers if all(speaker_word(w) for w in m.group("v").split())}
    for name in names:
        for start, end in word_occurrences(text, name, "_@.-", "_@-", ignore_case=True):
            yield Span(start, end, "PERSON", 0.8)


# mail providers where anyone gets an address: an everyday word there is a person's handle ("rocket88@gmail.com")
FREE_MAIL = regex.compile(r"(?i)@(?:g(?:oogle)?mail|yahoo|ymail|hotmail|outlook|live|msn|aol|icloud|me|mac|proton(?:mail)?|"
                          r"pm|gmx|web|t-online|freenet|mail|inbox|yandex|qq|163|126|naver|zoho|fastmail|tutanota|"
                          r"libero|orange|free|laposte|wanadoo|btinternet|sky|virginmedia|rediffmail|bigpond|uol|bol|"
                          r"terra|telkomsel|ukr)\.")
ROLE_PARTS = frozenset({"all", "staff", "uk", "ie", "eu", "us", "de", "fr", "apac", "emea", "global", "ir", "pr", "it",
                        "ops", "noc", "soc", "qa", "dev", "notify", "notifications", "alerts", "list", "group", "desk"})


def role_mailbox(address: str) -> bool:
    """A shared address that names a function, not a person: "support@…", "claims@…", "customer.service@…"; at a
    firm's own domain also any local part made only of everyday words that no name list has, one of them a
    function word ("finance-approvals@", "all-staff-uk@", "hr-records@", "members@")."""
    local = address.split("@", 1)[0].lower()
    if local in ROLE_MAILBOX or regex.sub(r"[._-]", "", local) in ROLE_MAILBOX:
        return True
    if FREE_MAIL.search(address):
        return False
    parts = [p for p in regex.split(r"[._+-]+|\d+", local) if p]
    return bool(parts) and all(p in ROLE_MAILBOX or p in ROLE_PARTS or (len(p) > 3 and everyday_word(p, 3.0))
                               for p in parts) and any(p in ROLE_MAILBOX or p in ROLE_PARTS or zipf(p) >= 4.0
                                                       for p in parts)


def display_name_spans(text: str) -> Iterator[Span]:
    for m in DISPLAY_NAME.finditer(text):
        local = m.group("local").lower()
        words = [w.lower().strip(".,") for w in m.group("v").split()]
        if local in ROLE_MAILBOX or any(w in ORG_WORDS for w in words):
            continue  # "Acme Billing <billing@acme.com>", "IT Support Team <…>"
        yield Span(m.start("v"), m.end("v"), "PERSON", 0.75)


# forms and payroll write the surname in capitals first: "ABIODUN, Tobi", "VAN DER BERG, Anouk"
CAPS_SURNAME_FIRST = regex.compile(r"(?<![\w-])(?P<v>\p{Lu}{2,}(?:[ '-]\p{Lu}{2,}){0,2},[ \t]+\p{Lu}\p{Ll}+)(?![\w-])")
# a report's rows and table cells, surname first: "Dunmore, Franklin    UHC 981244710", "| Lindgren, Per |"
ROW_SURNAME_FIRST = regex.compile(r"(?m)(?:^|\|)[ \t]*(?P<v>(?P<s>\p{Lu}\p{Ll}+(?:[-'’]\p{Lu}?\p{Ll}+)?),[ \t]*"
                                  r"(?P<g>\p{Lu}\p{Ll}+)(?:[ \t]+\p{Lu}\.?)?)(?=[ \t]{2,}|[ \t]*\||[ \t]*$)")
# an initial and a surname after a role or in a crew list: "EMT-P R. Castaneda / EMT-B L. Whitford"
INITIAL_SURNAME = regex.compile(r"(?<![^\s(/,;:|])(?P<v>\p{Lu}\.[ \t]?(?P<s>\p{Lu}\p{Ll}+(?:-\p{Lu}\p{Ll}+)?))(?![\p{L}'’-])")
# the same in capitals, as claim forms, pharmacy queues and lab reports print it: "OKAFOR, CHINEDU A",
# "GUTIERREZ-PLAZA, ESTEBAN R", "TRAN, MINH-ANH K"
CAPS_SURNAME_FIRST_CAPS = regex.compile(r"(?<![\w-])(?P<v>\p{Lu}{2,}(?:[ '-]\p{Lu}{2,}){0,2},[ \t]*"
                                        r"(?P<g>\p{Lu}{3,}(?:[- ]\p{Lu}{2,})?)(?:[ \t]+\p{Lu}\b\.?)?)(?![\w-])")
# "change my surname from Dlamini to Mthembu": both are the customer's names
NAME_CHANGE = regex.compile(r"(?i:\b(?:sur|last[ \t]|family[ \t]|maiden[ \t]|first[ \t]|middle[ \t]|given[ \t])name"
                            r"[ \t]+from)[ \t]+(?P<a>\p{Lu}\p{Ll}+(?:[ -]\p{Lu}\p{Ll}+)?)[ \t]+(?i:to)[ \t]+"
                            r"(?P<b>\p{Lu}\p{Ll}+(?:[ -]\p{Lu}\p{Ll}+)?)")
CAMEL_HASHTAG = regex.compile(r"#[ ]?(?P<v>\p{Lu}\p{Ll}+(?:\p{Lu}\p{Ll}+){1,2})(?!\w)")
# performers' names: "Lil Yachty", "DJ Khaled", "MC Lyte"
STAGE_NAME = regex.compile(r"\b(?:Lil|DJ|MC)[ \t]+(?P<w>\p{Lu}[\p{L}]+)\b")
SALUTATION_NOUNS = frozenset({"parent", "parents", "guardian", "guardians", "carer", "carers", "colleague", "colleagues",
                              "customer", "customers", "client", "member", "members", "resident", "residents", "tenant",
                              "applicant", "student", "students", "sir", "sirs", "madam", "team", "friend", "friends",
                              "all", "everyone", "patient", "user", "subscriber", "neighbour", "neighbor", "homeowner",
                              "occupier", "taxpayer", "voter", "reader", "candidate", "partner", "partners", "supplier",
                              "valued", "cardholder", "policyholder", "employee", "staff", "doctor", "editor", "hiring",
                              # … and in the languages letters come in: "Beste klant", "Caro Cliente", "Szanowny Kliencie"
                              "klant", "kunde", "kundin", "cliente", "clienta", "kliencie", "klient", "collega",
                              "collègue", "kollege", "kollegin", "mieter", "mieterin", "locataire",
                              "inquilino", "huurder", "najemca", "paziente", "patiënt", "paciente",
                              "abonné", "abonnee", "socio", "sócio", "cust",
                              # how Indonesian, Malay and Filipino chat addresses the other side: "Iya kak", "Bapak"
                              "kak", "kakak", "bapak", "pak", "ibu", "bu", "mbak", "adik", "dik", "penjual", "pembeli",
                              "pelanggan", "nasabah", "yth", "kuya", "señora", "señor", "senhora", "senhor"})
GREETING_BEFORE = regex.compile(r"(?i:\b(?:hi|hello|hey|hiya|dear|howzit|g['’]day|it['’]?s|it is|this is))[ \t]+$")
PHONE_AFTER = regex.compile(r"[ \t]+(?:(?i:on|at|@|-|–|:)[ \t]*)?\(?\+?\d[\d ().-]{6,}\d(?![\d/])")
# what family and community chats put before or after a name: "kuya Jomar", "abang Hafiz", "Zubair bhai", "Suzuki-san"
HONORIFIC_BEFORE = regex.compile(r"(?i:\b(?:kuya|abang|kakak|kak|mbak|bhaiya|didi|aunty|auntie|tito|tita|lolo|lola|oga|"
                                 r"mang|aling|ustaz|ustazah|cikgu|pak|bu|ibu|bapak|sensei))[ \t]+(?P<v>\p{Lu}\p{Ll}+)\b")
HONORIFIC_AFTER = regex.compile(r"\b(?P<v>\p{Lu}\p{Ll}+)(?:[ \t]+(?i:bhai|bhaiya|ji|sahab|saab|didi|bhabhi|aunty|uncle)|"
                                r"-(?:san|sama|kun|chan|sensei|senpai|ssi|nim))\b")
# a name signed after a dash at the end of a message line: "… text me 085 331 7724 — Mossie", "… 😭 - arjun"
DASH_SIGNATURE = regex.compile(r"(?m)\S[ \t]+[—–-][ \t]*(?P<v>\p{L}[\p{L}'’]{2,20})[ \t]*$")


def name_spans(text: str) -> Iterator[Span]:
    for m in TITLE_NAME.finditer(text):
        if m.group().startswith("Col") and regex.search(r"\d[\w-]*,[ \t]*$", text[max(0, m.start() - 12):m.start()]):
            continue  # "Río Lerma 245, Col. Cuauhtémoc": a Mexican colonia after the house number, not a colonel
        yield Span(m.start(), m.end(), "PERSON", 0.85)
    first, last = name_lists()
    for rx, unknown_score in ((STRONG_NAME_CUE, 0.5), (WEAK_NAME_CUE, 0.2)):
        for m in rx.finditer(text):
            words = m.group().split()
            if all(w.lower() in COMMON_WORDS for w in words) or words[0].lower() in SALUTATION_NOUNS:
                continue  # "Dear Parent/Carer", "Dear Colleague": a role greeted, though "Parent" is also a surname
            known = any(w.lower() in first or w.lower() in last for w in words)
            if not known and ((m.group().isupper() and not text.isupper()) or words[0].lower() in english_stop_words()
                              or CONTRACTION.match(words[0])):
                continue  # "This is URGENT": emphasis; "SIGNED THE FORM", "CALLED ABOUT", "thank you, I'm": not a name
            if not known and zipf(words[0].lower()) >= 5.0 and words[0].lower() not in raw_name_lists()[0]:
                continue  # "Customer: Sure, …", "Customer: Yes": a reply in a transcript, not a name
            score = 0.7 if known else unknown_score
            start = m.start()
            if (known and len(words) > 1 and words[1].lower() in first and words[0].lower() not in first
                    and words[0].lower() not in last and zipf(words[0].lower()) >= RARE_ZIPF):
                start += m.group().index(words[1], len(words[0]))  # "and Borrower Rosalind Achterberg": a role
            if not known and score < 0.6 and all(zipf(w.lower()) < RARE_ZIPF for w in words) and (
                    (regex.match(r"[ \t]*(?:[,!.]|\p{Extended_Pictographic}|$)", text[m.end():m.end() + 3])
                     and GREETING_BEFORE.search(text, max(0, m.start() - 12), m.start()))
                    or PHONE_AFTER.match(text, m.end())):
                score = 0.6  # "Hi Bettye,", "Hey Sipho 👋", "it's Thabo.", "ring Siobhán on 087 214 6630"
            yield Span(start, m.end(), "PERSON", score)
    for m in LOWER_AFTER_CUE.finditer(text):
        words = m.group().split()
        if words[0] in first or words[0] in last:
            end = m.end() if len(words) == 2 and (words[1] in last or words[1] in first) else m.start() + len(words[0])
            yield Span(m.start(), end, "PERSON", 0.6)
    for m in CAMEL_HASHTAG.finditer(text):  # "#SachaBaronCohen": a person's full name run together
        parts = [p.lower() for p in regex.findall(r"\p{Lu}\p{Ll}+", m.group("v"))]
        if parts[0] in first and all(p in last or zipf(p) < RARE_ZIPF for p in parts[1:]):
            yield Span(*m.span("v"), "PERSON", 0.6)
    for m in STAGE_NAME.finditer(text):
        if zipf(m.group("w").lower()) < 4.5:
            yield Span(*m.span(), "PERSON", 0.6)
    for m in NAME_CHANGE.finditer(text):
        yield Span(*m.span("a"), "PERSON", 0.7)
        yield Span(*m.span("b"), "PERSON", 0.7)
    for m in CAPS_SURNAME_FIRST.finditer(text):
        surname, given = m.group("v").rsplit(",", 1)
        if (given.strip().lower() in raw_name_lists()[0] or zipf(given.strip().lower()) < RARE_ZIPF) and all(
                zipf(w.lower()) < 4.0 for w in regex.findall(r"\p{L}+", surname)):
            yield Span(*m.span("v"), "PERSON", 0.7)
    for m in ROW_SURNAME_FIRST.finditer(text):
        if m.group("g").lower() in raw_name_lists()[0] and (m.group("s").lower() in last or zipf(m.group("s").lower())
                                                              < RARE_ZIPF):
            yield Span(*m.span("v"), "PERSON", 0.7)
    for m in INITIAL_SURNAME.finditer(text):
        sur = m.group("s").lower()
        if sur in last and zipf(sur) < 4.0 and sur not in first:
            yield Span(*m.span("v"), "PERSON", 0.6)
    for m in CAPS_SURNAME_FIRST_CAPS.finditer(text):
        surname = m.group("v").split(",", 1)[0]
        given = [w.lower() for w in regex.findall(r"\p{L}+", m.group("g"))]
        sur = [w.lower() for w in regex.findall(r"\p{L}+", surname)]
        if not all(regex.search(r"[aeiouyàáâãäåèéêëìíîïòóôõöùúûü]", w) for w in given + sur):
            continue  # "VZV, HSV": acronyms, no names
        if (any(w in raw_name_lists()[0] for w in given) and all(zipf(w) < 4.0 for w in sur)
                or all(zipf(w) < 3.0 for w in given + sur)):
            yield Span(*m.span("v"), "PERSON", 0.7)
    for m in VIETNAMESE_NAME.finditer(text):
        given = m.group("v").split()[2:]
        if all(len(w) <= 4 or zipf(w.lower()) < 4.0 for w in given):  # "the Mai Thu Festival" is an event
            yield Span(*m.span("v"), "PERSON", 0.8)
    for rx in (HONORIFIC_BEFORE, HONORIFIC_AFTER):
        for m in rx.finditer(text):
            word = m.group("v")
            if (word.lower() in first or zipf(word.lower()) < 4.0) and word.lower() not in COMMON_WORDS:
                yield Span(*m.span("v"), "PERSON", 0.7)
    for m in DASH_SIGNATURE.finditer(text):
        word = m.group("v")
        if word.lower() in first or (zipf(word.lower()) < RARE_ZIPF and word.lower() not in COMMON_WORDS
                                     and not foreign_word(word.lower(), 3.5)):
            yield Span(*m.span("v"), "PERSON", 0.6)
    yield from gazetteer_spans(text)
    yield from csv_name_spans(text)


# Who a payment, a booking or a call is for. Chat, voice transcripts and banking apps drop capitals, and a rare
# surname has no context a NER model knows: "a standing order to rickelle kawamoto", "a table booked under sadi
# nellis", "my name is coppedge". After such a cue, lower-case words that are a known name or rare in English
# (word frequency from `wordfreq`: "kawamoto" is 1.5 on its Zipf scale, "savings" 4.4) are the person.
KIN_WORDS = (r"son|daughter|wife|husband|partner|mother|father|mom|mum|dad|brother|sister|aunt|uncle|cousin|nephew|"
             r"niece|grandson|granddaughter|grandma|grandpa|grandmother|grandfather|friend|boyfriend|girlfriend|"
             r"fianc[ée]e?|colleague|coworker|boss|neighbou?r|landlord|landlady|tenant|roommate|flatmate|stepson|"
             r"stepdaughter|caregiver|carer|nanny|bro|sis|gf|bf|hubby|bestie|bff|stepdad|stepmom|stepmum|stepbrother|"
             r"stepsister|grandad|granddad|granny|nana")
# the same in Spanish, Portuguese, Italian and French chat: "mi hermana lucía", "minha mãe joana", "ma fille chloé"
FOREIGN_KIN = (r"hermana|hermano|primo|hija|hijo|esposa|esposo|marido|mamá|papá|abuela|abuelo|tía|tío|novia|novio|"
               r"mãe|pai|filha|filho|irmã|irmão|avó|avô|namorada|namorado|sorella|fratello|figlia|figlio|moglie|"
               r"cugino|cugina|fille|fils|femme|sœur|frère|cousine")
# "accompanied by son (Tyrell)", "his wife, Marisol": a capitalised name right after a kinship word
KIN_NAME = regex.compile(r"(?i:\b(?:" + KIN_WORDS + r")(?:-in-law)?)[ \t]*(?:\([ \t]*|,[ \t]*|[ \t]+)"
                         r"(?P<v>\p{Lu}\p{Ll}+(?:[ \t]\p{Lu}\p{Ll}+)?)\b")


def kin_name_spans(text: str) -> Iterator[Span]:
    first, last = raw_name_lists()[0], name_lists()[1]
    for m in KIN_NAME.finditer(text):
        words = [w.lower() for w in m.group("v").split()]
        if any(w in english_stop_words() or w in ORG_WORDS or (w in COMMON_WORDS and w not in first) for w in words):
            continue  # "his partner Jordan", "my friend Grace" are names; "her son Will" too
        if all(w in first or w in last or zipf(w) < RARE_ZIPF for w in words) or nickname(words[0]):
            yield Span(*m.span("v"), "PERSON", 0.6)


# "Grace from accounts", "ask Sam from IT": a first name, then the team it speaks for
TEAM_WORDS = (r"accounts|accounting|finance|hr|human resources|it|sales|support|legal|marketing|procurement|payroll|"
              r"billing|compliance|operations|ops|admin|reception|security|engineering|customer service|"
              r"customer support|the bank|the office|the team|the front desk|front desk|the help ?desk|help ?desk|"
              r"the branch|the clinic|the surgery|the agency|the landlord|management|underwriting|claims|collections")
TEAM_NAME = regex.compile(r"\b(?P<v>\p{Lu}\p{Ll}+)[ \t]+from[ \t]+(?:(?i:" + TEAM_WORDS + r")|[A-Z]{2,4})\b")


def team_name_spans(text: str) -> Iterator[Span]:
    first = raw_name_lists()[0]
    for m in TEAM_NAME.finditer(text):
        if m.group("v").lower() in first and m.group("v").lower() not in english_stop_words():
            yield Span(*m.span("v"), "PERSON", 0.6)


# "to", "from", "for" and a bare "under" introduce a person only where money moves or a booking is made
PARTY_CONTEXT = regex.compile(
    r"(?i:\b(?:transfer|transfers|transferring|transferred|payments?|paid|pay(?:ing|s)?|sen[dt]|sending|wire[ds]?|"
    r"wiring|orders?|debits?|transactions?|money|amount|funds?|refund\w*|remit\w*|cheque|owe[sd]?|owing|lend|lent|"
    r"gave|give|giving|receive[ds]?|receiving|payee|recipient|beneficiary|euros?|dollars?|pounds?|bucks|usd|eur|"
    r"gbp|book|booked|booking|bookings|reservation|reserved|reserve|table|room|appointment|session|parcel|package|"
    r"delivery|shipment|courier|letter)\b|[$£€¥₹])"
    r"[^.!?;\n]{0,60}$")
PARTY_CUE = regex.compile(
    r"(?:(?i:\b(?:to|from|for|under)|\bunder[ \t]+the[ \t]+name(?:[ \t]+of)?|\b(?:it|its|it['’]s|is|are)[ \t]+under|"
    r"\bon[ \t]+behalf[ \t]+of|\bin[ \t]+the[ \t]+name[ \t]+of|\b(?:booked|booking|reservation|table|room|"
    r"appointment|session)(?:[ \t]+(?:for|under))?|\bnamed|\bmera[ \t]+na+m|\b(?:my|the|same|sur|last|first|family)?[ \t]*name"
    r"(?:[ \t]+(?:is|to|as)|'s|:)?|\bpay|\bowe|\bi[ \t]+am|\bi['’]?m|\bthis[ \t]+is|\bit['’]?s|\bit[ \t]+is|"
    r"\b(?:hi|hello|hey)[ \t]*,?|\b(?:" + KIN_WORDS + r"|" + FOREIGN_KIN + r"|card ?holder|account ?holder|policy ?holder|beneficiary|"
    r"payee|claimant|insured|applicant|mr|mrs|ms|miss|mister|dr)\.?)[ \t]*:?[ \t]+|(?i:\b(?:regards|cheers|thanks|thank[ \t]+you|best|sincerely|yours|love))"
    r"[ \t]*,?[ \t]*\n[ \t]*|(?i:\b(?:regards|cheers|thanks|sincerely))[ \t]*,[ \t]*|^[ \t]*)(?=\p{Ll})", regex.M)
SELF_CUE = regex.compile(r"(?i:\bi[ \t]+am|\bi['’]?m|\bthis[ \t]+is|\bit['’]?s|\bit[ \t]+is)[ \t]+$")
GREETING_CUE = regex.compile(r"(?i:^|\b(?:hi|hello|hey)[ \t]*,?)[ \t]*$", regex.M)
SIGNOFF_CUE = regex.compile(r"(?i:regards|cheers|thanks|thank[ \t]+you|best|sincerely|yours|love)[ \t]*,?\s*$")
SIGNOFF_END = regex.compile(r"[ \t]*[.!]?[ \t]*(?:\n|$)")  # a sign-off name ends its line: "thanks,\nkawamoto"
# after "i'm" or "this is" most rare words are not names ("i'm gutted"); one is a name when its clause ends there or
# a speaker's phrase follows ("it's katty calling", "this is kaytie, alter my booking"); at the start of a message
# or after a greeting only the speaker's phrase counts ("jamesha hamlett here, …")
SELF_END = regex.compile(r"[ \t]*(?:[,.!?;:]|$|(?i:speaking|calling|here|from|again)\b)")
SPEAKER_FROM = regex.compile(r"[ \t]+(?i:speaking|calling|here|from(?![ \t]+now\b)(?![ \t]+then\b))\b")
SPEAKER_END = regex.compile(r"[ \t]*(?i:speaking|calling|here)\b")
# "a payment to elia greek restaurant", "from rbs to woodforest account": the next word names a business
BUSINESS_AFTER = regex.compile(
    r"(?:[ \t]+\p{Ll}+)?[ \t]+(?i:restaurant|grill|kitchen|diner|bistro|taverna|cafe|café|bar|pub|store|shop|market|supermarket|pharmacy|hotel|salon|gym|bakery|"
    r"ltd|inc|llc|plc|limited|company|co|corp|group|bank|services|account|card|app|website|department|ward|unit)\b")
# a word built with an English suffix is a word, not a name ("intractable", "nephrology", "subed", "pending")
WORD_SUFFIX = regex.compile(r"(?:ology|ologist|able|ible|ness|less|ment|tion|sion|ious|eous|ful|ism|ity|ive|ize|ized|"
                            r"izing)$")
LOWER_WORD = regex.compile(r"\p{Ll}[\p{Ll}'’-]*\p{Ll}")
RARE_ZIPF = 3.0  # below this a lower-case word is rare enough in English to be a name after a cue
SOLO_ZIPF = 2.5  # a lone word, with no surname after it, must be rarer: brands sit at 2.4-3 ("waitrose", "aldi")
NEXT_ZIPF = 3.7  # a word after a name-like one joins it up to this ("tao", "watford", "oaks")
NAME_ZIPF = 4.6  # a name-list word this common ("page", "mark") is the everyday word unless capitalised
TYPO_ZIPF = (5.5, 4.4)  # a rare word one edit from a word this common is its typo (other cues, after "i'm"/"it's")
MONTHS = frozenset({"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"})


@lru_cache(maxsize=65536)
def zipf(word: str, lang: str = "en") -> float:
    """How common `word` is in `lang`, 0 (unseen) to ~7.7 ("the"); wordfreq's bundled tables, no I/O per call.
    Other languages use the small tables (words from Zipf 3.0 up, ~8 MB each in memory): privtune only asks them
    whether a word is common there, and the full ones cost ~40 MB per language and process."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, lang, wordlist="best" if lang == "en" else "small")


def _party_word(word: str, limit: float) -> bool:
    first, last = name_lists()
    if (len(word) < 2 or word in english_stop_words() or word in COMMON_WORDS or word in NOT_PERSON_WORDS
            or word in MONTHS or not word.replace("'", "").replace("’", "").replace("-", "").isalpha()):
        return False
    z = zipf(word)
    if word in first or word in last:
        return z < NAME_ZIPF
    if z >= limit or WORD_SUFFIX.search(word):
        return False
    stem = regex.match(r"(\p{L}{2,}?)(?:ed|ing)$", word)  # "subed", "pinged": a common word inflected
    return not (stem and max(zipf(stem.group(1)), zipf(stem.group(1) + "e")) >= 3.5)


def _cue_in_context(text: str, start: int, cue: str) -> bool:
    """A bare "to/from/for/under" counts only after money or booking words: "go to school", "a letter from home",
    "under the nail bed" introduce no one."""
    return cue.strip().lower() not in ("to", "from", "for", "under") or bool(
        PARTY_CONTEXT.search(text[max(0, start - 64):start]))


KIN_CUE = regex.compile(r"(?i)\b(?:" + KIN_WORDS + r"|" + FOREIGN_KIN + r")\b")
FOREIGN_KIN_CUE = regex.compile(r"(?i)\b(?:" + FOREIGN_KIN + r")\b")


@lru_cache(maxsize=1)
def _name_prefixes() -> frozenset[str]:
    return frozenset(n[:k] for n in raw_name_lists()[0] for k in (3, 4, 5) if len(n) >= k + 2)


def nickname(word: str) -> bool:
    """A short form of a known first name that is no everyday word: "kev" (Kevin), "jess" (Jessica), "matt"; only
    trusted right after a kinship word ("my bro kev")."""
    word = word.lower()
    return (3 <= len(word) <= 5 and word in _name_prefixes() and word not in english_stop_words() and zipf(word) < 4.2
            and not KIN_CUE.fullmatch(word) and word not in ("hun", "hon", "babe", "bae", "luv", "sweetie", "cuz"))


def double_first_name(word: str) -> bool:
    """"isla-rose", "mary-kate": two first names (one may be rare in English) joined by a hyphen."""
    parts = word.lower().split("-")
    firsts = raw_name_lists()[0]
    return (len(parts) == 2 and all(len(p) > 1 and (p in firsts or zipf(p) < NEXT_ZIPF) for p in parts)
            and any(p in firsts for p in parts))


def kin_given_name(word: str) -> bool:
    """What only a kinship word makes a name: a short form or a hyphenated pair of first names."""
    return nickname(word) or double_first_name(word)


def party_spans(text: str) -> Iterator[Span]:
    """Lower-case names after a payment, booking or self-introduction cue (see PARTY_CUE)."""
    first, last = name_lists()
    for m in PARTY_CUE.finditer(text):
        if not _cue_in_context(text, m.start(), m.group()):
            continue
        kin = bool(KIN_CUE.search(m.group()))
        foreign = bool(FOREIGN_KIN_CUE.search(m.group()))
        words: list = []
        initial = regex.match(r"\p{Ll}\.[ \t]?", text[m.end():m.end() + 3])  # "cardholder t. okoye"
        begin = m.end() + (initial.end() if initial else 0)
        for w in LOWER_WORD.finditer(text, begin):
            gap = text[(words[-1].end() if words else begin):w.start()]
            if len(words) == 3 or gap not in ((" ", "\t") if words else ("",)):
                break
            word = w.group()
            if words and foreign and word not in last:
                break  # "mi primo andrés llegan mañana": English rarity says nothing of Spanish verbs
            if _party_word(word, NEXT_ZIPF if words or initial else RARE_ZIPF) or double_first_name(word) or (
                    not words and kin and kin_given_name(word)):  # "to amelia-rose", "bro kev", "daughter isla-rose"
                words.append(w)
            elif not words and word in first:  # "guy kephart", "page guynn": a common first name before a rare word
                nxt = LOWER_WORD.match(text, w.end() + 1)
                if text[w.end():w.end() + 1] == " " and nxt and _party_word(nxt.group(), RARE_ZIPF):
                    words.append(w)
                    continue
                break
            else:
                break
        if not words:
            continue
        end = words[-1].end()
        known = any(w.group() in first or w.group() in last for w in words) or (kin and kin_given_name(words[0].group()))
        if len(words) == 1 and "-" not in words[0].group() and not known and zipf(words[0].group()) >= SOLO_ZIPF and not (
                zipf(words[0].group()) < RARE_ZIPF and SELF_CUE.search(m.group()) and SPEAKER_FROM.match(text, end)):
            continue  # a brand ("waitrose") is as rare as many names; "it's priyanka from 4B" speaks for itself
        if regex.match(r"[.@]\w|['’]s\b", text[end:end + 3]) or BUSINESS_AFTER.match(text, end):
            continue  # "railcard.co.uk", "elia's", "elia greek restaurant"
        self_intro = bool(SELF_CUE.search(m.group()))
        if len(words) == 1 and not known and typo_of_common(words[0].group(), TYPO_ZIPF[self_intro]):
            continue  # "owe to peopke", "it's gona be", "this is ridicoulous"
        if self_intro:  # "its" without its apostrophe is mostly the possessive: "its hostname is …"
            possessive = len(words) == 1 and bool(regex.search(r"(?i:\bits)[ \t]+$", m.group()))
            if not (known or SELF_END.match(text, end) or _stop_word_after(text, end) and not possessive):
                continue
        elif SIGNOFF_CUE.search(m.group()):
            if not SIGNOFF_END.match(text, end):
                continue
        elif GREETING_CUE.search(m.group()) and not SPEAKER_END.match(text, end):
            continue
        yield Span(m.end() if initial else words[0].start(), end, "PERSON", 0.6)


# the same cues before a capitalised full name the NER model missed or took for a place ("transfer 4,500 EUR to
# Odessa Wintheiser"): two or three Title-case words, each a known name word or rare in English
TITLED_PARTY = regex.compile(
    r"(?i:\b(?:to|from|for|under(?:[ \t]+the[ \t]+name(?:[ \t]+of)?)?|on[ \t]+behalf[ \t]+of|in[ \t]+the[ \t]+name[ \t]+of|"
    # who acted on a record: "debited … by Elmira Torphy", "countersigned by T. Nakashima"
    r"(?:authori[sz]ed|approved|signed|countersigned|co-signed|witnessed|prepared|reviewed|submitted|issued|initiated|"
    r"requested|verified|processed|received|referred|dictated|transcribed|examined|treated|"
    r"reported|filed|raised|opened|assigned|escalated|endorsed|notarized|notarised)[ \t]+by|by))"
    r"[ \t]+(?P<v>\p{Lu}\.[ \t]?\p{Lu}\p{Ll}+(?:[ \t]\p{Lu}\p{Ll}+)?|\p{Lu}\p{Ll}+(?:[ \t]\p{Lu}\p{Ll}+){1,2})\b"
    r"(?![.@-]\w)")


def titled_party_spans(text: str) -> Iterator[Span]:
    first, last = name_lists()
    for m in TITLED_PARTY.finditer(text):
        if not _cue_in_context(text, m.start(), text[m.start():m.start("v")]):
            continue
        words = [w.lower() for w in m.group("v").split() if not regex.fullmatch(r"\p{Lu}\.", w)]  # "R. Venkataraman"
        if any(w in english_stop_words() or w in COMMON_WORDS or w in ORG_WORDS or w in NOT_PERSON_WORDS or w in MONTHS
               for w in words):
            continue
        if m.group().split()[0].lower() == "by" and not any(w in first or w in last for w in words):
            continue  # a bare "by" needs a known name word: "by Elmira Torphy", not "by Kubernetes Engine"
        named = [((w in first or w in last) and zipf(w) < NAME_ZIPF) or zipf(w) < RARE_ZIPF for w in words]
        if any(named) and all(n or zipf(w) < NEXT_ZIPF for n, w in zip(named, words, strict=True)) and not (
                BUSINESS_AFTER.match(text, m.end()) or INSTITUTION_AFTER.match(text, m.end())):
            yield Span(m.start("v"), m.end("v"), "PERSON", 0.6)


def typo_of_common(word: str, limit: float) -> bool:
    """`word` is one edit (a letter dropped, added, changed or two swapped) from an English word at least `limit`
    common on wordfreq's Zipf scale: "peopke" (people), "gona" (gonna), "ridicoulous". Rare words after a cue are
    names only when they are not such typos."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    seen = set()
    for i in range(len(word) + 1):
        a, b = word[:i], word[i:]
        edits = [a + c + b for c in letters]
        if b:
            edits += [a + b[1:]] + [a + c + b[1:] for c in letters if c != b[0]]
        if len(b) > 1:
            edits.append(a + b[1] + b[0] + b[2:])
        for e in edits:
            if e != word and e not in seen:
                seen.add(e)
                if zipf(e) >= limit:
                    return True
    return False


def _stop_word_after(text: str, end: int) -> bool:
    nxt = regex.match(r"[ \t]+(\p{L}+)", text[end:end + 20])
    return bool(nxt) and nxt.group(1).lower() in english_stop_words()


# ------------------------------------------------------------------------------------- structured fields
# Exports, tickets and prompts carry records as JSON, "Label: value" lines and CSV or Markdown tables. The field's
# name says what its value is, where the value alone often cannot: "Liang" in a CSV row has no context a NER model
# could use, and "2127" is a postcode only because its column says so. Keys are compared by their words, lower
# case, so "last_name", "lastName", "Last Name" and "patient.last_name" (ending in "last name") are one key.
NAME_KEYS = frozenset({
    "firstname", "fname", "givenname", "forename", "forenames", "middlename", "lastname", "lname", "surname",
    "familyname", "maidenname", "mothersmaidenname", "fullname", "legalname", "preferredname", "nameoncard",
    "cardholder", "cardholdername", "accountholder", "accountholdername", "policyholder", "beneficiaryname",
    "payeename", "payername", "recipientname", "sendername", "guardianname", "spousename", "nextofkin",
    "emergencycontact", "emergencycontactname", "contactperson", "customername", "clientname", "patientname",
    "employeename", "membername", "applicantname", "tenantname", "borrowername", "insuredname", "subscribername",
    "witnessname", "signedby", "contactname", "realname", "truename", "nom",
    # the same fields in the languages records come in
    "vorname", "nachname", "familienname", "geburtsname", "prénom", "prenom", "nomdefamille", "nomdenaissance",
    "nombre", "apellido", "apellidos", "primerapellido", "segundoapellido", "nome", "cognome", "sobrenome",
    "nomecompleto", "nombrecompleto", "voornaam", "achternaam", "imię", "imie", "nazwisko", "förnamn", "efternamn",
    "fornavn", "etternavn", "efternavn", "etunimi", "sukunimi", "soyad", "soyadı", "nama", "namalengkap",
    "姓名", "名字", "真实姓名", "氏名", "이름"})
# keys whose value is a person only when it looks like one ("Name: Anna Kowalski" yes, "Name: Premium plan" no;
# "Provider: Dr. Rosa Fernandez" yes, "Provider: City Hospital" no)
LOOSE_NAME_KEYS = frozenset({
    "medewerker", "mitarbeiter", "mitarbeiterin", "empleado", "empleada", "funcionário", "dipendente", "pracownik",
    "resident", "user", "userdisplay", "displayname", "requestername",
    "requestedby", "reportedby", "raisedby", "submittedby", "checkedby", "intakeby", "enteredby", "keyedby",
    "reviewedby", "approvedby", "verifiedby", "processedby", "preparedby", "completedby", "authorisedby",
    "authorizedby", "orderedby", "referringphysician", "attendingphysician", "prescriber", "prescribedby", "rph",
    "pharmacist", "tech", "technician", "adjuster", "caseworker", "casemanager", "assignedto",
    "name", "patient", "customer", "client", "contact", "member", "employee", "beneficiary", "payee", "payer",
    "recipient", "sender", "guardian", "spouse", "applicant", "tenant", "landlord", "borrower", "insured",
    "subscriber", "witness", "doctor", "physician", "provider", "providername", "attending", "referredby",
    "nurse", "author", "owner", "ownername", "manager", "agent", "caregiver", "parent", "mother", "father",
    # query strings ("?first=Lars&last=Eriksen", "holder=Ana+Lima") and roles in forms, trackers and legal text
    "first", "last", "given", "family", "holder", "candidate", "student", "pupil", "interviewee", "trainee",
    "guest", "passenger", "traveller", "traveler", "visitor", "claimant", "defendant", "plaintiff", "victim",
    "suspect", "deceased", "donor", "buyer", "seller", "reviewer", "approver", "assignee", "reporter", "requester",
    "requestor", "signatory", "executor", "heir", "respondent", "petitioner", "debtor", "creditor", "lender"})
FIELD_TYPES = {
    **dict.fromkeys(("email", "emailaddress", "mail", "workemail", "personalemail", "contactemail"), "EMAIL_ADDRESS"),
    **dict.fromkeys(("phone", "phonenumber", "phoneno", "telephone", "tel", "telno", "mobile", "mobilenumber",
                     "mobilephone", "cell", "cellphone", "cellnumber", "homephone", "workphone", "fax", "faxnumber",
                     "contactnumber", "contactphone", "whatsapp"), "PHONE_NUMBER"),
    **dict.fromkeys(("address", "streetaddress", "street", "address1", "address2", "addressline1", "addressline2",
                     "addr", "homeaddress", "mailingaddress", "postaladdress", "billingaddress", "shippingaddress",
                     "residentialaddress", "residence", "domicile"), "STREET_ADDRESS"),
    **dict.fromkeys(("zip", "zipcode", "postcode", "postalcode", "plz", "pincode", "eircode"), "POSTCODE"),
    **dict.fromkeys(("dob", "dateofbirth", "birthdate", "birthday", "bday"), "DATE_OF_BIRTH"),
    **dict.fromkeys(("city", "town", "birthplace", "placeofbirth", "cityofbirth", "ville", "stadt", "ort", "wohnort",
                     "ciudad", "localidad", "città", "citta", "cidade", "cidadeuf", "municipio", "município", "miasto",
                     "miejscowość", "plaats", "woonplaats", "stad", "kota", "provincia", "province", "state", "region",
                     "bundesland", "estado", "uf"), "LOCATION"),
    **dict.fromkeys(("mrn", "medicalrecordnumber", "medicalrecordno", "patientid", "patientnumber", "patientno",
                     "chartnumber", "healthrecordnumber", "hospno", "hospitalno", "hospitalnumber", "hospnumber",
                     "uhid", "nhi", "nhinumber", "crn", "urn", "umrn"), "MEDICAL_RECORD"),
    **dict.fromkeys(("ssn", "socialsecuritynumber"), "US_SSN"),
    **dict.fromkeys(("username", "userid", "login", "loginname", "screenname", "handle", "nickname", "wechat",
                     "wechatid", "weixin", "qq", "telegram", "skype", "lineid", "kakaoid", "ign"), "USERNAME"),
    **dict.fromkeys(("password", "passwd", "pwd", "passcode", "passphrase"), "PASSWORD"),
    **dict.fromkeys(("customerid", "customernumber", "customerno", "clientid", "clientnumber", "memberid",
                     "membernumber", "accountid"), "CUSTOMER_ID"),
    **dict.fromkeys(("employeeid", "employeenumber", "employeeno", "staffid", "staffnumber", "staffno",
                     "personalnummer", "persnr", "badgeno", "badgenumber", "badgeid"), "EMPLOYEE_ID"),
    **dict.fromkeys(("passportnumber", "passportno", "passport"), "PASSPORT"),
    **dict.fromkeys(("driverslicense", "driverlicense", "driverslicence", "drivinglicence", "licensenumber",
                     "dlnumber"), "DRIVER_LICENSE"),
    **dict.fromkeys(("accountnumber", "accountno", "bankaccount", "bankaccountnumber"), "US_BANK_NUMBER"),
    **dict.fromkeys(("ipaddress", "ip", "ipv4", "ipv6", "clientip", "remoteaddr"), "IP_ADDRESS"),
    **dict.fromkeys(("macaddress", "mac"), "MAC_ADDRESS"),
    **dict.fromkeys(("iban", "ibancode", "ibannumber"), "IBAN_CODE"),
    **dict.fromkeys(("bic", "swift", "swiftcode", "swiftbic", "swiftbiccode", "biccode", "routingnumber", "aba",
                     "abanumber", "routingcode"), "ROUTING_NUMBER"),
    **dict.fromkeys(("sortcode",), "SORT_CODE"),
    **dict.fromkeys(("bban", "bankaccountno", "checkingaccount", "savingsaccount"), "US_BANK_NUMBER"),
    **dict.fromkeys(("creditcard", "creditcardnumber", "cardnumber", "ccnumber", "debitcard", "cvv", "cvc",
                     "cvv2", "cardsecuritycode"), "CREDIT_CARD"),
    **dict.fromkeys(("pin", "accountpin", "securityanswer", "secretanswer"), "PASSWORD"),
    **dict.fromkeys(("taxid", "tin", "ein", "taxnumber", "vatnumber", "vatid", "itin"), "TAX_ID"),
    **dict.fromkeys(("nationalid", "nationalidnumber", "nin", "nino", "nhsnumber", "aadhaar", "pesel", "bsn",
                     "sin", "personalnumber", "idnumber", "idcard", "idcardno", "idcardnumber", "身份证", "身份证号",
                     "codicefiscale", "cf", "nss", "numérodesécuritésociale", "sécuritésociale", "securitesociale", "nirpp", "steuerid", "cccd", "cmnd", "curp", "cpf", "dni", "nie",
                     "nif", "rut", "cnp", "emiratesid", "nric", "hkid", "mykad", "personalausweis"), "NATIONAL_ID"),
    **dict.fromkeys(("uniqueid", "personid"), "ID_NUMBER"),
    **dict.fromkeys(("policynumber", "policyno", "insuranceid", "insurancenumber", "medicarenumber",
                     "healthplanid", "versichertennr", "versichertennummer", "versicherungsnummer", "ndecontrat",
                     "numérodecontrat", "numerodecontrat", "nºdepóliza", "númerodepóliza", "apólice", "polizza",
                     "authorisationcode", "authorizationcode", "priorauthorization", "preauthnumber"), "INSURANCE_ID"),
    **dict.fromkeys(("vin", "licenseplate", "licenceplate", "platenumber", "kennzeichen", "placas", "placa",
                     "matrícula", "immatriculation", "targa", "kenteken", "numberplate", "regplate"),
                    "VEHICLE_ID"),
    **dict.fromkeys(("imei", "deviceid", "serialnumber", "serial", "serialno", "udid", "advertisingid", "idfa",
                     "hostname", "computername"), "DEVICE_ID"),
    **dict.fromkeys(NAME_KEYS, "PERSON"),
    # the same fields in the languages forms and records come in, and the ids of claim forms and statements
    **dict.fromkeys(("usuario", "usuário", "usuarioderede", "usuárioderede", "usuariodered", "nomedeusuário", "nombredeusuario",
                     "gebruiker", "gebruikersnaam", "utilisateur", "nomdutilisateur", "identifiant", "benutzer",
                     "benutzername", "utente", "nomeutente", "użytkownik", "uzytkownik", "loginid", "networkuser",
                     "networklogin", "windowslogin", "aduser", "samaccountname"), "USERNAME"),
    **dict.fromkeys(("contraseña", "contrasena", "senha", "motdepasse", "passwort", "kennwort", "wachtwoord", "hasło",
                     "haslo", "katasandi", "sandi", "temppassword", "temporarypassword",
                     "initialpassword"), "PASSWORD"),
    **dict.fromkeys(("fechadenacimiento", "fechanacimiento", "fechadenac", "geburtsdatum", "gebdatum", "datadenascimento",
                     "datanascimento", "datedenaissance", "datadinascita", "geboortedatum", "dataurodzenia",
                     "tanggallahir", "tgllahir", "tempattgllahir", "tempattanggallahir", "ngàysinh"), "DATE_OF_BIRTH"),
    **dict.fromkeys(("dirección", "direccion", "domicilio", "endereço", "endereco", "adresse", "anschrift",
                     "indirizzo", "adres", "woonadres", "adresdomowy", "alamat", "địachỉ", "direcciondomicilio",
                     "addressonfile", "pickupaddress", "deliveryaddress", "homeaddr"), "STREET_ADDRESS"),
    **dict.fromkeys(("account", "accountref", "accountreference"), "CUSTOMER_ID"),
    **dict.fromkeys(("ninumber", "nationalinsurancenumber", "nationalinsurance", "ppsn", "ppsnumber", "ohip",
                     "ohipnumber", "healthcardnumber", "healthcard", "medicalcardno", "medicalcardnumber", "medicalcard",
                     "gmscard", "ehic", "ehicno"), "NATIONAL_ID"),
    **dict.fromkeys(("personeelsnr", "personeelsnummer", "medewerkernr", "nrewid", "nrewidencyjny", "matrícula",
                     "numeroempleado", "númeroempleado", "employeeref", "hireid", "newhireid"), "EMPLOYEE_ID"),
    **dict.fromkeys(("adaccount", "adlogin", "samaccount", "iamuser", "githubuser", "github", "gitlab",
                     "slackhandle"), "USERNAME"),
    **dict.fromkeys(("policyholderid", "subscriberid", "subscribernumber", "subscriberno", "guarantoracct",
                     "guarantoraccount", "patientaccount", "patientaccountno", "patientacct", "patcntl",
                     "patientcontrol", "patientcontrolnumber", "tenantid", "tenantnumber", "tenantref", "memberno",
                     "clientcode", "customercode", "accountholderid"), "CUSTOMER_ID"),
    **dict.fromkeys(("mbi", "medicareid", "medicarembi", "medicaidid", "medicaidnumber", "shano", "shanumber",
                     "nhifno", "nhifnumber", "philhealth", "philhealthno", "tesserasanitaria", "policyid",
                     "insuredsidnumber", "insuredid"), "INSURANCE_ID"),
    **dict.fromkeys(("cvu", "cbu", "clabe", "rekening", "norekening", "nomorrekening", "cuenta", "numerodecuenta",
                     "númerodecuenta", "conta", "contacorrente", "kontonummer", "rekeningnummer", "numerodeconta",
                     "bvn", "accountnumberiban"), "US_BANK_NUMBER"),
    **dict.fromkeys(("idno", "cedula", "cédula", "céduladeciudadanía", "ceduladeciudadania", "rfc", "krapin", "npwp",
                     "ktp", "nik", "nomorinduk", "cnic", "nicno", "cuil", "cuit", "philsys", "philsysno", "sss",
                     "sssno", "umid", "tinno", "titulodeeleitor", "rgno", "ine", "clavedeelector", "saidnumber",
                     "said", "idnr", "ausweisnummer", "personalausweisnummer", "cartadidentità", "cni"), "NATIONAL_ID"),
    **dict.fromkeys(("vehicleregmark", "regmark", "registrationmark", "vehiclereg", "vehicleregistration",
                     "vehicleregno", "regno", "registrationnumber", "fin", "fahrzeugidentnummer"), "VEHICLE_ID"),
    **dict.fromkeys(("givennames", "givenname", "forenames", "othernames", "firstnames", "nameofpatient",
                     "nameofinsured"), "PERSON"),
}
# fields that name what their value is not: a person found in "Prescription: Zolpidem" or "City: San Antonio" is the
# NER's mistake. The redactor drops PERSON detections inside such values (spans of type NO_PERSON mark them).
NO_PERSON = "_NO_PERSON"
HEADER = "_HEADER"  # a table's header line: what the NER model finds there ("Ville", "Statut") is a column name
NON_PERSON_KEYS = frozenset({
    "prescription", "medication", "medications", "medicine", "drug", "drugs", "diagnosis", "condition", "allergy",
    "allergies", "procedure", "treatment", "symptom", "symptoms", "product", "productname", "item", "itemname",
    "company", "companyname", "organization", "organisation", "employer", "hospital", "facility", "clinic",
    "department", "state", "country", "county", "region", "province", "jobtitle", "occupation", "role", "position",
    "category", "status", "brand", "model", "eventname", "reason", "result", "race", "ethnicity", "gender", "sex"})
_KEY_WORD = regex.compile(r"\p{Lu}?\p{Ll}+|\p{Lu}+(?!\p{Ll})|\d+")
_NULLS = frozenset({"", "n/a", "na", "none", "null", "nil", "unknown", "-", "--", "\\n", "tbd", "redacted", "true",
                    "false", "yes", "no"})
_NAME_VALUE = regex.compile(r"(?:\p{L}[\p{L}'’-]*\.?)(?:[ \t+]+\p{L}[\p{L}'’-]*\.?){0,4}")  # "+": "Ana+Lima"
_PHONE_VALUE = regex.compile(r"[+(]?\d[\d ().\-/]{5,22}\d(?:[ \t]*(?:x|ext\.?)[ \t]*\d{1,5})?")


def field_type(key: str) -> tuple[str | None, bool]:
    """(entity type, loose) for a field name: its longest known ending, so "patient.last_name" is a surname."""
    words = [w.lower() for w in _KEY_WORD.findall(key)]
    for i in range(len(words)):
        k = "".join(words[i:])
        if k in FIELD_TYPES:
            return FIELD_TYPES[k], False
        if k in LOOSE_NAME_KEYS:
            return "PERSON", True
        if k in NON_PERSON_KEYS:
            return NO_PERSON, False
    return None, False


SQL_TYPE = regex.compile(r"(?i)(?:n?(?:var)?char2?|text|(?:big|small|tiny)?int(?:eger)?|decimal|numeric|float|double|real|"
                         r"bool(?:ean)?|date|datetime|timestamp(?:tz)?|time|uuid|inet|cidr|json|jsonb|blob|clob|"
                         r"(?:big)?serial|string|number|bytes)(?:[ \t]*\(\d+(?:,[ \t]*\d+)?\))?[,;]?")


def field_value_ok(etype: str, value: str, loose: bool = False) -> bool:
    """The value has the shape its field promises; a column of the wrong kind ("address: see above") is ignored."""
    low = value.lower().strip()
    if SQL_TYPE.fullmatch(value.strip()):
        return False  # a schema: "national_id VARCHAR(32)", "email: string"
    if etype == NO_PERSON:
        return low not in _NULLS
    if low in _NULLS or len(value) > 160:
        return False
    if etype == "PERSON":
        if not (_NAME_VALUE.fullmatch(value) or _SURNAME_COMMA_GIVEN.fullmatch(value)) or len(value) > 60 or (
                low in english_stop_words()):
            return False
        if not loose:  # a surname column holds "Brown" and "King" too
            return True
        if " " not in low and zipf(low) >= 4.5 and low not in raw_name_lists()[0]:
            return False  # "Customer: Sure, 9th of October": a reply, not a name
        return bool(regex.match(TITLES + r"\.?[ \t]", value)) or (low not in COMMON_WORDS
                                                                   and person_like(value, cased=False))
    if etype == "PHONE_NUMBER":
        return bool(_PHONE_VALUE.fullmatch(value)) and 7 <= len(digits(value)) <= 15
    if etype == "EMAIL_ADDRESS":
        return "@" in value and " " not in value
    if etype == "STREET_ADDRESS":
        return bool(regex.search(r"\p{L}", value)) and len(value.split()) >= 2
    if etype == "POSTCODE":
        return bool(regex.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 -]{1,8}[A-Za-z0-9]", value)) and has_digit(value)
    if etype == "LOCATION":
        return bool(_NAME_VALUE.fullmatch(value)) and low not in COMMON_WORDS
    if etype in ("USERNAME", "PASSWORD"):
        return " " not in value.strip()
    if etype == "ROUTING_NUMBER" and regex.fullmatch(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?", value):
        return True  # a BIC ("DEUTDEFF500") has no digit to require
    if etype == "IBAN_CODE":  # a column or field named IBAN: its shape is enough (a typo is still an account)
        return iban_ok(value) or bool(regex.fullmatch(r"[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}", value.strip()))
    return has_digit(value) and len(value) <= 40  # ids, dates of birth, account numbers


# "key": "value" (JSON, Python dicts) and key: value / key = value (YAML, logs, forms); the value runs to the end of
# the line, to a separator before the next key, or to the closing quote. It is only looked at (a lookahead), so
# the next key on the same line is matched too.
_FIELD = regex.compile(
    r"(?P<q>[\"']?)(?P<k>\p{L}[\p{L}\d_.-]*(?:[ \t]\p{L}[\p{L}\d_.-]*){0,3})(?P=q)[ \t]*(?::|=>?)[ \t]*"
    r"(?=\"(?P<dq>(?:[^\"\\\n]|\\.){0,160})\"|'(?P<sq>[^'\n]{0,160})'|(?P<bare>[^\s\"'{\[][^\n]{0,200}))")
_KEY_AHEAD = r"(?=\p{L}[\p{L}\d_.-]{0,20}(?: \p{L}[\p{L}\d_.-]{0,20}){0,2}[ \t]*:)"  # a short label and its colon
_NEXT_KEY = regex.compile(r"[ \t]*[,;|&][ \t]*[\"']?\p{L}[\p{L}\d_. -]{0,40}[\"']?[ \t]*(?::|=)|[ \t]*[;|}\]\t&<]"
                          r"|\.[ \t]+(?=\p{Lu})" + _KEY_AHEAD  # "PCN. Meds: …"
                          + r"|[ \t]+[—–][ \t]*|[ \t]+-[ \t]+" + _KEY_AHEAD  # "… — Contact: …", "… - Tel: …"
                          + r"| {2,}" + _KEY_AHEAD + r"| {3,}"  # "Name: …  Exp: …"
                          + r"|[ \t]+(?=\p{L}[\p{L}\d_.-]{0,30}=)")  # log pairs: "last_name=Pryce-Jones employee_no=…"


_NEXT_SENTENCE = regex.compile(r"(?<![A-Z]|\b(?i:st|ave|rd|dr|mt|ft|no|apt|blvd|ln|ct|pl|sq|hwy|co))\.[ \t]+\p{Lu}\p{Ll}*"
                                r"[ \t]+\p{Ll}")
_SPACED_IDS = frozenset({"CREDIT_CARD", "US_BANK_NUMBER", "NATIONAL_ID", "US_SSN", "TAX_ID", "INSURANCE_ID",
                         "CUSTOMER_ID", "EMPLOYEE_ID", "MEDICAL_RECORD", "PASSPORT", "DRIVER_LICENSE", "VEHICLE_ID",
                         "DEVICE_ID", "SORT_CODE"})
_DIGIT_GROUPS = regex.compile(r"[A-Za-z0-9/.-]*\d[A-Za-z0-9/.-]*(?:[ ][A-Za-z0-9/.-]*\d[A-Za-z0-9/.-]*)*")
_ONE_TOKEN = regex.compile(r"[A-Z0-9]{2,4} \d[A-Z]{2}\b|\S+")  # a UK postcode has a space; ids do not
_DATE_START = regex.compile(DATE_VALUE)


_SURNAME_COMMA_GIVEN = regex.compile(r"\p{Lu}[\p{L}'’-]+,[ \t]*\p{Lu}[\p{L}'’-]+(?:[ \t]+\p{Lu}\.?)?"
                                     r"(?=[ \t.]*(?:$|\n|[ \t]{2,}|[;|]|[ \t]+\p{L}[\p{L}\d_.-]*[ \t]*[:=]))")


def _field_value(m: regex.Match, etype: str) -> tuple[int, int]:
    for g in ("dq", "sq"):
        if m.group(g) is not None:
            return m.span(g)
    start, end = m.span("bare")
    if etype == "PERSON" and (inverted := _SURNAME_COMMA_GIVEN.match(m.string, start, end)):
        return start, inverted.end()  # "PATIENT NAME: OKAFOR, CHIDI A.   MRN: …": one person, given name after the comma
    stop = _NEXT_KEY.search(m.string, start, end)
    end = stop.start() if stop else end
    if etype != "STREET_ADDRESS" and (comma := m.string.find(",", start, end)) != -1:
        end = comma  # "Name: Anna Kowalski, 45, teacher": a name stops at the comma, an address does not
    elif etype == "STREET_ADDRESS" and (sentence := _NEXT_SENTENCE.search(m.string, start, end)):
        end = sentence.start()  # "Property address: …, TX 78613. Appraised at …": the next sentence is no address
    while end > start and m.string[end - 1] in " \t.,":
        end -= 1
    # an unquoted value may run into the sentence after it ("MRN: 00482913 admitted"): take what its type allows
    if etype == "PHONE_NUMBER":
        end = start + (len(v.group()) if (v := _PHONE_VALUE.match(m.string, start, end)) else 0)
    elif etype == "DATE_OF_BIRTH" and (v := _DATE_START.match(m.string, start, end)):
        end = v.end()
    elif etype == "PERSON" and len(m.string[start:end].split()) > 3:
        end = start  # "Name: Anna Kowalski admitted today": the name cue and the NER decide
    elif etype == "IBAN_CODE" and (v := IBAN_CANDIDATE.match(m.string, start, end)):
        end = v.end()
    elif etype in _SPACED_IDS and (v := _DIGIT_GROUPS.match(m.string, start, end)):
        end = v.end()  # "4111 1111 1111 1111", "943 476 5919": groups with digits; "00482913 admitted" stops
    elif etype not in ("STREET_ADDRESS", "LOCATION", NO_PERSON, "PERSON"):
        end = v.end() if (v := _ONE_TOKEN.match(m.string, start, end)) else start  # nothing left: no value
    return start, end


def _field_spans(start: int, end: int, etype: str, loose: bool) -> Iterator[Span]:
    if etype != NO_PERSON:
        yield Span(start, end, etype, 0.8 if loose or etype == "LOCATION" else 0.9)
    if etype != "PERSON":
        yield Span(start, end, NO_PERSON, 1.0)


# printed forms align values with dot leaders: "1a. INSURED'S I.D. NUMBER ....... W4829173605",
# "PATIENT'S NAME (Last, First, MI) .. OKAFOR, CHINEDU A", "MBI ................ 7KD2-XF4-TA91"
_DOT_LEADER = regex.compile(r"(?<=[\p{L}\d)#.][ \t]*)[ \t]*\.{2,}[ \t]+|(?<=\p{L}[ \t]*)[ \t]*\.{4,}[ \t]*")
_LEADER_KEY_NOISE = regex.compile(r"(?<=\p{L})['’](?=[Ss]\b)|[ \t]*\([^()\n]{0,40}\)(?=[ \t]*\.{2,})")


def _leaders_as_colons(text: str) -> str:
    """The text with dot leaders read as colons (same length, so spans still point into the text)."""
    text = _LEADER_KEY_NOISE.sub(lambda m: "_" if m.group() in ("'", "’") else " " * len(m.group()), text)
    return _DOT_LEADER.sub(lambda m: ":" + " " * (len(m.group()) - 1), text)


def key_value_spans(text: str) -> Iterator[Span]:
    if "..." in text or ". .." in text:
        text = _leaders_as_colons(text)
    if ":" not in text and "=" not in text:
        return
    for m in _FIELD.finditer(text):
        etype, loose = field_type(m.group("k"))
        if etype is None:
            continue
        start, end = _field_value(m, etype)
        if end > start and field_value_ok(etype, text[start:end], loose):
            yield from _field_spans(start, end, etype, loose)


# <last_name>Liang</last_name> (XML, HTML-ish exports)
_XML_FIELD = regex.compile(r"<(?P<k>[\p{L}_][\w.:-]{0,40})(?:[ \t][^<>\n]{0,200})?>[ \t]*(?P<v>[^<>\n]{1,160}?)[ \t]*"
                           r"</(?P=k)>")
# INSERT INTO patients (first_name, last_name) VALUES ('Aisha', 'Liang'), (…): each value typed by its column
_SQL_INSERT = regex.compile(r"(?i:\binsert[ \t]+into[ \t]+[\w.\"`\[\]]+[ \t]*)\((?P<cols>[^()]{1,600})\)"
                            r"(?i:[ \t\n]*values[ \t\n]*)")


# <input name="fullname" value="Priyanka Chatterjee">: an HTML form field, typed by its name (either order)
_HTML_INPUT = regex.compile(r"<[^<>\n]{0,200}?\b(?:name|id)=[\"'](?P<k>[\w.:\[\]-]{1,40})[\"'][^<>\n]{0,200}?\bvalue="
                            r"[\"'](?P<v>[^\"'<>\n]{1,160})[\"']|<[^<>\n]{0,200}?\bvalue=[\"'](?P<v>[^\"'<>\n]{1,160})[\"']"
                            r"[^<>\n]{0,200}?\b(?:name|id)=[\"'](?P<k>[\w.:\[\]-]{1,40})[\"']")


def xml_spans(text: str) -> Iterator[Span]:
    if "</" in text:
        for m in _XML_FIELD.finditer(text):
            etype, loose = field_type(m.group("k").rsplit(":", 1)[-1])
            if etype is not None and field_value_ok(etype, m.group("v"), loose):
                yield from _field_spans(*m.span("v"), etype, loose)
    if "value=" in text:
        for m in _HTML_INPUT.finditer(text):
            etype, loose = field_type(regex.split(r"[.:\[\]]", m.group("k").strip("[]"))[-1] or m.group("k"))
            if etype is not None and field_value_ok(etype, m.group("v"), loose):
                yield from _field_spans(*m.span("v"), etype, loose)


def _sql_tuples(text: str, pos: int) -> Iterator[list[tuple[int, int]]]:
    """The value tuples after VALUES, each as cell spans (quotes dropped; '' is an escaped quote)."""
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\n,":
            pos += 1
        if pos >= n or text[pos] != "(":
            return
        pos += 1
        cells: list[tuple[int, int]] = []
        while pos < n:
            while pos < n and text[pos] in " \t\n":
                pos += 1
            if pos < n and text[pos] in "'\"":
                q, start = text[pos], pos + 1
                pos = start
                while pos < n and not (text[pos] == q and text[pos + 1:pos + 2] != q):
                    pos += 2 if text[pos] == q else 1
                cells.append((start, pos))
                pos += 1
            else:
                start = pos
                while pos < n and text[pos] not in ",)\n":
                    pos += 1
                cells.append((start, len(text[:pos].rstrip())))
            while pos < n and text[pos] in " \t\n":
                pos += 1
            if pos >= n or text[pos] == ")":
                pos += 1
                yield cells
                break
            if text[pos] != ",":
                return  # not a value list after all
            pos += 1


def sql_spans(text: str) -> Iterator[Span]:
    if "(" not in text:
        return
    for m in _SQL_INSERT.finditer(text):
        types = [field_type(c.strip().strip("\"`[]")) for c in m.group("cols").split(",")]
        for cells in _sql_tuples(text, m.end()):
            if len(cells) != len(types):
                break
            for (s, e), (etype, loose) in zip(cells, types, strict=True):
                if etype is not None and e > s and field_value_ok(etype, text[s:e], loose):
                    yield from _field_spans(s, e, etype, loose)


_TABLE_DELIMS = ("\t", "|", ";", ",", "  ")  # "  ": fixed-width columns, two or more spaces apart
_HEADER_CELL = regex.compile(r"[\p{L}\d_.#/()°º?-]+(?:[ ][\p{L}\d_.#/()°º?-]+){0,3}")  # "last_name", "Date of birth"


def _cells(line: str, offset: int, delim: str) -> list[tuple[int, int]]:
    """Cell spans of one delimited line (CSV quoting honoured; Markdown's outer pipes dropped), trimmed."""
    if delim == "  ":
        return [(offset + m.start(), offset + m.end()) for m in regex.finditer(r"[^ \t]+(?: [^ \t]+)*", line)]
    out, i, n = [], 0, len(line)
    if delim == "|":
        body = line.strip()
        if not (body.startswith("|") or body.endswith("|") or body.count(" | ") >= 2):
            return []  # psql and plain-text reports have no outer pipes: "Time  | Patient | DOB"
        lead = len(line) - len(line.lstrip())
        i, n = lead + (1 if body.startswith("|") else 0), lead + len(body) - (1 if body.endswith("|") else 0)
    while i <= n:
        j = i
        while j < n and line[j] in " \t" and delim not in " \t":
            j += 1
        if j < n and line[j] == '"':  # a quoted cell: up to the quote before the delimiter ("" is an escaped quote)
            k = j + 1
            while k < n and not (line[k] == '"' and (k + 1 >= n or line[k + 1] != '"')):
                k += 2 if line[k] == '"' else 1
            s, e = j + 1, min(k, n)
            nxt = line.find(delim, k, n)
        else:
            nxt = line.find(delim, i, n)
            s, e = i, (n if nxt == -1 else nxt)
        while s < e and line[s] in " \t":
            s += 1
        while e > s and line[e - 1] in " \t":
            e -= 1
        out.append((offset + s, offset + e))
        if nxt == -1:
            break
        i = nxt + 1
    return out


def _key_value_row(text: str, off: int, line: str) -> tuple[str, tuple[int, int], tuple[str, bool]] | None:
    """(delimiter, value cell, its type) for a two-cell line whose first cell is a field name and whose second is not."""
    for delim in _TABLE_DELIMS:
        if delim in line:
            cells = _cells(line, off, delim)
            if len(cells) == 2:
                key, value = (text[s:e] for s, e in cells)
                ktype = field_type(key) if _HEADER_CELL.fullmatch(key) else (None, False)
                if ktype[0] is not None and field_type(value)[0] is None:
                    return delim, cells[1], ktype
    return None


def table_spans(text: str) -> Iterator[Span]:
    """Cells of CSV, TSV, semicolon and Markdown tables, typed by their column's header. A header is a line whose
    cells include a known field name; the rows are the lines after it with the same number of cells. A two-column
    table of field names and values ("| Surname | Liang |") is read row by row."""
    if "\n" not in text:
        return
    lines, pos = [], 0
    for line in text.split("\n"):
        lines.append((pos, line))
        pos += len(line) + 1
    i, prev_kv = 0, False
    while i < len(lines):
        off, line = lines[i]
        kv = _key_value_row(text, off, line)
        if kv is not None:  # "| First name | Anna |": unless it heads a two-column table ("name,score\nAnna,5")
            nxt = _cells(lines[i + 1][1], lines[i + 1][0], kv[0]) if i + 1 < len(lines) else []
            if prev_kv or len(nxt) != 2 or _key_value_row(text, *lines[i + 1]) is not None:
                (s, e), (etype, loose) = kv[1], kv[2]
                if field_value_ok(etype, text[s:e], loose):
                    yield from _field_spans(s, e, etype, loose)
                i, prev_kv = i + 1, True
                continue
        # a two-cell line with an unknown field ("| Weight | 135 |") keeps a run of field/value rows going
        prev_kv = any(d in line and len(_cells(line, off, d)) == 2 for d in _TABLE_DELIMS)
        header = None
        for delim in _TABLE_DELIMS if i < len(lines) - 1 else ():
            if delim not in line:
                continue
            cells = _cells(line, off, delim)
            types = [field_type(text[s:e]) for s, e in cells]
            if len(cells) >= 2 and any(t for t, _ in types) and all(_HEADER_CELL.fullmatch(text[s:e]) for s, e in cells):
                header = (delim, types)
                yield Span(off, off + len(line), HEADER, 1.0)  # the header names columns ("Nom\tVille"), no one
                break
        i += 1
        if header is None:
            continue
        delim, types = header
        while i < len(lines):
            roff, row = lines[i]
            if delim == "|" and regex.fullmatch(r"[ \t|:+-]*-[ \t|:+-]*", row):
                i += 1  # Markdown's |---|---| line, psql's ----+----
                continue
            cells = _cells(row, roff, delim)
            if len(cells) != len(types):
                break
            for (s, e), (etype, loose) in zip(cells, types, strict=True):
                if etype is not None and e > s and field_value_ok(etype, text[s:e], loose):
                    yield from _field_spans(s, e, etype, loose)
            i += 1


# HL7 v2 messages (hospital interfaces): which field of which segment holds what. Components are "^"-separated, so
# (field, component) pairs; component 0 is the whole field. PID-3 patient ids, PID-5 name (family^given^middle), PID-7
# birth date, PID-11 address (street^other^city^state^zip), PID-13/14 phones, PID-19 SSN, PID-20 licence; the next of
# kin (NK1), guarantor (GT1), insured (IN1) and the clinicians in PV1/ORC/OBR the same way. Timestamps (MSH-7) are not.
HL7_FIELDS: dict[str, dict[int, tuple[tuple[int, str], ...]]] = {
    "PID": {2: ((1, "MEDICAL_RECORD"),), 3: ((1, "MEDICAL_RECORD"),), 4: ((1, "MEDICAL_RECORD"),),
            5: ((1, "PERSON"), (2, "PERSON"), (3, "PERSON")), 6: ((1, "PERSON"), (2, "PERSON")),
            7: ((0, "DATE_OF_BIRTH"),), 9: ((1, "PERSON"), (2, "PERSON")),
            11: ((1, "STREET_ADDRESS"), (2, "STREET_ADDRESS"), (5, "POSTCODE")),
            13: ((1, "PHONE_NUMBER"), (4, "EMAIL_ADDRESS"), (7, "PHONE_NUMBER")),
            14: ((1, "PHONE_NUMBER"), (7, "PHONE_NUMBER")), 18: ((1, "US_BANK_NUMBER"),), 19: ((0, "US_SSN"),),
            20: ((1, "DRIVER_LICENSE"),)},
    "NK1": {2: ((1, "PERSON"), (2, "PERSON"), (3, "PERSON")), 4: ((1, "STREET_ADDRESS"), (2, "STREET_ADDRESS"),
                                                                  (5, "POSTCODE")),
            5: ((1, "PHONE_NUMBER"), (7, "PHONE_NUMBER")), 6: ((1, "PHONE_NUMBER"), (7, "PHONE_NUMBER"))},
    "GT1": {3: ((1, "PERSON"), (2, "PERSON"), (3, "PERSON")), 5: ((1, "STREET_ADDRESS"), (2, "STREET_ADDRESS"),
                                                                  (5, "POSTCODE")),
            6: ((1, "PHONE_NUMBER"), (7, "PHONE_NUMBER")), 8: ((0, "DATE_OF_BIRTH"),), 12: ((0, "US_SSN"),)},
    "IN1": {16: ((1, "PERSON"), (2, "PERSON"), (3, "PERSON")), 18: ((0, "DATE_OF_BIRTH"),),
            19: ((1, "STREET_ADDRESS"), (2, "STREET_ADDRESS"), (5, "POSTCODE")), 36: ((0, "INSURANCE_ID"),),
            49: ((1, "INSURANCE_ID"),)},
    "MRG": {1: ((1, "MEDICAL_RECORD"),)},
    "PV1": {n: ((2, "PERSON"), (3, "PERSON")) for n in (7, 8, 9, 17)},
    "ORC": {12: ((2, "PERSON"), (3, "PERSON"))},
    "OBR": {16: ((2, "PERSON"), (3, "PERSON"))},
}
HL7_SEGMENT = regex.compile(r"(?m)^(?P<seg>[A-Z][A-Z0-9]{2})\|(?P<body>[^\r\n]*)")


def hl7_spans(text: str) -> Iterator[Span]:
    if "|" not in text or not regex.search(r"(?m)^MSH\|\^~\\&|^PID\|", text):
        return
    for m in HL7_SEGMENT.finditer(text):
        wanted = HL7_FIELDS.get(m.group("seg"))
        if not wanted:
            continue
        pos = m.start("body")
        for n, field in enumerate(m.group("body").split("|"), start=1):
            for rep_offset, value in _hl7_repeats(field):
                for comp, etype in wanted.get(n, ()):
                    start, part = _hl7_component(value, comp)
                    part_start = pos + rep_offset + start
                    stripped = part.strip()
                    if stripped and (etype != "PERSON" or regex.search(r"\p{L}", stripped)):
                        lead = len(part) - len(part.lstrip())
                        yield Span(part_start + lead, part_start + lead + len(stripped), etype, 0.9)
            pos += len(field) + 1


def _hl7_repeats(field: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for value in field.split("~"):
        yield offset, value
        offset += len(value) + 1


def _hl7_component(value: str, comp: int) -> tuple[int, str]:
    if comp == 0:
        return 0, value.split("^")[0] if "^" in value and value.split("^")[0].isdigit() else value
    parts = value.split("^")
    if comp > len(parts):
        return 0, ""
    return sum(len(p) + 1 for p in parts[:comp - 1]), parts[comp - 1]


# ASC X12 837/835/270 claims (segments end in "~", elements split by "*"): NM1 names a party, a person when its
# second element is 1; N3/N4 after a subscriber or patient NM1 are that person's address, DMG*D8 the birth date,
# REF*SY an SSN, PER the contact's phone
X12_SEGMENT = regex.compile(r"(?m)(?:^|~)[ \t]*(?P<seg>[A-Z][A-Z0-9]{1,2})\*(?P<body>[^~\n]*)")
X12_PERSON_PARTIES = frozenset({"IL", "QC", "82", "DN", "DK", "71", "72", "P3", "IL1", "03", "QD", "PR1"})
X12_ADDRESS_PARTIES = frozenset({"IL", "QC", "03", "QD"})
X12_ID_QUALIFIERS = {"MI": "INSURANCE_ID", "34": "US_SSN", "II": "ID_NUMBER", "XX": "MEDICAL_LICENSE",
                     "SY": "US_SSN", "EI": None, "24": None, "PI": None, "FI": None}


def x12_spans(text: str) -> Iterator[Span]:
    if "~" not in text or not regex.search(r"(?:^|~)[ \t]*(?:ISA|GS|ST|NM1)\*", text, regex.M):
        return
    party = ""
    for m in X12_SEGMENT.finditer(text):
        seg, pos = m.group("seg"), m.start("body")
        elements, offsets = m.group("body").split("*"), []
        for e in elements:
            offsets.append(pos)
            pos += len(e) + 1
        wanted: list[tuple[int, str]] = []
        if seg == "NM1" and len(elements) >= 2:
            party = elements[0] if elements[1] == "1" else ""
            if party in X12_PERSON_PARTIES:
                wanted = [(2, "PERSON"), (3, "PERSON"), (4, "PERSON")]
                if len(elements) >= 9 and X12_ID_QUALIFIERS.get(elements[7], "ID_NUMBER"):
                    wanted.append((8, X12_ID_QUALIFIERS.get(elements[7], "ID_NUMBER")))
        elif seg == "N3" and party in X12_ADDRESS_PARTIES:
            wanted = [(0, "STREET_ADDRESS"), (1, "STREET_ADDRESS")]
        elif seg == "N4" and party in X12_ADDRESS_PARTIES:
            wanted = [(2, "POSTCODE")]
        elif seg == "DMG" and len(elements) >= 2 and elements[0] == "D8":
            wanted = [(1, "DATE_OF_BIRTH")]
        elif seg == "REF" and elements[0] in ("SY", "1W", "IG") and party in X12_PERSON_PARTIES | {""}:
            wanted = [(1, "US_SSN" if elements[0] == "SY" else "INSURANCE_ID")]
        elif seg == "PER" and len(elements) >= 2:
            wanted = [(1, "PERSON")] + [(i + 1, "PHONE_NUMBER") for i in range(2, len(elements) - 1, 2)
                                        if elements[i] in ("TE", "CP", "HP", "WP", "FX")]
        for i, etype in wanted:
            if i < len(elements) and (value := elements[i].strip()) and (etype != "PERSON" or value.isalpha()
                                                                        or regex.fullmatch(r"[\p{L}' -]+", value)):
                start = offsets[i] + len(elements[i]) - len(elements[i].lstrip())
                yield Span(start, start + len(value), etype, 0.9)


def x12_line(text: str, pos: int) -> bool:
    """`pos` is inside an X12 segment: its numbers are dates, control numbers and codes unless a field says more."""
    line_start = max(text.rfind("\n", 0, pos), text.rfind("~", 0, pos)) + 1
    return bool(regex.match(r"[ \t]*[A-Z][A-Z0-9]{1,2}\*", text[line_start:pos + 1])) and "~" in text


def field_spans(text: str) -> Iterator[Span]:
    yield from hl7_spans(text)
    yield from x12_spans(text)
    yield from key_value_spans(text)
    yield from table_spans(text)
    yield from xml_spans(text)
    yield from sql_spans(text)


# ------------------------------------------------------------------------------------------------- all
def rule_spans(text: str) -> list[Span]:
    """Everything privtune's recognizers find in `text` (unresolved: overlaps are merged by the redactor)."""
    return [span for recognizer in RECOGNIZERS for span in recognizer(text)
            if span.entity_type not in SECRET_TYPES or not TEMPLATE_VALUE.fullmatch(text, span.start, span.end)]


SECRET_TYPES = frozenset({"PASSWORD", "API_KEY", "USERNAME"})
# What runbooks, docs and masked logs write where a secret would go: "password=<NEW_PASSWORD>", "${DB_PASS}",
# "{{ vault_token }}", "$REDIS_PASSWORD", "********". Redacting it would hide how the template reads, and it is no one's.
TEMPLATE_VALUE = regex.compile(r"[\"'`]?(?:<[^<>\s]{1,60}>|\$\{[^{}]{1,80}\}?|\$?\{\{[^{}]{0,80}(?:\}\})?|\$[A-Z_][A-Z0-9_]{2,}|"
                               r"%\(\w+\)s|\*{3,}|•{3,}|[xX]{4,}|\[(?:REDACTED|redacted|HIDDEN|hidden|MASKED|masked)\])"
                               r"[\"'`]?[.,;]?")


RECOGNIZERS: tuple[Callable[[str], Iterator[Span]], ...] = (
    pattern_spans, phone_spans, iban_spans, address_spans, date_spans, spoken_spans, lower_name_spans, name_spans,
    party_spans,
    titled_party_spans, kin_name_spans, team_name_spans, display_name_spans, speaker_spans, mail_and_mrz_spans,
    field_spans)
