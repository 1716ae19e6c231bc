import os
import stat

import pytest

from privtune import fsio


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_write_is_private_and_leaves_no_temp_on_error(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.json"
    fsio.write_json(target, {"a": 1})
    assert _mode(target) == 0o600 and _mode(target.parent) == 0o700 and _mode(target.parent.parent) == 0o700
    with pytest.raises(RuntimeError), fsio.atomic_open(tmp_path / "x.txt") as fh:
        fh.write("partial")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_existing_parent_mode_is_never_changed(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    fsio.write_text(shared / "f.txt", "x")
    fsio.ensure_private_dir(shared)
    assert _mode(shared) == 0o1777


def test_staged_dir_appears_whole_or_not_at_all(tmp_path):
    final = tmp_path / "ds"
    with pytest.raises(ValueError), fsio.staged_dir(final) as tmp:
        (tmp / "a.jsonl").write_text("{}")
        raise ValueError("bad input")
    assert not final.exists() and list(tmp_path.iterdir()) == []
    with fsio.staged_dir(final) as tmp:
        (tmp / "a.jsonl").write_text("{}")
    assert (final / "a.jsonl").exists() and _mode(final) == 0o700 and _mode(final / "a.jsonl") == 0o600
