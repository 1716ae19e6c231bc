"""Loop options: gradient checkpointing changes memory, not results; bf16 autocast only where the hardware has it."""

from __future__ import annotations

import pytest
import torch
from train_helpers import fast_config

from privtune.train.sft import autocast_dtype, train

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def test_gradient_checkpointing_gives_the_same_training(learnable_model_dir, label_data, tmp_path):
    plain = train(label_data, tmp_path / "a", fast_config(learnable_model_dir, epochs=1))
    ckpt = train(label_data, tmp_path / "b", fast_config(learnable_model_dir, epochs=1, gradient_checkpointing=True))
    assert ckpt["final_val_loss"] == pytest.approx(plain["final_val_loss"], abs=1e-5)
    assert ckpt["final_val_loss"] < ckpt["initial_val_loss"]


def test_bf16_autocast_is_off_on_cpu_unless_forced():
    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("off", cpu) is None
    assert autocast_dtype("on", cpu) is torch.bfloat16
