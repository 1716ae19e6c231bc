"""Bundled demo datasets: support tickets of a fictional bank, Harbor Crest Bank, with fake PII.

The files are generated once by `make_bank_tickets.py` (faker + hand-written templates, fixed seed) and
shipped as package data, so `privtune quickstart` needs neither faker nor the network at run time.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from privtune.errors import InputError

CATEGORIES: list[str] = [
    "card_lost",
    "card_declined",
    "transfer_failed",
    "account_locked",
    "fraud_report",
    "fee_dispute",
    "address_change",
    "loan_question",
]

EXAMPLES: dict[str, str] = {
    "bank_tickets": "480 support tickets to classify into one of 8 categories (chat format)",
    "bank_replies": "200 support tickets with a drafted agent reply (alpaca format)",
}


def example_path(name: str) -> Path:
    """Path of a bundled example file, e.g. `example_path("bank_tickets")` → .../bank_tickets.jsonl.

    Uses importlib.resources so it resolves inside an installed package as well as in a checkout.
    """
    stem = name.removesuffix(".jsonl")
    if stem not in EXAMPLES:
        raise InputError(f"unknown example '{name}'; known: {', '.join(sorted(EXAMPLES))}", field="example")
    resource = files(__name__).joinpath(f"{stem}.jsonl")
    if not isinstance(resource, Path):  # zipped install (zipimport): no real file to hand out
        raise InputError(f"example '{stem}' is inside a zipped package; install privtune unzipped",
                         field="example")
    if not resource.is_file():
        raise InputError(f"example file missing from the installed package: {resource}", field="example")
    return resource
