"""Erasure: the subject's records leave every file, manifests get new hashes, the right runs are flagged."""

from __future__ import annotations

import json
import os

import pytest
from tests.governance_fixtures import make_dataset, make_run
from typer.testing import CliRunner

from privtune import forget as fg
from privtune.cli import app
from privtune.errors import InputError
from privtune.registry import auditlog, crypto, store


def _ids(d, split):
    return [json.loads(line)["id"] for line in crypto.read_text_maybe_encrypted(d / f"{split}.jsonl").splitlines()]


def _everything(root) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def _tiny_datasets(monkeypatch):
    """The fixture datasets have 7 records, so one subject is far more than the 10% broad-match guard allows."""
    monkeypatch.setattr(fg, "MAX_FRACTION", 0.5)


@pytest.fixture
def world(tmp_path):
    """Two dataset versions, three runs: two on the affected data, one on unrelated data."""
    d1, sha1 = make_dataset(tmp_path / "tickets")
    d2, sha2 = make_dataset(tmp_path / "other", {"train": [{"id": "o1", "messages": [
        {"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]}], "val": [], "test": []})
    runs = {"a": make_run(tmp_path / "run-a", d1, sha1), "b": make_run(tmp_path / "run-b", d1, sha1),
            "c": make_run(tmp_path / "run-c", d2, sha2)}
    for r in runs.values():
        store.record_run(r, json.loads((r / "run.json").read_text()))
    return {"d1": d1, "sha1": sha1, "d2": d2, "sha2": sha2, "runs": runs}


def test_match_removes_every_record_case_insensitively(world):
    d1 = world["d1"]
    rep = fg.forget([d1, world["d2"]], matches_=["zbigniew quill"])
    assert _ids(d1, "train") == ["t1", "t3", "t4"] and _ids(d1, "val") == ["v2"] and _ids(d1, "test") == ["s1"]
    assert b"zbigniew" not in _everything(d1).lower()  # review.csv row dropped, data_card.md scrubbed
    [r1, r2] = rep.datasets
    assert r1.removed == {"train.jsonl": 1, "val.jsonl": 1, "review.csv": 1} and r1.scrubbed == ["data_card.md"]
    assert not r2.removed and r2.new_manifest_sha256 is None
    manifest = json.loads((d1 / "manifest.json").read_text())
    assert r1.new_manifest_sha256 == crypto.sha256_plaintext(d1 / "manifest.json") != world["sha1"]
    assert manifest["counts"]["train"] == 3 and manifest["counts"]["val"] == 1
    assert manifest["files"]["train.jsonl"] == {"sha256": crypto.sha256_plaintext(d1 / "train.jsonl"), "records": 3}
    assert manifest["erasure"]["dataset_version"] == 2 and manifest["erasure"]["previous_manifest_sha256"] == world[
        "sha1"]
    assert not [p for p in d1.parent.iterdir() if p.name.startswith(".tickets")]  # no old copy, no temp dir left


def test_runs_on_the_affected_version_are_flagged_and_serve_can_tell(world):
    rep = fg.forget([world["d1"], world["d2"]], ids=["t3"])
    runs = world["runs"]
    assert sorted(r["path"] for r in rep.runs) == sorted(str(runs[k].resolve()) for k in "ab")
    assert fg.is_retrain_required(runs["a"]) and fg.is_retrain_required(runs["b"])
    assert not fg.is_retrain_required(runs["c"])
    assert store.run_status(runs["a"]) == store.RETRAIN_REQUIRED and store.run_status(runs["c"]) == "finished"
    assert (runs["a"] / fg.MARKER).is_file()
    # the marker alone is enough (e.g. the run dir copied to a serving host with another registry)
    os.environ["PRIVTUNE_DB"] = f"sqlite:///{runs['a'].parent / 'elsewhere.sqlite'}"
    try:
        assert fg.is_retrain_required(runs["a"])
    finally:
        del os.environ["PRIVTUNE_DB"]
    # and the registry alone is enough too
    (runs["b"] / fg.MARKER).unlink()
    assert fg.is_retrain_required(runs["b"])


def test_id_matches_record_and_subject_ids(world):
    fg.forget([world["d1"]], ids=["C-1001"])  # metadata customer_id
    assert _ids(world["d1"], "train") == ["t2", "t3"]
    with pytest.raises(InputError):
        fg.forget([world["d1"]])


def test_audit_log_has_hashes_never_the_request(world):
    fg.forget([world["d1"]], matches_=["Zbigniew Quill"])
    raw = auditlog.log_path().read_bytes().lower()
    assert b"zbigniew" not in raw and b"quill" not in raw
    e = auditlog.select(action="forget")[-1]
    assert e["inputs"]["request.match.1"] == fg.request_fingerprint("match", "zbigniew QUILL")
    new_sha = crypto.sha256_plaintext(world["d1"] / "manifest.json")
    assert e["inputs"][f"dataset:{world['d1'].resolve()}"] == world["sha1"]
    assert e["outputs"][f"dataset:{world['d1'].resolve()}"] == new_sha
    assert sorted(e["details"]["runs_flagged"]) == sorted(str(world["runs"][k].resolve()) for k in "ab")
    assert "t2" not in json.dumps(e["details"])  # removed ids only as a keyed digest
    assert auditlog.verify().ok


def test_subject_index_finds_redacted_subjects(world):
    """Prepared text says [PERSON]; the keyed index built from pre-redaction values still finds the person."""
    d1 = world["d1"]
    (d1 / fg.SUBJECT_INDEX).write_text(fg.subject_index_line("t1", fg.fingerprints(["Anna Smith", "anna@example.com"]))
                                       + fg.subject_index_line("t4", fg.fingerprints(["anna@example.com"])))
    index_bytes = (d1 / fg.SUBJECT_INDEX).read_bytes()
    assert b"anna" not in index_bytes.lower()
    rep = fg.forget([d1], matches_=["ANNA@example.com"])
    assert _ids(d1, "train") == ["t2", "t3"] and rep.datasets[0].removed["train.jsonl"] == 2
    assert [json.loads(x)["id"] for x in (d1 / fg.SUBJECT_INDEX).read_text().splitlines()] == []
    rep = fg.forget([d1], matches_=["anna smith"])  # already gone
    assert rep.n_removed == 0 and rep.datasets[0].new_manifest_sha256 is None


def test_dry_run_changes_nothing(world):
    before = {p: p.read_bytes() for p in world["d1"].rglob("*") if p.is_file()}
    rep = fg.forget([world["d1"]], matches_=["zbigniew"], dry_run=True)
    assert rep.n_removed == 3 and len(rep.runs) == 2
    assert before == {p: p.read_bytes() for p in world["d1"].rglob("*") if p.is_file()}
    assert not fg.is_retrain_required(world["runs"]["a"])
    assert auditlog.entries()[-1]["action"] == "forget.dry_run"


def test_no_match_changes_nothing(world):
    sha = crypto.sha256_plaintext(world["d1"] / "manifest.json")
    rep = fg.forget([world["d1"]], matches_=["nobody-at-all"])
    assert rep.n_removed == 0 and not rep.runs
    assert crypto.sha256_plaintext(world["d1"] / "manifest.json") == sha
    assert auditlog.entries()[-1]["outcome"] == "no_match"


def test_short_match_is_refused(world):
    with pytest.raises(InputError, match="at least 3"):
        fg.forget([world["d1"]], matches_=["a "])


def test_encrypted_dataset_stays_encrypted_and_old_version_kept_only_if_asked(world, tmp_path, monkeypatch):
    key = crypto.keygen(tmp_path / "k.key")
    monkeypatch.setenv(crypto.KEY_ENV, key.path)
    d1 = world["d1"]
    crypto.encrypt_tree(d1, key)
    rep = fg.forget([d1], matches_=["zbigniew"], keep_old=True)
    assert all(crypto.is_encrypted(p) for p in d1.rglob("*") if p.is_file())
    assert _ids(d1, "train") == ["t1", "t3", "t4"]
    old = d1.with_name("tickets@v1")
    assert rep.datasets[0].kept_old == str(old) and all(crypto.is_encrypted(p) for p in old.rglob("*") if p.is_file())
    assert b"zbigniew" not in _everything(d1).lower() and b"zbigniew" not in _everything(old).lower()
    assert "t2" in _ids(old, "train")  # the encrypted legal-hold copy still has it


def test_keep_old_refused_for_plaintext(world):
    with pytest.raises(InputError, match="encrypted"):
        fg.forget([world["d1"]], matches_=["zbigniew"], keep_old=True)
    assert "t2" in _ids(world["d1"], "train")  # nothing changed


def test_cli_forget(world):
    res = CliRunner().invoke(app, ["forget", "--data", str(world["d1"]), "--match", "Zbigniew Quill"])
    assert res.exit_code == 0, res.output
    assert "retrain_required" in res.output and "tickets.jsonl" in res.output  # raw source reminder
    res = CliRunner().invoke(app, ["forget", "--data", str(world["d1"])])
    assert res.exit_code == 2 and "--id ID or --match TEXT" in res.output
    res = CliRunner().invoke(app, ["forget", "--data", str(world["d1"] / "nope"), "--id", "x"])
    assert res.exit_code == 2 and "not found" in res.output


def test_untouched_lines_and_binary_files_stay_byte_identical(world):
    d1 = world["d1"]
    (d1 / "lengths.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe binary")
    before = (d1 / "train.jsonl").read_text().splitlines(keepends=True)
    fg.forget([d1], ids=["t2"])
    after = (d1 / "train.jsonl").read_text().splitlines(keepends=True)
    assert after == [line for line in before if '"id": "t2"' not in line] and len(after) == 3
    assert (d1 / "lengths.png").read_bytes() == b"\x89PNG\r\n\x1a\n\xff\xfe binary"


def test_bad_jsonl_line_is_named(world):
    with open(world["d1"] / "val.jsonl", "a") as fh:
        fh.write("{broken\n")
    with pytest.raises(InputError) as ei:
        fg.forget([world["d1"]], ids=["t2"])
    assert f"{world['d1'] / 'val.jsonl'}:3" in str(ei.value)
    assert "t2" in _ids(world["d1"], "train")  # nothing written


def test_provenance_metadata_is_not_searched(world, tmp_path):
    d, _ = make_dataset(tmp_path / "prov", {"train": [
        {"id": "p1", "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}],
         "metadata": {"source_line": "tickets.jsonl:1", "department": "Quillford branch"}}], "val": [], "test": []})
    assert fg.forget([d], matches_=["tickets"], dry_run=True).n_removed == 0
    assert fg.forget([d], matches_=["quillford"], dry_run=True).n_removed == 1  # other metadata is searched


def test_too_broad_a_match_is_refused_unless_forced(world, monkeypatch):
    """Text shared by every record (a system prompt, the company name) must not wipe the dataset."""
    monkeypatch.setattr(fg, "MAX_FRACTION", 0.10)
    before = _ids(world["d1"], "train")
    with pytest.raises(InputError, match="would remove 2 of 7 records"):
        fg.forget([world["d2"], world["d1"]], matches_=["zbigniew"], force=False)
    assert _ids(world["d1"], "train") == before and not fg.is_retrain_required(world["runs"]["a"])
    res = CliRunner().invoke(app, ["forget", "--data", str(world["d1"]), "--match", "card"])
    assert res.exit_code == 2 and "--force" in res.output
    res = CliRunner().invoke(app, ["forget", "--data", str(world["d1"]), "--match", "card", "--force"])
    assert res.exit_code == 0 and "t1" not in _ids(world["d1"], "train")
