"""Reading eval records: prompt/reference split, ids, categories, and file:line errors."""

import json

import pytest

from privtune.errors import InputError
from privtune.evaluate.records import load_records, resolve_data_file


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_prompt_is_everything_before_the_last_assistant_turn(tmp_path):
    multi = {"id": 7, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"}], "metadata": {"category": "billing"}}
    no_id = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    recs = load_records(_write(tmp_path / "t.jsonl", [multi, "", no_id]))
    assert [m["content"] for m in recs[0].prompt] == ["Be brief.", "q1", "a1", "q2"]
    assert recs[0].reference == "a2" and recs[0].id == "7" and recs[0].category == "billing"
    assert recs[1].id == "t:3" and recs[1].category is None and recs[1].line == 3  # blank line 2 skipped


@pytest.mark.parametrize("row, field, message", [
    ("{not json", None, "invalid JSON"),
    ([1, 2], None, "expected a JSON object"),
    ({"messages": []}, "messages", "non-empty list"),
    ({"messages": [{"role": "user", "content": "q"}]}, "messages", "no assistant message"),
    ({"messages": [{"role": "assistant", "content": "a"}]}, "messages", "no user message"),
    ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]},
     "messages[0].content", "string"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "metadata": "x"},
     "metadata", "object"),
    ({"id": {"a": 1}, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
     "id", "string"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, row, field, message):
    good = {"id": "ok", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path = _write(tmp_path / "t.jsonl", [good, row])
    with pytest.raises(InputError) as e:
        load_records(path)
    assert e.value.where == f"{path}:2" and e.value.field == field and message in str(e.value)


def test_non_utf8_line_and_empty_file(tmp_path):
    path = tmp_path / "t.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    path.write_bytes(good.encode() + b"\n\xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8") as e:
        load_records(path)
    assert e.value.where == f"{path}:2"
    with pytest.raises(InputError, match="no records"):
        load_records(_write(tmp_path / "empty.jsonl", [""]))


def test_dataset_dir_resolves_to_its_split(tmp_path):
    _write(tmp_path / "val.jsonl", ["{}"])
    assert resolve_data_file(tmp_path, "val") == tmp_path / "val.jsonl"
    with pytest.raises(InputError, match="'test' split") as e:
        resolve_data_file(tmp_path, "test")
    assert e.value.where == str(tmp_path / "test.jsonl")
