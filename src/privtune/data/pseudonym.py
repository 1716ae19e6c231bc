"""Consistent pseudonyms: the same original value becomes the same realistic fake value across a dataset.

A keyed HMAC-SHA256 over (entity type, normalised original) seeds Faker, so "John Smith" is one fake person in
every record and every run that uses the same key, while nobody without the key can link a pseudonym back to
the original by hashing guesses. The key lives outside every output: a 0600 file named by
`redact.pseudonym_key_file` or PRIVTUNE_PSEUDONYM_KEY_FILE, else PRIVTUNE_HOME/keys/pseudonym.key (created on
first use). Manifests carry only the key's id (first 8 hex of its sha256).

Secrets (passwords, API keys, private keys) never get a realistic stand-in: a fake key that looks real would
send a reviewer or a scanner chasing it, so they keep their typed placeholder.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import string
from pathlib import Path

from privtune import fsio
from privtune.errors import InputError
from privtune.paths import privtune_home

ENV_KEY_FILE = "PRIVTUNE_PSEUDONYM_KEY_FILE"
SECRET_TYPES = frozenset({"PASSWORD", "API_KEY", "PRIVATE_KEY"})
_FAKERS = {
    "PERSON": "name", "EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone_number", "LOCATION": "city",
    "STREET_ADDRESS": "street_address", "POSTCODE": "postcode", "URL": "url", "USERNAME": "user_name",
    "IP_ADDRESS": "ipv4_private", "MAC_ADDRESS": "mac_address", "CREDIT_CARD": "credit_card_number",
    "IBAN_CODE": "iban", "ORGANIZATION": "company", "NRP": "country", "DATE_OF_BIRTH": "date_of_birth",
    "DATE_TIME": "date",
}


def key_path(configured: str | None = None) -> Path:
    chosen = configured or os.environ.get(ENV_KEY_FILE)
    return Path(chosen).expanduser() if chosen else privtune_home() / "keys" / "pseudonym.key"


def load_key(configured: str | None = None) -> bytes:
    """The pseudonym key; the default path is created (0600, 32 random bytes as hex) when absent, a named
    path that does not exist is an error (a typo must not silently start a new, inconsistent key)."""
    path = key_path(configured)
    named = bool(configured or os.environ.get(ENV_KEY_FILE))
    if not path.exists():
        if named:
            raise InputError("pseudonym key file not found", where=str(path), field="redact.pseudonym_key_file")
        fsio.ensure_private_dir(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
        except FileExistsError:
            pass
    if path.stat().st_mode & 0o077:
        raise InputError("pseudonym key file is readable by others; chmod 600 it", where=str(path),
                         field="redact.pseudonym_key_file")
    raw = path.read_text().strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", raw):
        raise InputError("not a pseudonym key (expected 64 hex characters)", where=str(path),
                         field="redact.pseudonym_key_file")
    return bytes.fromhex(raw)


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def _normalise(value: str) -> str:
    return " ".join(value.casefold().split())


def keyed_seed(key: bytes, entity_type: str, original: str) -> int:
    digest = hmac.new(key, f"{entity_type}\x1f{_normalise(original)}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def shape_preserving(original: str, seed: int) -> str:
    """Digits → keyed digits, letters → keyed letters of the same case; separators stay ("AB-1234" → "QX-8071")."""
    import random

    rng = random.Random(seed)
    out = []
    for ch in original:
        if ch.isdigit():
            out.append(rng.choice(string.digits))
        elif ch.isalpha():
            pool = string.ascii_uppercase if ch.isupper() else string.ascii_lowercase
            out.append(rng.choice(pool))
        else:
            out.append(ch)
    return "".join(out)


class Pseudonymizer:
    """Maps (entity type, original) to a stable fake value under one key."""

    def __init__(self, key: bytes, locale: str = "en_US"):
        from faker import Faker

        self._key = key
        self._faker = Faker(locale)
        self.key_id = key_id(key)

    def value(self, entity_type: str, original: str) -> str:
        if entity_type in SECRET_TYPES:
            return f"[{entity_type}]"
        seed = keyed_seed(self._key, entity_type, original)
        self._faker.seed_instance(seed)
        if entity_type == "GPS_COORDINATES":  # keyed digits could give a latitude of 97°: draw a real place
            return f"{float(self._faker.latitude()):.4f}, {float(self._faker.longitude()):.4f}"
        method = _FAKERS.get(entity_type)
        if method is None:
            return shape_preserving(original, seed)
        fake = getattr(self._faker, method)()
        return fake.isoformat() if hasattr(fake, "isoformat") else str(fake).replace("\n", ", ")
