"""Reading JSONL / JSON / CSV, per-record format detection, normalisation, validation and file-level errors."""

from __future__ import annotations

import json

import pytest
from data_helpers import write_jsonl

from privtune.config import PrepareConfig
from privtune.data.formats import Record, read_records, stable_id
from privtune.data.validate import Rejection
from privtune.errors import InputError


def _records(path, cfg=None):
    items = list(read_records(path, cfg))
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, Rejection)]


def test_every_input_shape_is_normalised(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        {"id": 7, "instruction": "Classify the ticket.", "input": "Card lost.", "output": "card_lost",
         "system": "You are a triage bot.", "category": "card_lost"},
        {"prompt": "Say hi", "completion": "hi", "metadata": {"department": "ops"}},
        "",
        {"messages": [{"role": "user", "content": "q", "name": "x"}, {"role": "assistant", "content": "a"}]},
        {"prompt": "Reply politely", "chosen": "Of course!", "rejected": "No.", "metadata": {"category": "tone"}},
        {"text": "Raw document for continued pre-training."},
        {"instruction": "Only an instruction", "input": "", "output": "ok"},
    ])
    recs, rejected = _records(path)
    assert rejected == []
    assert [r.fmt for r in recs] == ["alpaca", "prompt_completion", "chat", "preference", "text", "alpaca"]
    assert [r.line for r in recs] == [1, 2, 4, 5, 6, 7]
    alpaca, pc, chat, pref, text, bare = (r.data for r in recs)
    assert alpaca == {"id": "7", "messages": [
        {"role": "system", "content": "You are a triage bot."},
        {"role": "user", "content": "Classify the ticket.\n\nCard lost."},
        {"role": "assistant", "content": "card_lost"}], "metadata": {"category": "card_lost", "source_line": "mixed.jsonl:1"}}
    assert pc["messages"] == [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}]
    assert pc["metadata"] == {"department": "ops", "source_line": "mixed.jsonl:2"}
    assert chat["messages"][0] == {"role": "user", "content": "q"}  # extra keys dropped
    assert pref == {"id": pref["id"], "messages": [{"role": "user", "content": "Reply politely"}],
                    "chosen": "Of course!", "rejected": "No.", "metadata": {"category": "tone", "source_line": "mixed.jsonl:5"}}
    assert text == {"id": text["id"], "text": "Raw document for continued pre-training.",
                    "metadata": {"source_line": "mixed.jsonl:6"}}
    assert bare["messages"][0]["content"] == "Only an instruction"  # empty input adds nothing
    for r in (pc, chat, pref, text):
        assert len(r["id"]) == 16 and int(r["id"], 16) >= 0
    assert recs[0].id_given and not recs[1].id_given


def test_stable_id_ignores_position_but_not_content():
    a = {"id": None, "text": "same", "metadata": {"category": "x", "source_line": "a.jsonl:1"}}
    b = {"id": None, "text": "same", "metadata": {"category": "x", "source_line": "b.jsonl:99"}}
    c = {"id": None, "text": "other", "metadata": {"category": "x", "source_line": "a.jsonl:1"}}
    assert stable_id(a) == stable_id(b) != stable_id(c)


def test_json_list_and_data_object_report_the_line_of_each_record(tmp_path):
    listed = tmp_path / "list.json"
    listed.write_text('[\n  {"text": "one"},\n\n  {"text": "two",\n   "id": "b"},   {"text": "three"}\n]\n')
    recs, _ = _records(listed)
    assert [(r.line, r.data["text"]) for r in recs] == [(2, "one"), (4, "two"), (5, "three")]

    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text('{"meta": {"data": [1, 2]},\n "data": [\n   {"prompt": "p", "completion": "c"},\n'
                       '   {"prompt": "q", "completion": "d"}\n ]}')
    recs, _ = _records(wrapped)
    assert [r.where for r in recs] == ["wrapped.json:3", "wrapped.json:4"]


def test_csv_metadata_columns_multiline_cells_and_line_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,instruction,input,output,metadata.department,category,unrelated\n'
                    '1,"Summarise:\nline two",,short,retail,card_lost,ignored\n'
                    '2,Classify,some input,fee_dispute,,fee_dispute,\n'
                    '3,too,many,cells,in,this,row,here\n', encoding="utf-8")
    recs, rejected = _records(path)
    assert [(r.line, r.data["id"]) for r in recs] == [(2, "1"), (4, "2")]
    assert recs[0].data["messages"][0]["content"] == "Summarise:\nline two"
    assert recs[0].data["metadata"] == {"department": "retail", "category": "card_lost", "source_line": "t.csv:2"}
    assert recs[1].data["metadata"] == {"category": "fee_dispute", "source_line": "t.csv:4"}
    assert "unrelated" not in json.dumps([r.data for r in recs])  # unknown columns never ride along
    assert [(r.where, r.reason) for r in rejected] == [("t.csv:5", "csv_columns")]


@pytest.mark.parametrize(("row", "reason", "field"), [
    ({"instruction": "no output"}, "missing_field", "output"),
    ({"prompt": "p", "completion": 3}, "wrong_type", "completion"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}, "invalid_role",
     "messages[1].role"),
    ({"messages": [{"role": "user", "content": "q"}]}, "last_not_assistant", "messages[0].role"),
    ({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "a"}]}, "empty_field",
     "messages[0].content"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"},
                   {"role": "assistant", "content": "a"}]}, "system_not_first", "messages[1].role"),
    ({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}, "no_user_message",
     "messages"),
    ({"messages": "not a list"}, "wrong_type", "messages"),
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, "chosen_equals_rejected", "rejected"),
    ({"prompt": "p", "chosen": "yes"}, "missing_field", "rejected"),
    ({"text": "t", "metadata": ["not", "an", "object"]}, "wrong_type", "metadata"),
    ({"text": "t", "id": True}, "wrong_type", "id"),
    ({"question": "q", "answer": "a"}, "unknown_format", None),
    ([1, 2], "not_an_object", None),
    ('{"text": "unterminated', "invalid_json", None),
])
def test_bad_record_is_rejected_with_line_field_and_reason_but_no_text(tmp_path, row, reason, field):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "fine"}, row])
    recs, rejected = _records(path)
    assert len(recs) == 1 and len(rejected) == 1
    rej = rejected[0].row()
    assert rej["where"] == "in.jsonl:2" and rej["reason"] == reason and rej["field"] == field
    assert set(rej) == {"where", "field", "reason", "message"}
    for value in ("no output", "same", "unterminated", "not a list"):
        assert value not in json.dumps(rej)


def test_record_longer_than_max_record_chars_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "big.jsonl", [{"text": "x" * 50}, {"prompt": "p", "completion": "y" * 200}])
    recs, rejected = _records(path, PrepareConfig(max_record_chars=100))
    assert len(recs) == 1
    assert (rejected[0].where, rejected[0].reason, rejected[0].field) == ("big.jsonl:2", "too_long", "messages[1].content")


@pytest.mark.parametrize(("name", "content", "where", "words"), [
    ("empty.jsonl", b"", "empty.jsonl:1", "empty"),
    ("blank.jsonl", b"\n  \n", "blank.jsonl:1", "empty"),
    ("latin1.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n', "latin1.jsonl:2", "byte offset 28"),
    ("bad.json", b'[\n {"text": "a"},\n {"text": }\n]', "bad.json:3", "invalid JSON"),
    ("lines.json", b'{"text": "a"}\n{"text": "b"}\n', "lines.json:2", ".jsonl"),
    ("scalar.json", b'"just a string"', "scalar.json:1", "list of records"),
    ("broken.csv", b'text,id\n"ok",1\n"never closed,2\nmore,3\n', "broken.csv:3", "quoting"),
    ("stray.csv", b'text,id\n"a"b,1\n', "stray.csv:2", "quoting"),
    ("noknown.csv", b'question,answer\nq,a\n', "noknown.csv:1", "no known column"),
    ("data.xml", b"<records/>", "data.xml", "unsupported file type"),
])
def test_unreadable_file_raises_input_error_naming_file_and_line(tmp_path, name, content, where, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        list(read_records(path))
    expected = f"{path}:{where.split(':')[1]}" if ":" in where else str(path)
    assert err.value.where == expected
    assert words in str(err.value)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        list(read_records(tmp_path / "nope.jsonl"))


def test_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,category\nhello,a\n".encode())
    recs, _ = _records(path)
    assert recs[0].data["text"] == "hello" and recs[0].data["metadata"]["category"] == "a"
