"""The real packaged SmolLM2-135M: a few optimizer steps lower the val loss and export a loadable adapter."""

from __future__ import annotations

import json

import pytest
from train_helpers import write_dataset

from privtune.config import TrainConfig
from privtune.train.sft import train

TICKETS = {
    "card_lost": ["I lost my debit card at the station.", "My card is gone, I think it was stolen from my bag.",
                  "Can't find my credit card anywhere since yesterday."],
    "transfer_failed": ["My transfer to my landlord bounced back.", "The payment I sent failed twice today.",
                        "Why did my wire transfer not go through?"],
    "account_access": ["I can't log in to online banking.", "Please reset my password, I am locked out.",
                       "The app says my account is blocked after wrong PIN attempts."],
    "fraud_report": ["There is a charge I never made on my statement.", "Someone used my account abroad.",
                     "I see payments to a shop I have never visited."],
}


def _records(start: int, n: int) -> list[dict]:
    labels = sorted(TICKETS)
    out = []
    for i in range(start, start + n):
        label = labels[i % 4]
        text = TICKETS[label][(i // 4) % 3]
        out.append({"id": f"t{i}", "messages": [
            {"role": "system", "content": "Classify the support ticket. Answer with the label only."},
            {"role": "user", "content": text}, {"role": "assistant", "content": label}], "metadata": {}})
    return out


@pytest.mark.slow
def test_packaged_model_few_steps_lower_val_loss(packaged_base, tmp_path):
    data = write_dataset(tmp_path / "data", _records(0, 24), _records(24, 8))
    out = tmp_path / "run"
    # one thread: on a shared 2-core runner two OpenMP threads contending with other jobs are 3x slower
    cfg = dict(base=packaged_base.path, epochs=1, batch_size=4, learning_rate=2e-3, max_seq_len=128, log_every=2,
               num_threads=1)
    run = train(data, out, TrainConfig(**cfg))
    assert run["steps"] == 6 and run["loss_mode"] == "label_positions"
    assert run["final_val_loss"] < 0.8 * run["initial_val_loss"]
    assert (out / "adapter" / "adapter_model.safetensors").stat().st_size > 1_000_000
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 16
    assert (out / "adapter" / "tokenizer.json").is_file()
