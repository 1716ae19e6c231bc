"""Named adapters per department on one base: the name is in run.json and the registry, `privtune runs` groups by
it, and serving picks it up from run.json."""

from __future__ import annotations

import pytest
from train_helpers import fast_config, record, write_dataset
from typer.testing import CliRunner

from privtune.cli import app
from privtune.registry import store
from privtune.serve.loader import parse_adapter_specs
from privtune.train.sft import train

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


@pytest.fixture()
def data(tmp_path):
    return write_dataset(tmp_path / "data", [record(i, i % 4) for i in range(16)],
                         [record(i, i % 4) for i in range(16, 20)])


def test_adapters_per_department_are_named_grouped_and_servable(tiny_model_dir, data, tmp_path, capsys, monkeypatch):
    runs = {}
    for name, out in (("hr", "r1"), ("finance", "r2"), ("hr", "r3")):
        runs[out] = train(data, tmp_path / out, fast_config(tiny_model_dir, epochs=1, adapter_name=name))
    assert [runs[k]["adapter_name"] for k in ("r1", "r2", "r3")] == ["hr", "finance", "hr"]
    listed = store.list_runs()
    assert {r["path"]: r["adapter_name"] for r in listed} == {
        str((tmp_path / k).resolve()): v["adapter_name"] for k, v in runs.items()}
    grouped = store.group_runs(listed)
    assert [(r["adapter_name"], r["path"].rsplit("/", 1)[-1]) for r in grouped] == [
        ("finance", "r2"), ("hr", "r1"), ("hr", "r3")]  # per base: each adapter's versions together, oldest first

    monkeypatch.setenv("COLUMNS", "300")  # rich would abbreviate the names in a narrow terminal
    store.print_runs()
    table = capsys.readouterr().out
    assert table.index("finance") < table.index("hr")

    # serve loads them side by side under their names, read from run.json
    assert parse_adapter_specs([str(tmp_path / "r2"), str(tmp_path / "r3")]) == {
        "finance": tmp_path / "r2", "hr": tmp_path / "r3"}


def test_adapter_name_defaults_to_the_run_dir_and_bad_names_are_refused(tiny_model_dir, data, tmp_path):
    run = train(data, tmp_path / "tickets-v1", fast_config(tiny_model_dir, epochs=1))
    assert run["adapter_name"] == "tickets-v1"
    r = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "x"), "--base",
                                 str(tiny_model_dir), "--adapter-name", "fin ance"])
    assert r.exit_code == 2 and "adapter_name" in r.output
    assert not (tmp_path / "x").exists()


def test_cli_dp_and_adapter_name(tiny_model_dir, tmp_path):
    import json

    data = write_dataset(tmp_path / "d", [record(i, i % 4) for i in range(32)], [record(i, i % 4) for i in range(32, 36)])
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(out), "--base", str(tiny_model_dir),
                                 "--epochs", "1", "--threads", "1", "--batch-size", "4", "--adapter-name", "finance",
                                 "--dp-epsilon", "4", "--dp-delta", "1e-4"])
    assert r.exit_code == 0, r.output
    run = json.loads((out / "run.json").read_text())
    assert run["adapter_name"] == "finance" and run["config"]["dp"]["epsilon"] == 4.0
    assert run["dp"]["delta"] == 1e-4 and 0 < run["dp"]["epsilon"] <= 4.0 and run["dp"]["steps"] == 8
