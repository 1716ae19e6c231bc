"""DP-SGD on the real packaged SmolLM2-135M: a few private steps still lower the val loss, with a finite ε."""

from __future__ import annotations

import math

import pytest
from test_train_slow import _records
from train_helpers import write_dataset

from privtune.config import TrainConfig
from privtune.train.sft import train

pytestmark = pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha:UserWarning")


@pytest.mark.slow
def test_packaged_model_dp_steps_lower_val_loss(packaged_base, tmp_path):
    data = write_dataset(tmp_path / "data", _records(0, 32), _records(32, 8))
    # one record per backward pass: ~1 CPU-second per record on this model, so few records and steps
    # batches of 8 (sampling rate 1/4): with 4 records per step the noise is twice as large against the signal,
    # and one CI run in many ended with no drop (the noise seed is secret, so runs differ); these
    # settings fell by 0.16-0.37 (24 runs; the old ones: 28 runs, 0.03-0.18)
    cfg = TrainConfig(base=packaged_base.path, epochs=1, max_steps=4, batch_size=8, learning_rate=3e-3,
                      warmup_ratio=0.0, max_seq_len=128, num_threads=1, dp={"epsilon": 8.0})
    run = train(data, tmp_path / "run", cfg)
    dp = run["dp"]
    assert run["steps"] == dp["steps"] == 4 and dp["sample_rate"] == 8 / 32
    assert math.isfinite(dp["epsilon"]) and 0 < dp["epsilon"] <= 8.0 and dp["noise_multiplier"] > 0
    assert run["final_val_loss"] < run["initial_val_loss"] - 0.05  # clearly, not by rounding
