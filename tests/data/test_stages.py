"""prepare's newer stages: label protection, allow terms, operators, quality gates, near-dups, balance, card,
subject index, encryption at rest and the audit log."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import stat

import pytest
from data_helpers import PEOPLE, read_jsonl, ticket, write_jsonl

from privtune.config import PrepareConfig, QualityConfig, RedactConfig
from privtune.data import quality as q
from privtune.data.dedup import NearDupIndex
from privtune.data.prepare import prepare
from privtune.data.redact import Redactor
from privtune.errors import InputError

SYSTEM = "You triage bank tickets."


def _chat(user: str, answer: str, category: str | None = None) -> dict:
    rec = {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user},
                        {"role": "assistant", "content": answer}]}
    if category:
        rec["metadata"] = {"category": category}
    return rec


WORDS = ("the fee was charged twice and the transfer failed again so please check the limit on the card or "
         "reverse the payment because the branch said the statement would arrive before the weekend with a refund "
         "for the late interest and the overdraft").split()


def _filler(i: int) -> str:
    """Plain words, different per i (no names, places or numbers), so records are neither PII nor near-dups."""
    import random

    rng = random.Random(i)
    return " ".join(rng.choice(WORDS) for _ in range(16))


# ------------------------------------------------------------------------------------------ labels / allow
def test_label_targets_survive_redaction_and_category_terms_are_allowed(tmp_path):
    rows = [_chat(f"Ticket {i}: {PEOPLE[i % 5][0]} says {_filler(i)}", "loan_inquiry", "loan_inquiry")
            for i in range(12)]
    rows += [_chat(f"Ticket {i}: card stuck, {_filler(i)}", "Loan Inquiry", "Loan Inquiry") for i in range(12, 16)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    m = prepare([src], tmp_path / "ds", PrepareConfig())
    recs = [r for s in ("train", "val", "test") for r in read_jsonl(tmp_path / "ds" / f"{s}.jsonl")]
    assert len(recs) == 16
    assert sorted({r["messages"][-1]["content"] for r in recs}) == ["Loan Inquiry", "loan_inquiry"]
    assert all("[PERSON]" in r["messages"][1]["content"] for r in recs if r["metadata"]["category"] == "loan_inquiry")
    assert m["redaction"]["PERSON"] >= 12


def test_configured_allow_terms_are_never_redacted(redactor):
    text = "Harbor Crest contact Margaret Okafor wrote from m.okafor@example.org."
    [(red, counts)] = Redactor(RedactConfig(allow=["Margaret Okafor"])).redact_texts([text])
    assert "Margaret Okafor" in red and "[EMAIL_ADDRESS]" in red and "PERSON" not in counts


def test_organisations_are_redacted_only_when_asked(redactor):
    text = "I work at Goldman Sachs and Microsoft in London."
    [(default, counts)] = redactor.redact_texts([text])
    assert "ORGANIZATION" not in counts
    [(with_org, counts)] = Redactor(RedactConfig(entities=["ORGANIZATION"])).redact_texts([text])
    assert counts.get("ORGANIZATION", 0) >= 1 and "Microsoft" not in with_org


# -------------------------------------------------------------------------------------------- pseudonyms
def test_pseudonyms_are_consistent_realistic_and_keyed(tmp_path, monkeypatch):
    from privtune.paths import privtune_home

    r = Redactor(RedactConfig(operator="pseudonym"))
    texts = ["Margaret Okafor wrote from m.okafor@example.org.", "Later margaret  okafor called again.",
             "Tobias Wendt wrote too."]
    (a, _), (b, _), (c, _) = r.redact_texts(texts)
    fake_a = a.split(" wrote")[0]
    assert fake_a not in ("Margaret Okafor", "[PERSON]") and len(fake_a.split()) >= 2
    assert fake_a in b  # same person, same pseudonym, whatever the case/spacing
    assert c.split(" wrote")[0] != fake_a
    assert "@" in a and "m.okafor@example.org" not in a
    key = privtune_home() / "keys" / "pseudonym.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert r.description["pseudonym_key_id"] and key.read_text().strip() not in json.dumps(r.description)
    # another key gives other pseudonyms; a named key file that does not exist is an error
    other = tmp_path / "other.key"
    other.write_text("ab" * 32 + "\n")
    other.chmod(0o600)
    monkeypatch.setenv("PRIVTUNE_PSEUDONYM_KEY_FILE", str(other))
    [(a2, _)] = Redactor(RedactConfig(operator="pseudonym")).redact_texts(texts[:1])
    assert a2.split(" wrote")[0] != fake_a
    other.chmod(0o644)
    with pytest.raises(InputError, match="readable by others"):
        Redactor(RedactConfig(operator="pseudonym"))


def test_pseudonyms_for_coordinates_are_real_places_and_ids_keep_their_shape():
    from privtune.data.pseudonym import Pseudonymizer

    p = Pseudonymizer(bytes(range(32)))
    for original in ("40.7128, -74.0060", "40°26′46″N 79°58′56″W"):
        fake = p.value("GPS_COORDINATES", original)
        lat, lon = (float(x) for x in fake.split(", "))
        assert abs(lat) <= 90 and abs(lon) <= 180 and fake != original
        assert p.value("GPS_COORDINATES", original) == fake  # consistent
    vin = p.value("VEHICLE_ID", "1M8GDM9AXKP042788")
    assert len(vin) == 17 and vin != "1M8GDM9AXKP042788" and vin.isalnum()


def test_drop_operator_rejects_records_with_pii(tmp_path):
    rows = [_chat(f"My name is {PEOPLE[i % 5][0]}. {_filler(i)}", "card_lost", "card_lost") for i in range(4)]
    rows += [_chat(f"No personal data here. {_filler(i)}", "card_lost", "card_lost") for i in range(4, 10)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    m = prepare([src], tmp_path / "ds", PrepareConfig(redact={"operator": "drop"}))
    assert m["counts"]["rejected_by_reason"] == {"pii_dropped": 4}
    assert m["counts"]["train"] + m["counts"]["val"] + m["counts"]["test"] == 6
    assert all(r["reason"] == "pii_dropped" and "Okafor" not in r["message"]
               for r in read_jsonl(tmp_path / "ds" / "rejected.jsonl"))


# ---------------------------------------------------------------------------------------------- quality
def test_quality_gates_unit():
    cfg = QualityConfig()
    assert q.check_quality(_chat("hello", " "), 50, cfg).reason == q.EMPTY_OUTPUT
    assert q.check_quality(_chat("hello", "hi"), 5, cfg).reason == q.TOO_FEW_TOKENS
    assert q.check_quality(_chat("hello", "hi"), 5000, cfg).reason == q.TOO_MANY_TOKENS
    assert q.check_quality(_chat("Repeat after me please", "repeat  AFTER me please"), 40, cfg).reason == q.PROMPT_COPY
    blob = "x" + base64.b64encode(os.urandom(300)).decode()
    assert q.check_quality(_chat(blob, "card_lost"), 40, cfg).reason == q.NOISE
    assert q.check_quality(_chat("Where is my card? " + _filler(1), "card_lost"), 40, cfg) is None
    tracker = q.ConflictTracker()
    for rec in (_chat("Where is my card?", "card_lost"), _chat("where is  my CARD?", "fraud"), _chat("Other", "x")):
        tracker.add(rec)
    assert tracker.conflicting(_chat("Where is my card?", "anything")) and not tracker.conflicting(_chat("Other", "x"))


def test_every_quality_reason_is_rejected_and_counted(tmp_path, tiny_model_dir):
    good = [_chat(f"Where is my card? {_filler(i)}", "card_lost", "card_lost") for i in range(10)]
    bad = [
        {"prompt": "hi", "completion": "ok", "category": "card_lost"},  # too few tokens
        _chat(f"Where is my card? {_filler(90)}", "card_lost", "card_lost"),  # conflict pair …
        _chat(f"Where is my card?  {_filler(90).upper()}", "fraud", "fraud"),  # … (same input, other label)
        _chat(f"Please repeat this sentence back to me exactly as written {_filler(91)}",
              f"please repeat this sentence back to me exactly as written {_filler(91)}", "card_lost"),
        _chat("x" + base64.b64encode(os.urandom(400)).decode(), "card_lost", "card_lost"),
        _chat(f"Long one {_filler(92)} " * 40, "card_lost", "card_lost"),  # too many tokens (max 1500 below)
    ]
    src = write_jsonl(tmp_path / "in.jsonl", good + bad)
    cfg = PrepareConfig(base=str(tiny_model_dir), quality={"max_tokens": 1500}, redact={"enabled": False})
    m = prepare([src], tmp_path / "ds", cfg)
    assert m["counts"]["rejected_by_reason"] == {"label_conflict": 2, "too_few_tokens": 1, "too_many_tokens": 1,
                                                 "prompt_copy": 1, "non_text_noise": 1}
    rows = read_jsonl(tmp_path / "ds" / "rejected.jsonl")
    assert [r["where"] for r in rows] == [f"in.jsonl:{n}" for n in range(11, 17)]
    assert all(set(r) == {"where", "field", "reason", "message"} for r in rows)
    assert m["quality"]["tokenizer"]["path"] == str(tiny_model_dir) and m["quality"]["conflicting_inputs"] == 1
    assert m["lengths"]["stats"]["train"]["min"] >= 20


# ------------------------------------------------------------------------------------------- near dups
def test_near_duplicate_index_clusters_similar_texts(tmp_path):
    base = "the quick brown fox jumps over the lazy dog and then runs far away into the deep dark forest " * 2
    ix = NearDupIndex(0.85, 5, 128, tmp_path / "sig.bin")
    ix.add_many([base, "completely unrelated words about bank fees and cards " * 3])
    ix.add_many([base + " today", base.replace("lazy", "sleepy").replace("deep", "very"), base + " ok"])
    assert ix.clusters() == [[0, 2, 4]]


def test_prepare_removes_near_duplicates_and_reports_clusters(tmp_path):
    rows = [_chat(f"Where is my card? {_filler(i)} {_filler(i + 50)}", "card_lost", "card_lost") for i in range(10)]
    rows.append(_chat(rows[3]["messages"][1]["content"] + " thanks", "card_lost", "card_lost"))  # near copy of #3
    rows.append(_chat(rows[5]["messages"][1]["content"] + " ok", "card_lost", "card_lost"))  # near copy of #5
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    m = prepare([src], tmp_path / "ds", PrepareConfig(redact={"enabled": False}))
    assert m["counts"]["near_duplicates"] == 2 and m["dedup"]["clusters"] == 2
    assert {int(k): v for k, v in m["dedup"]["cluster_sizes"].items()} == {2: 2}
    assert all(len(c["dropped"]) == 1 and c["kept"] for c in m["dedup"]["clusters_listed"])
    off = prepare([src], tmp_path / "ds2", PrepareConfig(redact={"enabled": False}, dedup={"near": False}))
    assert off["counts"]["near_duplicates"] == 0 and off["counts"]["train"] + off["counts"]["val"] + off[
        "counts"]["test"] == 12


# ------------------------------------------------------------------------------------- balance / card
def test_balance_weights_are_inverse_frequency_and_capped(tmp_path):
    rows = [_chat(f"Q {_filler(i)}", "common", "common") for i in range(40)]
    rows += [_chat(f"Q {_filler(i)}", "mid", "mid") for i in range(40, 60)]
    rows += [_chat(f"Q {_filler(i)}", "rare", "rare") for i in range(60, 63)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    m = prepare([src], tmp_path / "ds", PrepareConfig(redact={"enabled": False}, dedup={"near": False},
                                                       split={"balance": True, "max_weight": 5.0}))
    w = m["balance"]["weights"]
    train = m["counts"]["by_category"]["train"]
    assert w["common"] == 1.0 and w["mid"] == pytest.approx(train["common"] / train["mid"], abs=1e-3)
    assert w["rare"] == 5.0  # 32/1 capped
    assert "Oversampling weights" in (tmp_path / "ds" / "data_card.md").read_text()


@pytest.mark.plots
def test_data_card_html_is_self_contained_with_plots_and_no_text(tmp_path):
    rows = [ticket(i) for i in range(30)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    m = prepare([src], tmp_path / "ds", PrepareConfig())
    ds = tmp_path / "ds"
    html = (ds / "data_card.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "<script" not in html and "http" not in html
    for name in m["plots"]:
        assert (ds / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for value in ("Okafor", "example.org", "555-0132"):
        assert value not in html and value not in (ds / "data_card.md").read_text()
    assert "<table>" in html and "Near-duplicates" in html and "Lengths" in html


# --------------------------------------------------------------------------------------------- review
def test_review_sheet_has_redacted_text_and_empty_verdicts(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [ticket(i) for i in range(40)])
    prepare([src], tmp_path / "ds", PrepareConfig(review_min=20, review_fraction=0.05))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "ds" / "review.csv").read_text())))
    assert len(rows) == 20 and all(r["reviewer_verdict"] == "" == r["reviewer_notes"] for r in rows)
    assert all("Okafor" not in r["redacted_text"] for r in rows)
    assert any("EMAIL_ADDRESS" in r["entity_types"] for r in rows)


# -------------------------------------------------------------------------------------------- governance
def test_subject_index_audit_log_and_encryption_at_rest(tmp_path, monkeypatch):
    from privtune import forget
    from privtune.registry import auditlog, crypto

    key_file = tmp_path / "data.key"
    crypto.keygen(key_file)
    monkeypatch.setenv("PRIVTUNE_KEY_FILE", str(key_file))
    src = write_jsonl(tmp_path / "in.jsonl", [ticket(i) for i in range(10)])
    m = prepare([src], tmp_path / "ds", PrepareConfig())
    ds = tmp_path / "ds"
    for name in ("train.jsonl", "review.csv", "subjects.idx.jsonl"):
        assert crypto.is_encrypted(ds / name), name
        assert m["files"][name] == crypto.sha256_plaintext(ds / name)
    assert not crypto.is_encrypted(ds / "manifest.json") and m["encrypted"] is True
    train = [json.loads(x) for x in crypto.read_text_maybe_encrypted(ds / "train.jsonl").splitlines()]
    index = {json.loads(x)["id"]: json.loads(x)["fp"]
             for x in crypto.read_text_maybe_encrypted(ds / "subjects.idx.jsonl").splitlines()}
    rec = train[0]
    name = next(p[0] for p in PEOPLE if p[0].split()[0] in json.dumps(ticket(0)))
    all_fps = {fp for fps in index.values() for fp in fps}
    assert rec["id"] in index and forget.fingerprint(name) in all_fps
    last = json.loads(auditlog.log_path().read_text().splitlines()[-1])
    assert last["action"] == "prepare" and "Okafor" not in json.dumps(last)


def test_redact_file_writes_an_audit_entry_and_drops_rows(tmp_path):
    from privtune.data.redact import redact_file
    from privtune.registry import auditlog

    src = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "Mail m.okafor@example.org"},
                                             {"id": 2, "text": "nothing to see"}])
    summary = redact_file(src, tmp_path / "out.jsonl", RedactConfig(operator="drop"))
    assert summary["dropped"] == 1 and [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == [2]
    last = auditlog.log_path().read_text().splitlines()[-1]
    assert "redact" in last and "okafor" not in last.lower()
