"""Bad inputs through `privtune prepare`: exit code 2, one line naming file:line (and field), nothing written."""

from __future__ import annotations

import json

import pytest
from data_helpers import read_jsonl, ticket, write_jsonl
from typer.testing import CliRunner

from privtune.cli import app

runner = CliRunner()
BIG = 10 * 1024 * 1024  # a 10 MB record


def _prepare(*args: str):
    return runner.invoke(app, ["prepare", *args])


def _assert_failed_cleanly(res, out, where: str, field: str | None = None, words: str | None = None):
    assert res.exit_code == 2, res.output
    message = res.output.strip()
    assert message.startswith("privtune: error: ") and len(message.splitlines()) == 1, message
    assert where in message, message
    if field:
        assert f"field '{field}'" in message, message
    if words:
        assert words in message, message
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*"))


def _good(n: int = 3) -> list[str]:
    return [json.dumps(ticket(i)) for i in range(n)]


def test_empty_file(tmp_path):
    src = tmp_path / "empty.jsonl"
    src.write_text("")
    res = _prepare(str(src), "--out", str(tmp_path / "ds"))
    _assert_failed_cleanly(res, tmp_path / "ds", f"{src}:1", words="empty")


def test_missing_file(tmp_path):
    res = _prepare(str(tmp_path / "nowhere.jsonl"), "--out", str(tmp_path / "ds"))
    _assert_failed_cleanly(res, tmp_path / "ds", str(tmp_path / "nowhere.jsonl"), words="not found")


def test_malformed_json_line_is_rejected_by_default_and_fatal_with_strict(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [*_good(), '{"messages": [}', *_good(2)])
    res = _prepare(str(src), "--out", str(tmp_path / "ds"), "--no-redact")
    assert res.exit_code == 0, res.output
    assert read_jsonl(tmp_path / "ds" / "rejected.jsonl") == [
        {"where": "in.jsonl:4", "field": None, "reason": "invalid_json",
         "message": "invalid JSON: Expecting value (column 15)"}]

    res = _prepare(str(src), "--out", str(tmp_path / "strict"), "--no-redact", "--strict")
    _assert_failed_cleanly(res, tmp_path / "strict", f"{src}:4", words="invalid JSON")


def test_missing_field_names_the_field(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [*_good(), {"instruction": "Classify this"}])
    res = _prepare(str(src), "--out", str(tmp_path / "ds"), "--strict")
    _assert_failed_cleanly(res, tmp_path / "ds", f"{src}:4", field="output", words="missing")

    res = _prepare(str(src), "--out", str(tmp_path / "lenient"), "--no-redact")
    assert res.exit_code == 0
    assert read_jsonl(tmp_path / "lenient" / "rejected.jsonl")[0]["field"] == "output"


def test_non_utf8_file_names_line_and_byte_offset(tmp_path):
    src = tmp_path / "latin1.jsonl"
    good = "\n".join(_good(2)) + "\n"
    src.write_bytes(good.encode() + b'{"text": "Caf' + b"\xe9 au lait\"}\n")
    res = _prepare(str(src), "--out", str(tmp_path / "ds"))
    _assert_failed_cleanly(res, tmp_path / "ds", f"{src}:3", words=f"byte offset {len(good.encode()) + 13}")


def test_unknown_file_type(tmp_path):
    src = tmp_path / "records.parquet"
    src.write_bytes(b"PAR1")
    res = _prepare(str(src), "--out", str(tmp_path / "ds"))
    _assert_failed_cleanly(res, tmp_path / "ds", str(src), words="unsupported file type")


def test_unknown_record_format_everywhere_means_no_valid_records(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"question": "q", "answer": "a"}] * 2)
    res = _prepare(str(src), "--out", str(tmp_path / "ds"))
    _assert_failed_cleanly(res, tmp_path / "ds", str(src), words="no valid records")


def test_broken_csv_quoting(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('instruction,output\n"Reset my password",done\n"Card lost, please help,card_lost\nx,y\n')
    res = _prepare(str(src), "--out", str(tmp_path / "ds"))
    _assert_failed_cleanly(res, tmp_path / "ds", f"{src}:3", words="quoting")


def test_invalid_json_file(tmp_path):
    src = tmp_path / "in.json"
    src.write_text('[\n  {"text": "a"},\n  {"text": "b",}\n]\n')
    res = _prepare(str(src), "--out", str(tmp_path / "ds"))
    _assert_failed_cleanly(res, tmp_path / "ds", f"{src}:3", words="invalid JSON")


@pytest.mark.parametrize("strict", [False, True])
def test_ten_megabyte_record(tmp_path, strict):
    src = write_jsonl(tmp_path / "in.jsonl", [*_good(), {"text": "word " * (BIG // 5)}, *_good(1)])
    args = [str(src), "--out", str(tmp_path / "ds"), "--no-redact"] + (["--strict"] if strict else [])
    res = _prepare(*args)
    if strict:
        _assert_failed_cleanly(res, tmp_path / "ds", f"{src}:4", field="text", words="max_record_chars")
    else:
        assert res.exit_code == 0, res.output
        [rej] = read_jsonl(tmp_path / "ds" / "rejected.jsonl")
        assert (rej["where"], rej["reason"], rej["field"]) == ("in.jsonl:4", "too_long", "text")
        assert (tmp_path / "ds" / "rejected.jsonl").stat().st_size < 500  # the text itself is not copied


def test_bad_config_field_exits_2(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", _good())
    cfg = tmp_path / "prep.yaml"
    cfg.write_text("redact:\n  entities: [SHOE_SIZE]\n")
    res = _prepare(str(src), "--out", str(tmp_path / "ds"), "--config", str(cfg))
    _assert_failed_cleanly(res, tmp_path / "ds", "field 'redact.entities'", words="SHOE_SIZE")


def test_success_prints_one_summary_line(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", _good(10))
    res = _prepare(str(src), "--out", str(tmp_path / "ds"), "--seed", "3", "--stratify-by", "category")
    assert res.exit_code == 0, res.output
    assert f"{tmp_path / 'ds'}: train 8 / val 1 / test 1 (0 rejected, 0 duplicates, 0 near-duplicates)" in res.output
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["config"]["split"]["seed"] == 3 and manifest["config"]["strict"] is False
