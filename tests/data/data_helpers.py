"""Fake records and small file helpers for the data-stage tests. All personal data here is invented."""

from __future__ import annotations

import json
from pathlib import Path

CATEGORIES = ["card_lost", "fraud_report", "fee_dispute", "address_change"]

# (raw value, entity type it must become); every value is fake
PEOPLE = [
    ("Margaret Okafor", "m.okafor@example.org", "+1 (415) 555-0132", "account 12345678"),
    ("Rajesh Patel", "rpatel77@mail.example.com", "020 7946 0958", "acct no. 44019283"),
    ("Ingrid Vasquez", "ingrid.v@example.net", "+44 7700 900123", "Account number: 3301-992-118"),
    ("Tobias Wendt", "t.wendt@corp.internal", "(212) 555-0178", "account 87654321"),
    ("Amara Nwosu", "amara.nwosu@example.com", "+49 30 901820 44", "account no. 55512340"),
]


def pii_values(person: tuple[str, ...]) -> list[str]:
    """The raw strings that must never appear in an output (the account number without its keyword)."""
    name, email, phone, account = person
    return [*name.split(), email, phone, account.split()[-1]]


def ticket(i: int, category: str | None = None) -> dict:
    name, email, phone, account = PEOPLE[i % len(PEOPLE)]
    category = category or CATEGORIES[i % len(CATEGORIES)]
    user = (f"Hello, my name is {name}. Ticket {i}: I have a problem about {category.replace('_', ' ')}. "
            f"Please reply to {email} or call me on {phone}. My {account}.")
    return {"messages": [{"role": "system", "content": "You triage bank tickets."},
                         {"role": "user", "content": user}, {"role": "assistant", "content": category}],
            "metadata": {"category": category}}


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
