"""--method dpo (TRL DPOTrainer, reference = base with the adapter off) and --method distill on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import PROMPTS, fast_config, record, write_dataset

from privtune import fsio
from privtune.errors import InputError
from privtune.train import distill, dpo

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pref(i: int) -> dict:
    """Prefer the label i%4 over (i+1)%4: a preference the policy can learn."""
    return {"id": f"p{i}", "messages": [{"role": "user", "content": PROMPTS[i % 4] + "!" * (i % 3)}],
            "chosen": str(i % 4), "rejected": str((i + 1) % 4), "metadata": {}}


@pytest.fixture()
def pref_data(tmp_path) -> Path:
    return write_dataset(tmp_path / "prefs", [pref(i) for i in range(48)], [pref(i) for i in range(48, 60)])


# ------------------------------------------------------------------------------------------ dpo
def test_parse_preference_errors_name_line_and_field(tmp_path):
    p = tmp_path / "train.jsonl"
    good = json.dumps(pref(0))
    bad = {**pref(1), "rejected": "1"}  # same as chosen
    p.write_text(good + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(InputError, match=r"train.jsonl:3.*rejected.*same answer"):
        dpo.read_preferences(p)
    p.write_text(json.dumps({**pref(0), "messages": [{"role": "assistant", "content": "x"}]}) + "\n")
    with pytest.raises(InputError, match=r"train.jsonl:1.*messages.*user turn"):
        dpo.read_preferences(p)
    p.write_text(json.dumps({k: v for k, v in pref(0).items() if k != "chosen"}) + "\n")
    with pytest.raises(InputError, match=r"field 'chosen'|chosen"):
        dpo.read_preferences(p)
    rows = dpo.trl_rows([dpo.parse_preference(good, "x:1")])
    assert rows == [{"prompt": [{"role": "user", "content": PROMPTS[0]}],
                     "chosen": [{"role": "assistant", "content": "0"}],
                     "rejected": [{"role": "assistant", "content": "1"}]}]


def test_trl_config_never_reports_or_pushes(tmp_path, tiny_model_dir):
    from privtune.config import TrainConfig

    kw = dpo.trl_config_kwargs(TrainConfig(method="dpo", max_steps=3), tmp_path, cuda=False)
    assert kw["report_to"] == "none" and kw["push_to_hub"] is False and kw["save_strategy"] == "no"
    assert kw["use_cpu"] and not kw["bf16"] and kw["beta"] == 0.1 and kw["max_steps"] == 3
    assert kw["learning_rate"] == 5e-5  # dpo's own default when the config names none
    from trl import DPOConfig

    assert DPOConfig(**kw).beta == 0.1


def test_dpo_learns_the_preference_and_writes_a_run(learnable_model_dir, pref_data, tmp_path):
    out = tmp_path / "run"
    cfg = fast_config(learnable_model_dir, method="dpo", epochs=3, learning_rate=2e-2, log_every=2)
    run = dpo.train(pref_data, out, cfg)
    assert run["status"] == "finished" and run["method"] == "dpo" and run["artefact"] == "adapter"
    assert run["initial_val_loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference: -log sigmoid(0)
    assert run["best_val_loss"] < 0.5 * run["initial_val_loss"]
    assert run["val_reward_accuracy"] >= 0.9 and run["steps"] == 3 * 6
    assert run["reference"].startswith("base model")
    assert run["adapter_sha256"] == fsio.sha256_dir(out / "adapter")
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "adapter" / "tokenizer.json").is_file()
    assert not (out / ".trl").exists()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and rows[0]["val_loss"] == pytest.approx(run["initial_val_loss"])
    assert [r["step"] for r in rows if r["val_loss"] is not None] == [0, 6, 12, 18]
    assert all(r["train_loss"] is not None and r["lr"] > 0 for r in rows if r["val_loss"] is None)
    assert min(r["val_loss"] for r in rows if r["val_loss"] is not None) == pytest.approx(run["best_val_loss"])
    from privtune.registry.store import list_runs

    assert list_runs()[0]["method"] == "dpo"

    # the saved adapter really prefers the chosen answers: policy log-ratio margin > 0 on val
    from peft import PeftModel

    from privtune.models import load_model, load_tokenizer, resolve_base

    base = resolve_base(str(learnable_model_dir))
    tok = load_tokenizer(base)
    model = PeftModel.from_pretrained(load_model(base), out / "adapter").eval()
    wins = 0
    for i in range(48, 60):
        p = pref(i)
        prompt = tok.apply_chat_template(p["messages"], tokenize=False, add_generation_prompt=True)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1]
        wins += logits[tok.convert_tokens_to_ids(p["chosen"])] > logits[tok.convert_tokens_to_ids(p["rejected"])]
    assert wins >= 11


def test_dpo_rejects_chat_records_before_creating_the_run(learnable_model_dir, label_data, tmp_path):
    with pytest.raises(InputError, match=r"train.jsonl:1.*chosen"):
        dpo.train(label_data, tmp_path / "run", fast_config(learnable_model_dir, method="dpo"))
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------ distill
def test_distill_from_a_tuned_run_teaches_the_student(learnable_model_dir, label_data, tmp_path):
    from privtune.train.sft import train as sft_train

    teacher = tmp_path / "teacher"
    sft_train(label_data, teacher, fast_config(learnable_model_dir, epochs=4, patience=4))
    # the student sees the same prompts with wrong references: only the teacher's answers can teach it
    wrong = write_dataset(tmp_path / "wrong", [record(i, "x") for i in range(64)],
                          [record(i, "x") for i in range(64, 80)])
    out = tmp_path / "student"
    cfg = fast_config(learnable_model_dir, method="distill", epochs=3,
                      distill={"teacher": str(teacher), "max_new_tokens": 4})
    run = distill.train(wrong, out, cfg)
    assert run["status"] == "finished" and run["method"] == "distill" and run["artefact"] == "adapter"

    data = out / "distill_data"
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["kind"] == "distilled" and manifest["teacher"]["kind"] == "run"
    assert manifest["teacher"]["adapter_sha256"] == json.loads((teacher / "run.json").read_text())["adapter_sha256"]
    assert manifest["source_dataset"]["manifest_sha256"] == fsio.sha256_file(wrong / "manifest.json")
    assert run["dataset"]["path"] == str(data.resolve())
    assert run["dataset"]["manifest_sha256"] == fsio.sha256_file(data / "manifest.json")
    rows = [json.loads(x) for x in (data / "train.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(64)]
    assert [r["messages"][:-1] for r in rows] == [record(i, "x")["messages"][:-1] for i in range(64)]

    # the targets are exactly what the teacher generates for those prompts, never the wrong references
    from privtune.evaluate.generate import generate, load_run_model

    model, tok, _ = load_run_model(teacher)
    expected = generate(model, tok, [r["messages"][:-1] for r in rows], 4, show_progress=False)
    assert [r["messages"][-1]["content"] for r in rows] == expected
    assert all(e != "x" for e in expected)
    assert run["best_val_loss"] < 0.3 * run["initial_val_loss"]  # the student imitates the teacher


def test_distill_needs_a_teacher(learnable_model_dir, label_data, tmp_path):
    with pytest.raises(InputError, match="--teacher"):
        distill.train(label_data, tmp_path / "r", fast_config(learnable_model_dir, method="distill"))
    with pytest.raises(InputError, match="teacher not found"):
        distill.train(label_data, tmp_path / "r", fast_config(learnable_model_dir, method="distill",
                                                              distill={"teacher": str(tmp_path / "nope")}))
    assert not (tmp_path / "r").exists()


def test_dpo_refuses_differential_privacy(learnable_model_dir, pref_data, tmp_path):
    cfg = fast_config(learnable_model_dir, method="dpo", dp={"epsilon": 8.0})
    with pytest.raises(InputError, match="not available for DPO"):
        dpo.train(pref_data, tmp_path / "run", cfg)
    assert not (tmp_path / "run").exists()
