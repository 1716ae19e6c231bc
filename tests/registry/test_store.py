"""Registry: the same behaviour on SQLite and on a real PostgreSQL server; schema owned by Alembic migrations."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect, text

from privtune import fsio
from privtune.registry import store

M1, M2 = "1" * 64, "2" * 64


def _run_json(manifest: str, **extra) -> dict:
    return {"base": {"name": "SmolLM2-135M-Instruct", "weights_sha256": "c" * 64},
            "dataset": {"path": "/data/x", "manifest_sha256": manifest}, "config": {"method": "lora", "lr": 2e-4},
            "best_val_loss": 1.25, "best_epoch": 2, "adapter_sha256": "d" * 64, **extra}


def test_runs_datasets_and_evals_roundtrip(registry_db, tmp_path, capsys):
    store.record_dataset(tmp_path / "data", {"counts": {"train": 8}, "sources": [{"path": "a.jsonl", "sha256": M2}]},
                         M1)
    run_dir = tmp_path / "run"
    rid = store.record_run(run_dir, _run_json(M1, adapter_name="tickets"))
    assert store.record_run(run_dir, _run_json(M1, adapter_name="tickets", best_val_loss=1.0)) == rid  # upsert
    report = {"n": 5, "tuned": {"accuracy": 0.8}, "base": {"accuracy": 0.2}}
    fsio.write_json(tmp_path / "report.json", report)
    store.record_eval(run_dir, "default", tmp_path / "report.json", report)
    [row] = store.list_runs()
    assert row["id"] == rid and row["adapter_name"] == "tickets" and row["best_val_loss"] == 1.0
    assert row["dataset_sha256"] == M1[:12] and row["eval"] == {"accuracy": 0.8} and row["eval_base"] == {
        "accuracy": 0.2}
    assert row["status"] == "finished"
    store.print_runs(as_json=True)
    assert json.loads(capsys.readouterr().out)[0]["path"] == str(run_dir.resolve())


def test_mark_retrain_required_flags_exactly_the_affected_runs(registry_db, tmp_path):
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    store.record_run(a, _run_json(M1))
    store.record_run(b, _run_json(M2))
    store.record_run(c, _run_json(M1))
    flagged = store.mark_retrain_required([M1], "erasure request 1234")
    assert sorted(r["path"] for r in flagged) == sorted(str(p.resolve()) for p in (a, c))
    assert store.run_status(a) == store.RETRAIN_REQUIRED and store.run_status(b) == "finished"
    assert store.run_status(tmp_path / "unknown") is None
    assert {r["path"] for r in store.runs_trained_on([M1])} == {str(a.resolve()), str(c.resolve())}
    store.record_run(a, _run_json(M1))  # re-recording the same run must not clear the flag
    assert store.run_status(a) == store.RETRAIN_REQUIRED
    store.record_run(a, _run_json(M2))  # retrained on a new dataset version: the flag goes
    assert store.run_status(a) == "finished"
    rows = {r["path"]: r for r in store.runs_trained_on([M1])}
    assert rows[str(c.resolve())]["status_reason"] == "erasure request 1234"


def test_dataset_superseded(registry_db, tmp_path):
    store.record_dataset(tmp_path / "d", {"counts": {}}, M1)
    assert store.mark_dataset_superseded(M1, M2) == 1
    with store.session() as s:
        assert s.scalar(text("SELECT superseded_by FROM datasets")) == M2


def test_replayed_migrations_match_the_models(registry_db):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(registry_db)
    with engine.begin() as conn:  # every revision from an empty database, as an old registry would go
        command.upgrade(store._alembic_config(conn), "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), store.Base.metadata)
        assert diff == [], diff
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
    engine.dispose()
    store.record_run("/r", _run_json(M1))  # the store accepts the replayed schema as current
    assert store.run_status("/r") == "finished"


def test_new_registry_is_stamped_at_head(registry_db):
    store.list_runs()
    engine = create_engine(registry_db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
    engine.dispose()


def test_pre_migration_registry_is_stamped_and_upgraded(registry_db, tmp_path):
    from alembic import command

    engine = create_engine(registry_db)
    with engine.begin() as conn:  # what the first release left behind: 0001's tables, no alembic_version
        command.upgrade(store._alembic_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO runs (path, method, base_name, base_sha256, dataset_manifest_sha256, status, "
                          "config, created_at) VALUES ('/old', 'lora', 'b', 'x', :m, 'finished', '{}', "
                          "CURRENT_TIMESTAMP)"), {"m": M1})
    engine.dispose()
    assert [r["path"] for r in store.runs_trained_on([M1])] == ["/old"]
    engine = create_engine(registry_db)
    cols = {c["name"] for c in inspect(engine).get_columns("runs")}
    engine.dispose()
    assert "status_reason" in cols


def test_concurrent_processes_share_one_registry(registry_db, tmp_path):
    code = ("import sys; from privtune.registry import store\n"
            "for i in range(5): store.record_run(f'{sys.argv[1]}/r{i}', {'dataset': {'manifest_sha256': 'm'}})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"w{w}")], env=dict(os.environ),
                              stderr=subprocess.PIPE, text=True) for w in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert len(store.runs_trained_on(["m"])) == 15


def test_sqlite_registry_is_private(tmp_path, monkeypatch):
    monkeypatch.delenv("PRIVTUNE_DB", raising=False)
    store.list_runs()
    db = store.privtune_home() / "registry.sqlite"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgres_url_is_what_a_team_sets(backend, pg_url, monkeypatch, tmp_path):
    """PRIVTUNE_DB=postgresql+psycopg://… is all a team member configures; two homes see the same runs."""
    monkeypatch.setenv("PRIVTUNE_DB", pg_url)
    store.record_run(tmp_path / "alice-run", _run_json(M1))
    monkeypatch.setenv("PRIVTUNE_HOME", str(tmp_path / "bob-home"))
    assert [r["path"] for r in store.list_runs()] == [str((tmp_path / "alice-run").resolve())]
    assert not (tmp_path / "bob-home" / "registry.sqlite").exists()
