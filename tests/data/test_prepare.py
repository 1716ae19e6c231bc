"""`prepare` end to end: files, manifest, permissions, no raw PII anywhere, determinism, registry row."""

from __future__ import annotations

import csv
import io
import json
import stat
from collections import Counter

import pytest
from data_helpers import CATEGORIES, PEOPLE, pii_values, read_jsonl, ticket, write_jsonl

from privtune import fsio
from privtune.config import PrepareConfig, SplitConfig
from privtune.data.prepare import prepare
from privtune.errors import InputError

OUTPUTS = {"train.jsonl", "val.jsonl", "test.jsonl", "rejected.jsonl", "manifest.json", "data_card.md", "review.csv",
           "data_card.html", "data_card_lengths.png", "data_card_redaction.png", "data_card_categories.png",
           "subjects.idx.jsonl"}


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """One redacted dataset: 60 tickets with fake PII, one exact duplicate (case/space only), two bad lines."""
    tmp = tmp_path_factory.mktemp("prep")
    rows = [ticket(i) for i in range(60)]
    dup = json.loads(json.dumps(rows[3]))
    dup["messages"][1]["content"] = "  " + dup["messages"][1]["content"].upper().replace(" ", "   ")
    rows += [dup, '{"messages": [', {"instruction": "Margaret Okafor asks", "output": ""}]
    src = write_jsonl(tmp / "tickets.jsonl", rows)
    manifest = prepare([src], tmp / "ds", PrepareConfig())
    return tmp, src, manifest


def test_outputs_exist_with_private_permissions_and_matching_hashes(prepared):
    tmp, src, manifest = prepared
    ds = tmp / "ds"
    assert {p.name for p in ds.iterdir()} == OUTPUTS
    assert _mode(ds) == 0o700 and all(_mode(p) == 0o600 for p in ds.iterdir())
    assert manifest == json.loads((ds / "manifest.json").read_text())
    assert set(manifest["files"]) == OUTPUTS - {"manifest.json"}
    for name, sha in manifest["files"].items():
        assert fsio.sha256_file(ds / name) == sha, name
    [source] = manifest["sources"]
    assert source == {"path": str(src.resolve()), "sha256": fsio.sha256_file(src), "n_lines": 63, "n_records": 63}
    assert manifest["privtune_version"] and manifest["created_at"].endswith("+00:00")
    assert manifest["config"] == PrepareConfig().model_dump(mode="json")
    assert not list(tmp.glob(".ds.*"))  # no staging leftovers


def test_counts_add_up_and_split_is_stratified(prepared):
    tmp, _, manifest = prepared
    c = manifest["counts"]
    assert (c["input"], c["valid"], c["rejected"], c["duplicates"]) == (63, 61, 2, 1)
    assert c["rejected_by_reason"] == {"invalid_json": 1, "empty_field": 1}
    assert (c["train"], c["val"], c["test"]) == (48, 6, 6)
    assert c["by_format"] == {"chat": 60}
    assert manifest["split"]["stratified_by"] == "category"
    for split in ("train", "val", "test"):
        rows = read_jsonl(tmp / "ds" / f"{split}.jsonl")
        assert len(rows) == c[split]
        assert dict(Counter(r["metadata"]["category"] for r in rows)) == c["by_category"][split]
    assert all(c["by_category"]["val"][cat] in (1, 2) for cat in CATEGORIES)


def test_records_are_normalised_redacted_and_keep_provenance(prepared):
    tmp, _, manifest = prepared
    rows = [r for s in ("train", "val", "test") for r in read_jsonl(tmp / "ds" / f"{s}.jsonl")]
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids) == 60 and all(len(i) == 16 for i in ids)
    assert {r["metadata"]["source_line"] for r in rows} == {f"tickets.jsonl:{i}" for i in range(1, 61)}
    for r in rows:
        assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]
        user = r["messages"][1]["content"]
        for placeholder in ("[PERSON]", "[EMAIL_ADDRESS]", "[PHONE_NUMBER]", "[US_BANK_NUMBER]"):
            assert placeholder in user, user
        assert r["messages"][2]["content"] == r["metadata"]["category"]  # answers untouched
    red = manifest["redaction"]
    assert red["EMAIL_ADDRESS"] == red["PHONE_NUMBER"] == red["US_BANK_NUMBER"] == 60 and red["PERSON"] >= 60


def test_no_raw_pii_in_any_output_file(prepared):
    tmp, _, _ = prepared
    blob = "\n".join((tmp / "ds" / name).read_text() for name in OUTPUTS if not name.endswith(".png"))
    for person in PEOPLE:
        for value in pii_values(person):
            assert value not in blob, value


def test_rejected_rows_name_file_line_field_and_reason_only(prepared):
    tmp, _, _ = prepared
    assert read_jsonl(tmp / "ds" / "rejected.jsonl") == [
        {"where": "tickets.jsonl:62", "field": None, "reason": "invalid_json",
         "message": "invalid JSON: Expecting value (column 15)"},
        {"where": "tickets.jsonl:63", "field": "messages[1].content", "reason": "empty_field",
         "message": "message content is empty"},
    ]


def test_review_csv_is_a_redacted_sample(prepared):
    tmp, _, manifest = prepared
    rows = list(csv.DictReader(io.StringIO((tmp / "ds" / "review.csv").read_text(), newline="")))
    assert len(rows) == 20  # max(20, 5% of 60)
    assert list(rows[0]) == ["id", "split", "category", "redacted_text", "entity_types", "reviewer_verdict",
                             "reviewer_notes"]
    by_id = {r["id"]: r for s in ("train", "val", "test") for r in read_jsonl(tmp / "ds" / f"{s}.jsonl")}
    for row in rows:
        rec = by_id[row["id"]]
        assert row["category"] == rec["metadata"]["category"]
        assert rec["messages"][1]["content"] in row["redacted_text"]
        assert set(row["entity_types"].split(";")) >= {"EMAIL_ADDRESS", "PHONE_NUMBER", "US_BANK_NUMBER"}
        assert row["reviewer_verdict"] == row["reviewer_notes"] == ""
    assert Counter(r["split"] for r in rows).keys() <= {"train", "val", "test"}


def test_data_card_reports_counts_and_redaction(prepared):
    tmp, _, manifest = prepared
    card = (tmp / "ds" / "data_card.md").read_text()
    assert "| 63 | 61 | 2 | 1 | 0 | 48 | 6 | 6 |" in card
    assert f"| EMAIL_ADDRESS | {manifest['redaction']['EMAIL_ADDRESS']} |" in card
    assert "| card_lost |" in card and "stratified by `metadata.category`" in card


def test_dataset_is_recorded_in_the_registry(prepared):
    # the module fixture wrote to its own PRIVTUNE_HOME; record a fresh one in this test's home
    from sqlalchemy import select

    from privtune.registry.store import Dataset, session

    tmp, src, _ = prepared
    manifest = prepare([src], tmp / "ds2", PrepareConfig(redact={"enabled": False}))
    with session() as s:
        rows = list(s.scalars(select(Dataset)))
    assert [(r.path, r.manifest_sha256) for r in rows] == [
        (str((tmp / "ds2").resolve()), fsio.sha256_file(tmp / "ds2" / "manifest.json"))]
    assert rows[0].counts == manifest["counts"]


def _small(tmp_path, n=40):
    return write_jsonl(tmp_path / "in.jsonl", [ticket(i) for i in range(n)])


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    src = _small(tmp_path)

    def run(name, seed):
        cfg = PrepareConfig(redact={"enabled": False}, split=SplitConfig(seed=seed))
        prepare([src], tmp_path / name, cfg)
        return {s: (tmp_path / name / f"{s}.jsonl").read_bytes() for s in ("train", "val", "test")}

    a, b, c = run("a", 5), run("b", 5), run("c", 6)
    assert a == b
    assert a != c
    assert sorted(a["train"].splitlines() + a["val"].splitlines() + a["test"].splitlines()) == sorted(
        c["train"].splitlines() + c["val"].splitlines() + c["test"].splitlines())


def test_mixed_files_and_formats_are_all_redacted(tmp_path):
    jsonl = write_jsonl(tmp_path / "a.jsonl", [
        {"prompt": "Write back to Rajesh Patel", "chosen": "Dear Rajesh Patel, done.", "rejected": "No."},
        {"text": "Minutes: Ingrid Vasquez (ingrid.v@example.net) joined."},
    ])
    js = tmp_path / "b.json"
    js.write_text(json.dumps({"data": [{"instruction": "Summarise", "input": "Call Tobias Wendt on (212) 555-0178",
                                        "output": "Customer asks for a call back."}]}))
    cs = tmp_path / "c.csv"
    cs.write_text("prompt,completion,category\nMy account 87654321 is locked,I can help,account_locked\n")
    manifest = prepare([jsonl, js, cs], tmp_path / "ds", PrepareConfig(quality={"min_tokens": 0}))
    assert manifest["counts"]["by_format"] == {"alpaca": 1, "preference": 1, "prompt_completion": 1, "text": 1}
    assert [s["n_records"] for s in manifest["sources"]] == [2, 1, 1]
    blob = "".join((tmp_path / "ds" / f"{s}.jsonl").read_text() for s in ("train", "val", "test"))
    for value in ("Rajesh", "Patel", "Ingrid", "ingrid.v@example.net", "Tobias", "555-0178", "87654321"):
        assert value not in blob, value
    pref = next(json.loads(line) for line in blob.splitlines() if "chosen" in line)
    assert pref["chosen"] == "Dear [PERSON], done." and pref["messages"][0]["content"] == "Write back to [PERSON]"


def test_strict_mode_fails_on_a_rejected_record_and_writes_nothing(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [ticket(0), {"instruction": "no output here"}])
    with pytest.raises(InputError) as err:
        prepare([src], tmp_path / "ds", PrepareConfig(strict=True, redact={"enabled": False}))
    assert err.value.where == f"{src}:2" and err.value.field == "output"
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds.*"))


def test_duplicate_ids_with_different_content_are_rejected(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [ticket(0) | {"id": "T1"}, ticket(1) | {"id": "T1"},
                                              ticket(0) | {"id": "T1"}])
    manifest = prepare([src], tmp_path / "ds", PrepareConfig(redact={"enabled": False}))
    assert manifest["counts"]["duplicates"] == 1 and manifest["counts"]["rejected_by_reason"] == {"duplicate_id": 1}
    assert read_jsonl(tmp_path / "ds" / "rejected.jsonl")[0]["where"] == "in.jsonl:2"


def test_zero_valid_records_is_an_input_error(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"foo": 1}, {"bar": 2}])
    with pytest.raises(InputError, match="no valid records.*unknown_format=2"):
        prepare([src], tmp_path / "ds", PrepareConfig())
    assert not (tmp_path / "ds").exists()


def test_an_existing_unrelated_directory_is_never_replaced(tmp_path):
    src = _small(tmp_path, 5)
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="refusing"):
        prepare([src], tmp_path / "precious", PrepareConfig(redact={"enabled": False}))
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"
    prepare([src], tmp_path / "ds", PrepareConfig(redact={"enabled": False}))
    first = (tmp_path / "ds" / "manifest.json").read_text()
    prepare([src], tmp_path / "ds", PrepareConfig(redact={"enabled": False}, split=SplitConfig(seed=9)))
    assert (tmp_path / "ds" / "manifest.json").read_text() != first  # an earlier dataset is replaced whole


def test_no_redact_leaves_review_csv_empty(tmp_path):
    src = _small(tmp_path, 10)
    manifest = prepare([src], tmp_path / "ds", PrepareConfig(redact={"enabled": False}))
    assert manifest["redactor"] == {"enabled": False} and manifest["redaction"] == {}
    assert (tmp_path / "ds" / "review.csv").read_text().strip() == (
        "id,split,category,redacted_text,entity_types,reviewer_verdict,reviewer_notes")
    assert "Redaction was disabled" in (tmp_path / "ds" / "data_card.md").read_text()


def test_metadata_values_are_redacted_like_the_text_and_labels_are_kept(tmp_path):
    # metadata travels into train/val/test with the record: before, "customer_name" and "email" here reached the
    # splits in clear
    rows = []
    for i in range(24):
        row = ticket(i)
        name, email, phone, _ = PEOPLE[i % len(PEOPLE)]
        row["metadata"] |= {"customer_name": name, "email": email, "notes": [f"called from {phone}"],
                            "contact": {"phone": 4155550132, "zip": "94103"}, "priority": 2,
                            "channel": "web chat"}
        rows.append(row)
    src = write_jsonl(tmp_path / "meta.jsonl", rows)
    manifest = prepare([src], tmp_path / "ds", PrepareConfig())
    out = [r for s in ("train", "val", "test") for r in read_jsonl(tmp_path / "ds" / f"{s}.jsonl")]
    assert len(out) == 24
    blob = (tmp_path / "ds" / "train.jsonl").read_text() + (tmp_path / "ds" / "test.jsonl").read_text()
    for person in PEOPLE:
        for value in (*person[0].split(), person[1]):
            assert value not in blob
    assert "4155550132" not in blob and "94103" not in blob
    for r in out:
        m = r["metadata"]
        assert m["category"] in CATEGORIES  # the stratification label is not redacted
        assert m["source_line"].startswith("meta.jsonl:")
        assert m["customer_name"] == "[PERSON]" and m["email"] == "[EMAIL_ADDRESS]"
        assert m["notes"] == ["called from [PHONE_NUMBER]"]
        assert m["contact"] == {"phone": "[PHONE_NUMBER]", "zip": "[POSTCODE]"}
        assert m["priority"] == 2 and m["channel"] == "web chat"  # a plain number and plain words stay as they were
    assert manifest["redaction"]["EMAIL_ADDRESS"] >= 48  # text and metadata both count
