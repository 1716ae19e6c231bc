"""Redaction and prepare never try the network, with URLs and emails in the text.

Presidio's stock EmailRecognizer calls tldextract, whose default extractor downloads the public suffix list
on first use (PRIVTUNE_HOME is fresh per test, so its cache is empty here). privtune's engine does not use
Presidio's recognizers; if a network-using detector ever came in, the guard would record an attempt and these
tests would fail.
"""

from __future__ import annotations

import socket

import pytest
from data_helpers import ticket, write_jsonl

from privtune import offline
from privtune.config import PrepareConfig
from privtune.data.prepare import prepare
from privtune.errors import EgressBlocked

TEXTS = [
    "Mail margaret.okafor@example.co.uk or see https://portal.example-bank.com/tickets/42 and www.example.net.",
    "Escalate to priya.nair@corp.internal; the runbook is at http://wiki.corp.internal/page?id=7.",
    "IDN mail: ana@xn--bcher-kva.example and plain host example.org/help.",
    "please send 40 euros to quillfeather okonjo tomorrow",  # the name check reads wordfreq's bundled tables
]


@pytest.fixture()
def guard():
    offline.install_egress_guard(True)
    offline.reset_attempts()
    yield
    offline.reset_attempts()


def _guard_is_armed() -> None:
    """Prove the guard was on: a real outbound connect is refused and recorded."""
    with pytest.raises(EgressBlocked):
        socket.create_connection(("203.0.113.1", 80), timeout=1)
    assert offline.blocked_attempts() == ["203.0.113.1:80"]


def test_redaction_makes_no_outbound_connection(guard, redactor):
    results = redactor.redact_texts(TEXTS)
    assert offline.blocked_attempts() == []
    assert all("@" not in text for text, _ in results)
    assert sum(counts.get("EMAIL_ADDRESS", 0) for _, counts in results) == 3
    assert sum(counts.get("URL", 0) for _, counts in results) >= 3
    assert results[3] == ("please send 40 euros to [PERSON] tomorrow", {"PERSON": 1})
    _guard_is_armed()


def test_prepare_makes_no_outbound_connection(guard, tmp_path):
    rows = [ticket(i) for i in range(12)]
    for i, row in enumerate(rows):
        row["messages"][1]["content"] += " " + TEXTS[i % 3]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    manifest = prepare([src], tmp_path / "ds", PrepareConfig())
    assert offline.blocked_attempts() == []
    assert manifest["redaction"]["EMAIL_ADDRESS"] == 24
    _guard_is_armed()
