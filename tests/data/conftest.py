"""Fixtures for the data stage: one Redactor per session, so the spaCy model loads once; PNG plots only where
a test asks for them (`@pytest.mark.plots`): matplotlib costs seconds per dataset and most tests check text."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def redactor():
    from privtune.data.redact import Redactor

    return Redactor()


@pytest.fixture(autouse=True)
def _no_plots_unless_asked(request, monkeypatch):
    if request.node.get_closest_marker("plots") is None:
        from privtune.data import prepare as prepare_mod

        monkeypatch.setattr(prepare_mod, "write_plots", lambda out_dir, manifest: [])
