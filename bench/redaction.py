"""Redaction quality and speed: privtune vs vanilla Presidio, same labelled documents, same run.

Sources (each scored separately; `unseen` = gretel + wnut17, the sources privtune was not developed against):
- generator: our own templates filled with Faker values in several locales (every entity type privtune
  handles, noisy casing, multi-line addresses, secrets). privtune's recognizers were developed against it.
- gretel: ../shared/data/gretel_pii_samples, notes with the patient's name/email/phone columns located in the
  note text (labels derived; names of other people in a note are unlabelled, so they count against precision).
- wnut17: ../shared/data/wnut17_ner dev + test, person spans from the BIO tags (noisy user text).
- records: gretel's patient tables rendered as JSON, label lines, CSV, Markdown, field/value tables, XML and SQL
  (developed against since 2026-11-28).
- nlupp: ../shared/data/nlupp bank and hotel requests, `person_name` slots as PERSON (mostly lower-case names;
  developed against since 2026-11-28 afternoon, after one measurement as unseen data).
- handwritten: bench/data/handwritten/*.jsonl, documents with every identifier labelled, written for this benchmark by
  separate writers who never saw privtune's rules (hospital and HR letters, bank and shop chats, IT tickets and configs,
  informal chats in code-mixed English, public-sector letters with postal blocks, HL7/CSV/JSON/SQL records and call
  transcripts, in several languages). Each set was measured once as unseen data, then developed against
  (bench/README.md gives the first-contact numbers). Ships with the repository, so it runs without ../shared.
- benign: banking77 test + clinc150 test customer messages (no PII labels): not in precision/recall; reported
  as identifier/secret detections per 1,000 documents, which are nearly all false alarms.

Metrics: precision (predicted spans overlapping a gold span / predicted spans), span recall (gold spans with
>= 50% of their characters covered by any prediction), char recall, F2 (precision, span recall). For a source
that labels only some types (gretel: PERSON/EMAIL/PHONE; wnut17: PERSON), predictions of other types are left
out of its precision: an unlabelled date in a gretel note is not a false positive. Recall counts coverage by a
prediction of any type: a name redacted as USERNAME is still gone.

Vanilla Presidio = AnalyzerEngine with its default recognizers and the same spaCy model (full pipeline, as
Presidio needs lemmas for context words), batched through BatchAnalyzerEngine. Its EmailRecognizer validates
with tldextract, which downloads the public suffix list; the whole benchmark runs under privtune's egress
guard, so that recognizer is rebuilt from its own PATTERNS and CONTEXT without the suffix-list check (the only
difference from stock Presidio; it can only add email detections, never remove them).

    .venv/bin/python bench/redaction.py [--n-generated 600] [--workers 2] [--out bench/results/redaction.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import string
import sys
import time
from collections import defaultdict
from pathlib import Path

from privtune.data.recognizers import BASE58_ALPHABET, BECH32_ALPHABET, bech32_polymod, luhn_ok

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LOCALES = ("en_US", "en_GB", "en_IN", "de_DE", "fr_FR", "es_ES", "en_AU", "it_IT")

# ---------------------------------------------------------------------------------------------- generator
# {TYPE} markers are replaced by a value; everything else must be free of personal data.
TEMPLATES = [
    "Hi, my name is {PERSON} and I need help with my card.",
    "Dear {PERSON},\nyour statement is ready. Kind regards,\n{PERSON}",
    "Customer {PERSON} called about a late fee; reach them on {PHONE_NUMBER}.",
    "Please email {EMAIL_ADDRESS} or ring {PHONE_NUMBER} before noon.",
    "Send the replacement card to:\n{STREET_ADDRESS}",
    "I moved to {STREET_ADDRESS} last month, please update my file.",
    "New postcode is {POSTCODE}, the street stays the same.",
    "My card number is {CREDIT_CARD} and it was declined twice.",
    "Charge {CREDIT_CARD} for the annual fee.",
    "Wire the refund to IBAN {IBAN_CODE} please.",
    "refund to {IBAN_CODE} asap thanks",
    "Account number {US_BANK_NUMBER}, routing number {ROUTING_NUMBER}.",
    "My sort code is {SORT_CODE} and account {US_BANK_NUMBER}.",
    "SSN: {US_SSN}. Please verify my identity.",
    "my social security number is {US_SSN}",
    "ITIN {US_ITIN} was used on the tax form.",
    "Passport number {PASSPORT}, expires next year.",
    "Driver's license {DRIVER_LICENSE} was scanned at the branch.",
    "Our EIN is {TAX_ID} for the business account.",
    "Aadhaar {NATIONAL_ID} linked to the account.",
    "NHS number {NATIONAL_ID} on the referral letter.",
    "National Insurance number {NATIONAL_ID} is on my payslip.",
    "PAN card {NATIONAL_ID} submitted for KYC.",
    "Patient MRN {MEDICAL_RECORD} admitted to ward 4 with chest pain.",
    "Insurance policy number {INSURANCE_ID} covers the procedure.",
    "Employee ID {EMPLOYEE_ID} requested leave.",
    "Customer ID: {CUSTOMER_ID} — escalate to tier 2.",
    "Date of birth: {DATE_OF_BIRTH}.",
    "I was born on {DATE_OF_BIRTH} if you need it.",
    "Login from {IP_ADDRESS} was blocked by the firewall.",
    "Device MAC {MAC_ADDRESS} is not registered.",
    "See my profile at {URL} for the documents.",
    "username: {USERNAME} can't log in",
    "Ping me on the forum, I'm @{USERNAME}.",
    "My password is {PASSWORD} but it says invalid.",
    "pwd: {PASSWORD}",
    "The config has aws_access_key_id = {API_KEY} in plain text.",
    "Token {API_KEY} leaked in the build log.",
    "export API_SECRET={API_KEY}",
    "Authorization: Bearer {API_KEY}",
    "Here is the key:\n{PRIVATE_KEY}\nplease rotate it.",
    "Contact {PERSON} ({EMAIL_ADDRESS}) at {STREET_ADDRESS} about the loan.",
    "Thanks,\n{PERSON}\n{PHONE_NUMBER}",
    "{PERSON} from accounts says the transfer failed; call {PHONE_NUMBER}.",
    "Appointment for {PERSON}, DOB {DATE_OF_BIRTH}, MRN {MEDICAL_RECORD}.",
    "I spoke to {PERSON} yesterday and she confirmed the refund.",
    "Please ask {PERSON} to sign the form.",
    "The CVV is {CREDIT_CARD} if you need it for the refund.",
    "Send the refund in bitcoin to {CRYPTO}, not to my card.",
    "my wallet: {CRYPTO}",
    "The VIN is {VEHICLE_ID} on the claim form.",
    "Damage report for {VEHICLE_ID}, rear bumper.",
    "A car with licence plate {VEHICLE_ID} was parked in our lot all day.",
    "Stolen handset, IMEI {DEVICE_ID}, please block it.",
    "The tracker last put her at {GPS_COORDINATES} last night.",
    "Location: {GPS_COORDINATES}",
    "Prescriber DEA {MEDICAL_LICENSE} signed the prescription.",
    "Codice fiscale {NATIONAL_ID} per la pratica.",
    "DNI/NIE {NATIONAL_ID} adjunto al expediente.",
    "Her henkilötunnus {NATIONAL_ID} is on the application.",
    "The fee was charged twice this month and I want it reversed.",
    "Why is my transfer still pending after three days?",
    "Can you raise my daily limit for the weekend?",
]
NOISE = ("lower", "upper", "asis", "asis", "asis", "asis")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _nhs(rng: random.Random) -> str:
    while True:
        ds = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(ds)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            s = "".join(map(str, ds)) + str(check)
            return f"{s[:3]} {s[3:6]} {s[6:]}"


def _luhn_complete(body: str) -> str:
    return next(body + d for d in string.digits if luhn_ok(body + d))


def _crypto_address(rng: random.Random) -> str:
    """A well-formed (checksummed) legacy or SegWit bitcoin address, or an Ethereum-style 0x account."""
    import hashlib

    pick = rng.randrange(3)
    if pick == 0:
        payload = bytes([rng.choice([0, 5])]) + rng.randbytes(20)
        raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
        n, out = int.from_bytes(raw, "big"), ""
        while n:
            n, r = divmod(n, 58)
            out = BASE58_ALPHABET[r] + out
        return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out
    if pick == 1:
        data = [0] + [rng.randrange(32) for _ in range(32)]  # witness v0, 20-byte program in 5-bit groups
        chk = bech32_polymod("bc", data + [0] * 6) ^ 1
        return "bc1" + "".join(BECH32_ALPHABET[d] for d in data + [(chk >> 5 * (5 - i)) & 31 for i in range(6)])
    return "0x" + rng.randbytes(20).hex()


def _value(kind: str, fake, rng: random.Random, template: str) -> str:
    if kind == "PERSON":
        style = rng.random()
        if style < 0.15:
            return fake.first_name()
        if style < 0.25:
            return f"{fake.prefix()} {fake.last_name()}".replace("..", ".") if hasattr(fake, "prefix") else fake.name()
        return f"{fake.first_name()} {fake.last_name()}"
    if kind == "STREET_ADDRESS":
        return fake.address() if rng.random() < 0.6 else fake.street_address()
    if kind == "NATIONAL_ID":
        for cue, locale, method in (("Codice", "it_IT", "ssn"), ("DNI", "es_ES", "nif"), ("henkilötunnus", "fi_FI", "ssn")):
            if cue in template:
                from faker import Faker
                other = Faker(locale)
                other.seed_instance(rng.randrange(1 << 30))
                return other.nie() if cue == "DNI" and rng.random() < 0.5 else getattr(other, method)()
        if "Aadhaar" in template:
            from faker import Faker
            other = Faker("en_IN")
            other.seed_instance(rng.randrange(1 << 30))
            return other.aadhaar_id()
        if "NHS" in template:
            return _nhs(rng)
        if "PAN" in template:
            letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
            return f"{letters}P{rng.choice(string.ascii_uppercase)}{_digits(rng, 4)}{rng.choice(string.ascii_uppercase)}"
        prefix = rng.choice(["AB", "CE", "JK", "PR", "TW"])
        return f"{prefix} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {rng.choice('ABCD')}"
    from faker import Faker
    us = Faker("en_US")
    us.seed_instance(rng.randrange(1 << 30))
    simple = {
        "EMAIL_ADDRESS": fake.email, "PHONE_NUMBER": fake.phone_number, "POSTCODE": fake.postcode,
        "CREDIT_CARD": us.credit_card_number, "IBAN_CODE": fake.iban, "ROUTING_NUMBER": us.aba, "US_SSN": us.ssn,
        "US_ITIN": us.itin, "PASSPORT": us.passport_number, "TAX_ID": us.ein, "IP_ADDRESS": us.ipv4,
        "MAC_ADDRESS": us.mac_address, "URL": lambda: us.url() + us.uri_path(), "USERNAME": us.user_name,
        "PASSWORD": lambda: us.password(length=rng.randint(8, 14)),
    }
    if kind in simple:
        return simple[kind]()
    if kind == "CREDIT_CARD" and "CVV" in template:
        return _digits(rng, rng.choice([3, 3, 4]))
    if kind == "CRYPTO":
        return _crypto_address(rng)
    if kind == "VEHICLE_ID":
        return fake.license_plate() if "plate" in template else us.vin()
    if kind == "DEVICE_ID":
        imei = _luhn_complete(rng.choice(["35", "86", "49", "01"]) + _digits(rng, 12))
        return imei if rng.random() < 0.6 else f"{imei[:2]}-{imei[2:8]}-{imei[8:14]}-{imei[14]}"
    if kind == "GPS_COORDINATES":
        lat, lon = float(us.latitude()), float(us.longitude())
        style = rng.randrange(3)
        if style == 0:
            return f"{lat:.{rng.randint(4, 6)}f}, {lon:.{rng.randint(4, 6)}f}"
        if style == 1:
            return f"{abs(lat):.4f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.4f}° {'E' if lon >= 0 else 'W'}"
        d, m, sec = int(abs(lat)), int(abs(lat) * 60) % 60, int(abs(lat) * 3600) % 60
        d2, m2, sec2 = int(abs(lon)), int(abs(lon) * 60) % 60, int(abs(lon) * 3600) % 60
        return f"{d}°{m}′{sec}″{'N' if lat >= 0 else 'S'} {d2}°{m2}′{sec2}″{'E' if lon >= 0 else 'W'}"
    if kind == "MEDICAL_LICENSE":
        body = [rng.randrange(10) for _ in range(6)]
        check = (body[0] + body[2] + body[4] + 2 * (body[1] + body[3] + body[5])) % 10
        return rng.choice("ABFGM") + rng.choice(string.ascii_uppercase) + "".join(map(str, body)) + str(check)
    if kind == "US_BANK_NUMBER":
        return _digits(rng, rng.randint(8, 12))
    if kind == "SORT_CODE":
        return f"{_digits(rng, 2)}-{_digits(rng, 2)}-{_digits(rng, 2)}"
    if kind == "DRIVER_LICENSE":
        return rng.choice(string.ascii_uppercase) + _digits(rng, rng.randint(7, 12))
    if kind in ("MEDICAL_RECORD", "INSURANCE_ID", "EMPLOYEE_ID", "CUSTOMER_ID"):
        prefix = rng.choice(["", "", "MR", "HX", "EMP", "C", "INS"])
        return (prefix + ("-" if prefix and rng.random() < 0.5 else "") + _digits(rng, rng.randint(5, 9)))
    if kind == "DATE_OF_BIRTH":
        d = us.date_of_birth()
        return d.strftime(rng.choice(["%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d", "%d %B %Y", "%B %d, %Y"]))
    if kind == "API_KEY":
        pick = rng.randrange(5)
        alnum = string.ascii_letters + string.digits
        if pick == 0:
            return "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
        if pick == 1:
            return "ghp_" + "".join(rng.choice(alnum) for _ in range(36))
        if pick == 2:
            return "xoxb-" + _digits(rng, 11) + "-" + "".join(rng.choice(alnum) for _ in range(24))
        if pick == 3:
            return "eyJhbGciOiJIUzI1NiJ9.eyJ" + "".join(rng.choice(alnum) for _ in range(30)) + "." + "".join(
                rng.choice(alnum + "-_") for _ in range(43))
        return "".join(rng.choice(alnum + "/+") for _ in range(40))
    if kind == "PRIVATE_KEY":
        body = "\n".join("".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(64))
                         for _ in range(4))
        return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    raise KeyError(kind)


def generated_docs(n: int, seed: int = 7) -> list[dict]:
    from faker import Faker

    rng = random.Random(seed)
    random.seed(seed)  # Faker's es_ES nif()/nie() draw from the global generator, not the seeded instance
    fakers = {loc: Faker(loc) for loc in LOCALES}
    docs = []
    for i in range(n):
        loc = LOCALES[i % len(LOCALES)]
        fake = fakers[loc]
        fake.seed_instance(seed * 100_003 + i)
        template = TEMPLATES[rng.randrange(len(TEMPLATES))]
        text, spans, last = "", [], 0
        for m in re.finditer(r"\{([A-Z_]+)\}", template):
            text += template[last:m.start()]
            value = _value(m.group(1), fake, rng, template)
            spans.append((len(text), len(text) + len(value), m.group(1)))
            text += value
            last = m.end()
        text += template[last:]
        # a pasted wallet address is never retyped in another case (that would be another, invalid string)
        noise = "asis" if "{CRYPTO}" in template else rng.choice(NOISE)
        text = text.lower() if noise == "lower" else text.upper() if noise == "upper" else text
        docs.append({"source": "generator", "text": text, "gold": spans, "noise": noise, "locale": loc})
    return docs


# ------------------------------------------------------------------------------------------ shared data
def _locate(text: str, value: str, etype: str) -> list[tuple[int, int, str]]:
    value = value.strip()
    if len(value) < 2:
        return []
    return [(m.start(), m.end(), etype) for m in re.finditer(r"(?<!\w)" + re.escape(value) + r"(?!\w)", text)]


def gretel_docs() -> list[dict]:
    root = SHARED / "gretel_pii_samples"
    docs = []
    with open(root / "patients_notes.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            text = row["doctor_notes"]
            gold = []
            for col, etype in (("fname", "PERSON"), ("lname", "PERSON"), ("email", "EMAIL_ADDRESS"),
                               ("telephone", "PHONE_NUMBER")):
                gold += _locate(text, row[col], etype)
            docs.append({"source": "gretel", "text": text, "gold": _merge_adjacent(text, gold)})
    with open(root / "hipaa_patients.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            text = row["notes"]
            if not text or text == "\\N":
                continue
            gold = []
            for col in ("first_name", "last_name"):
                gold += _locate(text, row[col], "PERSON")
            # only a titled provider is a person: "Dr. Patel" yes; "City Hospital ER", "Emergency Department" no
            titled = re.match(r"(Dr|Mr|Mrs|Ms)\.?\s+(.+)$", row.get("provider_name") or "")
            for part in (titled.group(2).split() if titled else []):
                gold += _locate(text, part, "PERSON")
            docs.append({"source": "gretel", "text": text, "gold": _merge_adjacent(text, gold)})
    return docs


# gretel's columns as (column, label a person might type, gold type or None); the labels vary the way real exports do
RECORD_FIELDS = {
    "patients_notes": [("fname", "First name", "PERSON"), ("lname", "Last name", "PERSON"),
                       ("email", "Email", "EMAIL_ADDRESS"), ("gender", "Gender", None),
                       ("telephone", "Phone", "PHONE_NUMBER"), ("address", "Address", "STREET_ADDRESS"),
                       ("city", "City", None), ("state", "State", None), ("postcode", "Zip", "POSTCODE"),
                       ("age", "Age", None), ("last_visit", "Last visit", None), ("diagnosis", "Diagnosis", None),
                       ("prescription", "Prescription", None)],
    "hipaa_patients": [("patient_id", "Patient ID", "MEDICAL_RECORD"), ("first_name", "First Name", "PERSON"),
                       ("last_name", "Last Name", "PERSON"), ("date_of_birth", "DOB", "DATE_OF_BIRTH"),
                       ("race", "Race", None), ("weight", "Weight", None), ("event_date", "Event date", None),
                       ("provider_name", "Provider", None)],
}


def records_docs(seed: int = 11) -> list[dict]:
    """gretel's patient tables rendered the ways records reach a fine-tuning set: one JSON object, "Label: value"
    lines, a CSV block with its header, a Markdown table, a two-column field/value table, XML elements, an SQL INSERT. Gold spans are the cells of the PII columns (a titled
    provider's name is a person; "City Hospital" is not). The renderings are ours, so this source is not unseen."""
    rng = random.Random(seed)
    root = SHARED / "gretel_pii_samples"
    docs = []
    for table, fields in RECORD_FIELDS.items():
        with open(root / f"{table}.csv", newline="", encoding="utf-8") as fh:
            rows = [{c: ("" if (row[c] or "") == "\\N" else (row[c] or "").strip().rstrip(",")) for c, _, _ in fields}
                    for row in csv.DictReader(fh)]
        rows = rows[:35] + rng.sample(rows[35:], min(len(rows) - 35, 565)) if len(rows) > 600 else rows
        i = 0
        while i < len(rows):
            style = rng.choice(("json", "lines", "csv", "markdown", "xml", "sql", "fieldtable"))
            n = 1 if style in ("json", "lines", "fieldtable") else rng.randint(3, 5)
            docs.append(_render(style, fields, rows[i:i + n], table))
            i += n
    return docs


def _gold_type(col: str, etype: str | None, value: str) -> str | None:
    if col == "provider_name":
        return "PERSON" if re.match(r"(Dr|Mr|Mrs|Ms)\.?\s", value) else None
    return etype if value else None


def _render(style: str, fields: list, rows: list[dict], table: str = "records") -> dict:
    parts: list[str] = []
    gold: list[tuple[int, int, str]] = []
    pos = 0

    def put(s: str, etype: str | None = None, col: str = "") -> None:
        nonlocal pos
        t = _gold_type(col, etype, s) if col else None
        if t == "PERSON" and col == "provider_name":  # the title is not part of the name
            # the name only: "Dr. Jones, Virgen del Puerto Hospital" -> "Jones"; "Dr. Chen's Clinic" -> "Chen"
            m = re.match(r"(Dr|Mr|Mrs|Ms)\.?\s+(.+?)(?:'s)?(?:,|\s+(?:Clinic|Hospital|Center|Centre|Medical|Practice)\b|$)", s)
            gold.append((pos + m.start(2), pos + m.end(2), t))
        elif t:
            gold.append((pos, pos + len(s), t))
        parts.append(s)
        pos += len(s)

    if style == "json":
        put("{")
        for k, (col, _, etype) in enumerate(fields):
            put(("" if k == 0 else ", ") + json.dumps(col) + ": \"")
            put(rows[0][col], etype, col)
            put("\"")
        put("}")
    elif style == "xml":
        put(f"<{table}>\n")
        for row in rows:
            put("  <record>")
            for col, _, etype in fields:
                put(f"<{col}>")
                put(row[col].replace("&", "&amp;").replace("<", "&lt;"), etype, col)
                put(f"</{col}>")
            put("</record>\n")
        put(f"</{table}>\n")
    elif style == "sql":
        put(f"INSERT INTO {table} ({', '.join(c for c, _, _ in fields)}) VALUES\n")
        for r, row in enumerate(rows):
            put("  (")
            for k, (col, _, etype) in enumerate(fields):
                put((", " if k else "") + "'")
                put(row[col].replace("'", "''"), etype, col)
                put("'")
            put(");\n" if r == len(rows) - 1 else "),\n")
    elif style == "fieldtable":  # a two-column Markdown table: field, value
        put("| Field | Value |\n|---|---|\n")
        for col, label, etype in fields:
            put(f"| {label} | ")
            put(rows[0][col], etype, col)
            put(" |\n")
    elif style == "lines":
        for col, label, etype in fields:
            put(f"{label}: ")
            put(rows[0][col], etype, col)
            put("\n")
    else:
        sep, lead, tail = (",", "", "") if style == "csv" else (" | ", "| ", " |")
        put(lead + sep.join(c if style == "csv" else lab for c, lab, _ in fields) + tail + "\n")
        if style == "markdown":
            put("|" + "---|" * len(fields) + "\n")
        for row in rows:
            put(lead)
            for k, (col, _, etype) in enumerate(fields):
                if k:
                    put(sep)
                value = row[col]
                quoted = style == "csv" and ("," in value or '"' in value)
                put('"' if quoted else "")
                put(value.replace('"', '""') if quoted else value, etype, col)
                put('"' if quoted else "")
            put(tail + "\n")
    return {"source": "records", "style": style, "text": "".join(parts), "gold": gold}


def _merge_adjacent(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """'William' + 'Thomas' located separately become the one name 'William Thomas'."""
    out: list[tuple[int, int, str]] = []
    for s, e, t in sorted(set(spans)):
        if out and out[-1][2] == t and (s <= out[-1][1] or text[out[-1][1]:s] == " "):
            out[-1] = (out[-1][0], max(e, out[-1][1]), t)
        else:
            out.append((s, e, t))
    return out


def wnut_docs() -> list[dict]:
    docs = []
    for name in ("emerging.dev.conll", "emerging.test.annotated"):
        tokens: list[tuple[str, str]] = []
        for line in (SHARED / "wnut17_ner" / name).read_text(encoding="utf-8").splitlines() + [""]:
            if line.strip():
                parts = line.split("\t") if "\t" in line else line.split()
                tokens.append((parts[0], parts[-1]))
                continue
            if not tokens:
                continue
            text, gold, cur = "", [], None
            for tok, tag in tokens:
                start = len(text) + (1 if text else 0)
                text = f"{text} {tok}" if text else tok
                if tag == "B-person":
                    cur = [start, len(text)]
                    gold.append(cur)
                elif tag == "I-person" and cur is not None:
                    cur[1] = len(text)
                else:
                    cur = None
            docs.append({"source": "wnut17", "text": text, "gold": [(s, e, "PERSON") for s, e in gold]})
            tokens = []
    return docs


def nlupp_docs() -> list[dict]:
    """NLU++ banking and hotel requests (../shared/data/nlupp): the `person_name` slot is the gold PERSON span
    ("a table booked under christyne tauber"), mostly lower-case; every other message is PERSON-free, so a false
    person anywhere counts against precision. Duplicate texts are kept once."""
    docs, seen = [], set()
    for path in sorted((SHARED / "nlupp").glob("*/fold*.json")):
        for rec in json.loads(path.read_text(encoding="utf-8")):
            if rec["text"] in seen:
                continue
            seen.add(rec["text"])
            slot = (rec.get("slots") or {}).get("person_name")
            gold = [(slot["span"][0], slot["span"][1], "PERSON")] if slot else []
            docs.append({"source": "nlupp", "text": rec["text"], "gold": gold})
    return docs


HANDWRITTEN = ROOT / "bench" / "data" / "handwritten"
HANDWRITTEN_TYPES = {"PHONE": "PHONE_NUMBER", "EMAIL": "EMAIL_ADDRESS", "ID": "ID_NUMBER"}


def handwritten_docs() -> list[dict]:
    """The labelled sets in bench/data/handwritten: every occurrence of a labelled value is a gold span (a value inside
    a longer labelled one is covered by it)."""
    docs = []
    for path in sorted(HANDWRITTEN.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            gold = set()
            for pii in rec["pii"]:
                if pii["value"].strip():
                    etype = HANDWRITTEN_TYPES.get(pii["type"], pii["type"])
                    gold |= {(m.start(), m.end(), etype) for m in re.finditer(re.escape(pii["value"]), rec["text"])}
            gold = [g for g in sorted(gold) if not any(o != g and o[0] <= g[0] and g[1] <= o[1] for o in gold)]
            docs.append({"source": "handwritten", "id": rec["id"], "text": rec["text"], "gold": gold})
    return docs


def benign_docs() -> list[dict]:
    """Customer messages from two public intent datasets (banking77 test, clinc150 test): no labelled PII, the
    wording of bank and assistant tickets. Identifier and secret detections here are (nearly all) false alarms
    that would rewrite a ticket's meaning ("my PIN is [PASSWORD]")."""
    docs = []
    with open(SHARED / "banking77" / "test.csv", newline="", encoding="utf-8") as fh:
        docs += [{"source": "benign", "text": row["text"], "gold": []} for row in csv.DictReader(fh)]
    clinc = json.loads((SHARED / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    docs += [{"source": "benign", "text": text, "gold": []} for text, _ in clinc["test"]]
    return docs


NER_TYPES = {"PERSON", "LOCATION", "NRP", "DATE_TIME", "ORGANIZATION"}



def benign_rate(preds: list[list[tuple[int, int, str]]]) -> dict:
    """Identifier/secret detections (every type but the NER ones) on PII-free text, per 1,000 documents."""
    by_type: dict[str, int] = defaultdict(int)
    flagged = 0
    for pred in preds:
        ids = [t for _, _, t in pred if t not in NER_TYPES]
        flagged += bool(ids)
        for t in ids:
            by_type[t] += 1
    n = len(preds)
    persons = sum(t == "PERSON" for pred in preds for _, _, t in pred)  # some are real ("text Jessica …")
    return {"docs": n, "docs_flagged": flagged, "per_1000_docs": round(1000 * sum(by_type.values()) / n, 2),
            "by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "person_per_1000_docs": round(1000 * persons / n, 2)}


SCORED_TYPES = {"gretel": {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER"}, "wnut17": {"PERSON"}, "nlupp": {"PERSON"},
                "records": {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "POSTCODE", "DATE_OF_BIRTH",
                            "MEDICAL_RECORD"}}
UNSEEN = ("gretel", "wnut17")  # sources privtune was not developed against
PRESIDIO_TYPE = {"US_DRIVER_LICENSE": "DRIVER_LICENSE", "US_PASSPORT": "PASSPORT", "UK_NHS": "NATIONAL_ID",
                 "IN_PAN": "NATIONAL_ID", "IN_AADHAAR": "NATIONAL_ID", "UK_NINO": "NATIONAL_ID",
                 "MEDICAL_LICENSE": "MEDICAL_RECORD", "US_BANK_NUMBER": "US_BANK_NUMBER"}


# ---------------------------------------------------------------------------------------------- scoring
def score(docs: list[dict], preds: list[list[tuple[int, int, str]]]) -> dict:
    tp_pred = n_pred = 0
    gold_n = gold_hit = gold_chars = covered_chars = 0
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # gold type -> [hit, total]
    for doc, pred in zip(docs, preds, strict=True):
        scored = SCORED_TYPES.get(doc["source"])
        # the handwritten sets label every identifier and person; places, dates and groups are not labelled there
        unlabelled = NER_TYPES - {"PERSON"} if doc["source"] == "handwritten" else set()
        mask = bytearray(len(doc["text"]))
        for s, e, _ in pred:
            mask[s:e] = b"\x01" * (e - s)
        for s, e, t in pred:
            if (scored is not None and t not in scored) or t in unlabelled:
                continue
            n_pred += 1
            tp_pred += any(s < ge and gs < e for gs, ge, _ in doc["gold"])
        for s, e, t in doc["gold"]:
            cov = sum(mask[s:e])
            gold_n += 1
            gold_chars += e - s
            covered_chars += cov
            hit = cov * 2 >= (e - s)
            gold_hit += hit
            by_type[t][0] += hit
            by_type[t][1] += 1
    p = tp_pred / n_pred if n_pred else 1.0
    r = gold_hit / gold_n if gold_n else 1.0
    f2 = 5 * p * r / (4 * p + r) if p + r else 0.0
    return {"docs": len(docs), "gold_spans": gold_n, "pred_spans": n_pred, "precision": round(p, 4),
            "span_recall": round(r, 4), "char_recall": round(covered_chars / gold_chars if gold_chars else 1.0, 4),
            "f2": round(f2, 4), "recall_by_type": {k: [v[0], v[1], round(v[0] / v[1], 3)] for k, v in sorted(by_type.items())}}


# ----------------------------------------------------------------------------------------------- engines
def presidio_engine(model: str):
    import spacy
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    engine.nlp = {"en": spacy.load(model)}  # SpacyNlpEngine.load() would try to pip-download a missing model
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(PatternRecognizer(supported_entity="EMAIL_ADDRESS", patterns=EmailRecognizer.PATTERNS,
                                              context=EmailRecognizer.CONTEXT, name="EmailRecognizerOffline"))
    return BatchAnalyzerEngine(AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"]))


def run_presidio(batch, texts: list[str]) -> list[list[tuple[int, int, str]]]:
    results = batch.analyze_iterator(texts, language="en", batch_size=64)
    return [[(r.start, r.end, PRESIDIO_TYPE.get(r.entity_type, r.entity_type)) for r in rs] for rs in results]


def run_privtune(texts: list[str], workers: int, model: str,
                 pii_model: str | None = None) -> list[list[tuple[int, int, str]]]:
    from privtune.config import RedactConfig
    from privtune.data.redact import SpanPool

    batches = [(texts[i:i + 256], []) for i in range(0, len(texts), 256)]
    out = []
    with SpanPool(RedactConfig(workers=workers, spacy_model=model, pii_model=pii_model), workers) as pool:
        pool.local.spans(["warm up Anna Smith"])
        if workers > 1:
            list(pool.map([(["warm up"], [])] * workers))
        t0 = time.perf_counter()
        for spans in pool.map(batches):
            out += [[(s.start, s.end, s.entity_type) for s in doc] for doc in spans]
        run_privtune.seconds = time.perf_counter() - t0
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-generated", type=int, default=600)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "redaction.json"))
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument("--spacy-model", default="auto", help="for both engines (privtune's redact.spacy_model)")
    ap.add_argument("--pii-model", default=None, help="also run privtune with this redact.pii_model (e.g. rampart)")
    args = ap.parse_args()

    from privtune import offline

    offline.go_offline()
    docs = generated_docs(args.n_generated) + handwritten_docs()
    if SHARED.is_dir():
        docs += gretel_docs() + wnut_docs() + nlupp_docs() + records_docs() + benign_docs()
    else:
        print("../shared/data not found: generator only", file=sys.stderr)
    texts = [d["text"] for d in docs]
    sources = sorted({d["source"] for d in docs}, key=lambda s: (s != "generator", s))
    report: dict = {"date": time.strftime("%Y-%m-%d"), "n_docs": len(docs), "cpu_count": os.cpu_count(),
                    "loadavg_start": os.getloadavg()[0], "engines": {}}
    from privtune.data.redact import load_spacy, spacy_model_path

    model_path = spacy_model_path(args.spacy_model)
    meta = load_spacy(args.spacy_model).meta
    report["spacy_model"] = f"{meta['lang']}_{meta['name']}-{meta['version']}"  # both engines use it
    engines = ["privtune", f"privtune_w{args.workers}"]
    if args.pii_model:
        engines += ["privtune_pii", f"privtune_pii_w{args.workers}"]
        report["pii_model"] = args.pii_model
    engines += [] if args.no_presidio else ["presidio"]
    for name in engines:
        print(f"running {name} on {len(docs)} docs …", file=sys.stderr, flush=True)
        if name == "presidio":
            batch = presidio_engine(model_path)
            run_presidio(batch, ["warm up Anna Smith"])
            t0 = time.perf_counter()
            preds = run_presidio(batch, texts)
            seconds = time.perf_counter() - t0
        else:
            preds = run_privtune(texts, args.workers if "_w" in name else 1, args.spacy_model,
                                 args.pii_model if "_pii" in name else None)
            seconds = run_privtune.seconds
        entry = {"seconds": round(seconds, 2), "docs_per_s": round(len(docs) / seconds, 1)}
        for src in sources + ["unseen", "all"]:
            if src == "benign":
                entry["benign"] = benign_rate([p for p, d in zip(preds, docs, strict=True) if d["source"] == "benign"])
                continue
            idx = [i for i, d in enumerate(docs) if d["source"] != "benign" and (
                src == "all" or d["source"] == src or (src == "unseen" and d["source"] in UNSEEN))]
            if idx:
                entry[src] = score([docs[i] for i in idx], [preds[i] for i in idx])
        report["engines"][name] = entry
    report["loadavg_end"] = os.getloadavg()[0]
    report["egress_blocked"] = offline.blocked_attempts()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    lines = ["| engine | source | docs | gold spans | precision | span recall | char recall | F2 |",
             "|---|---|---|---|---|---|---|---|"]
    for name, e in report["engines"].items():
        for src, m in e.items():
            if isinstance(m, dict) and "gold_spans" in m:
                lines.append(f"| {name} | {src} | {m['docs']} | {m['gold_spans']} | {m['precision']:.3f} | "
                             f"{m['span_recall']:.3f} | {m['char_recall']:.3f} | {m['f2']:.3f} |")
    lines += ["", "| engine | docs/s | seconds |", "|---|---|---|"]
    lines += [f"| {n} | {e['docs_per_s']} | {e['seconds']} |" for n, e in report["engines"].items()]
    if any("benign" in e for e in report["engines"].values()):
        lines += ["", "Identifier/secret detections on PII-free customer messages (banking77 + clinc150 test):", "",
                  "| engine | docs | docs flagged | per 1,000 docs | top types | PERSON per 1,000 docs |",
                  "|---|---|---|---|---|---|"]
        for n, e in report["engines"].items():
            b = e.get("benign")
            if b:
                top = ", ".join(f"{t} {c}" for t, c in list(b["by_type"].items())[:5])
                lines.append(f"| {n} | {b['docs']} | {b['docs_flagged']} | {b['per_1000_docs']} | {top} | "
                             f"{b['person_per_1000_docs']} |")
    types = sorted({t for e in report["engines"].values() for t in e.get("all", {}).get("recall_by_type", {})})
    names = list(report["engines"])
    lines += ["", "Span recall by entity type (all sources):", "",
              "| entity | gold | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for t in types:
        vals = [report["engines"][n]["all"]["recall_by_type"].get(t, [0, 0, 0.0]) for n in names]
        lines.append(f"| {t} | {vals[0][1]} | " + " | ".join(f"{v[2]:.3f}" for v in vals) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
