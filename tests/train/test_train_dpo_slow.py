"""DPO on the real packaged SmolLM2-135M: a few steps move the policy towards the chosen answers."""

from __future__ import annotations

import json

import pytest
from train_helpers import write_dataset

from privtune.config import TrainConfig
from privtune.train.dpo import train

QUESTIONS = ["How do I block a lost card?", "Why did my transfer fail?", "How can I reset my PIN?",
             "Can I raise my daily limit?", "Where do I see my statement?", "How do I report fraud?"]


def _prefs(start: int, n: int) -> list[dict]:
    out = []
    for i in range(start, start + n):
        q = QUESTIONS[i % len(QUESTIONS)]
        out.append({"id": f"p{i}", "messages": [{"role": "user", "content": q}],
                    "chosen": "I'm sorry for the trouble. Open the app, choose Cards, and follow the steps; "
                              "our team is here if you need us.",
                    "rejected": "Not my problem. Figure it out yourself.", "metadata": {}})
    return out


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
def test_packaged_model_dpo_few_steps(packaged_base, tmp_path):
    data = write_dataset(tmp_path / "data", _prefs(0, 16), _prefs(16, 6))
    cfg = TrainConfig(method="dpo", base=packaged_base.path, epochs=1, batch_size=4, learning_rate=5e-4,
                      max_seq_len=128, log_every=1, num_threads=1)
    run = train(data, tmp_path / "run", cfg)
    assert run["status"] == "finished" and run["steps"] == 4
    assert run["initial_val_loss"] == pytest.approx(0.6931, abs=1e-3)
    assert run["best_val_loss"] < 0.6 and run["val_reward_accuracy"] >= 0.8
    assert json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())["r"] == 16
