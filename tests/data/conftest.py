"""Fixtures for the data stage: one Redactor per session, so the spaCy model loads once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def redactor():
    from privtune.data.redact import Redactor

    return Redactor()
