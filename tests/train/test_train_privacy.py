"""DP-SGD: per-record clipping bounds every gradient, the noise is really added, ε is the accountant's, and a DP
run still learns (the reported Opacus+PEFT pitfall was updates that silently did nothing useful)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from train_helpers import fast_config, record, write_dataset

from privtune.config import DPConfig
from privtune.errors import InputError
from privtune.train import privacy
from privtune.train.sft import train

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning",
                                        "ignore:Optimal order is the largest alpha:UserWarning")


# ------------------------------------------------------------------------------------------ pure functions
def test_each_records_gradient_is_clipped_to_the_norm_before_summing():
    params = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    targets = [torch.tensor([3.0, 4.0, 0.0, 0.0, 0.0]),  # norm 5 → scaled to 1
               torch.tensor([0.3, 0.0, 0.0, 0.4, 0.0]),  # norm 0.5 → unchanged
               torch.tensor([0.0, 0.0, 0.0, 0.0, 12.0])]  # norm 12 → scaled to 1

    def sample_loss(batch):  # gradient of the loss wrt (params) is exactly batch["g"]
        flat = torch.cat(params)
        return (flat * batch["g"]).sum() * 2, 2  # (sum over 2 "tokens", 2 tokens): the mean's gradient is g

    summed, norms, _ = privacy.clipped_grad_sum(sample_loss, [{"g": g} for g in targets], params, max_norm=1.0)
    assert norms == pytest.approx([5.0, 0.5, 12.0], rel=1e-5)
    expected = targets[0] / 5 + targets[1] + targets[2] / 12
    assert torch.allclose(torch.cat(summed), expected, atol=1e-5)
    for g in targets:  # every record's contribution has norm ≤ C
        assert float(torch.linalg.vector_norm(g * privacy.clip_factor(torch.linalg.vector_norm(g), 1.0))) <= 1.0 + 1e-5


def test_noise_has_the_configured_scale_and_is_keyed_by_seed_and_step():
    summed = [torch.zeros(200_000)]
    none = privacy.add_noise(summed, 0.0, 1.0, 10.0, seed=1, step=1)[0]
    assert torch.count_nonzero(none) == 0
    a = privacy.add_noise(summed, 2.0, 0.5, 10.0, seed=1, step=1)[0]
    assert float(a.std()) == pytest.approx(2.0 * 0.5 / 10.0, rel=0.02)  # σ·C / expected batch
    assert torch.equal(a, privacy.add_noise(summed, 2.0, 0.5, 10.0, seed=1, step=1)[0])
    assert not torch.equal(a, privacy.add_noise(summed, 2.0, 0.5, 10.0, seed=1, step=2)[0])
    assert not torch.equal(a, privacy.add_noise(summed, 2.0, 0.5, 10.0, seed=2, step=1)[0])


def test_poisson_batches_sample_each_record_with_the_rate():
    batches = privacy.poisson_batches(1000, 0.05, 400, seed=3, epoch=1)
    sizes = [len(b) for b in batches]
    assert sum(sizes) / len(sizes) == pytest.approx(50, rel=0.05) and len(set(sizes)) > 5  # variable sizes
    assert all(len(set(b)) == len(b) for b in batches)
    assert batches == privacy.poisson_batches(1000, 0.05, 400, seed=3, epoch=1)
    assert batches != privacy.poisson_batches(1000, 0.05, 400, seed=3, epoch=2)


def test_plan_uses_the_accountants_noise_and_refuses_tiny_datasets():
    p = privacy.plan(DPConfig(epsilon=3.0), n_train=1000, logical_batch=50, steps=200)
    assert p.delta == 1e-5 and p.sample_rate == 0.05
    assert p.noise_multiplier == get_noise_multiplier(target_epsilon=3.0, target_delta=1e-5, sample_rate=0.05,
                                                      steps=200, accountant="rdp")
    assert privacy.epsilon_spent(p.noise_multiplier, 0.05, 200, 1e-5) <= 3.0
    assert privacy.default_delta(50_000) == pytest.approx(2e-6)
    with pytest.raises(InputError, match="more training records"):
        privacy.plan(DPConfig(epsilon=3.0), n_train=10, logical_batch=8, steps=5)


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture()
def dp_data(tmp_path):
    return write_dataset(tmp_path / "data", [record(i, i % 4) for i in range(128)],
                         [record(i, i % 4) for i in range(128, 144)])


def dp_config(model, **dp):
    return fast_config(model, epochs=3, batch_size=16, learning_rate=2e-2, patience=3, warmup_ratio=0.0,
                       dp={"max_grad_norm": 1.0, **dp})


def test_dp_training_learns_reports_the_accountants_epsilon_and_writes_it_to_run_json(learnable_model_dir, dp_data,
                                                                                       tmp_path):
    run = train(dp_data, tmp_path / "run", dp_config(learnable_model_dir, epsilon=8.0, seed=1))
    dp = run["dp"]
    assert run["best_val_loss"] < 0.6 * run["initial_val_loss"], (run["initial_val_loss"], run["best_val_loss"])
    assert dp["sample_rate"] == 16 / 128 and dp["steps"] == run["steps"] == 3 * 8 and dp["delta"] == 1e-5
    assert dp["accountant"] == "rdp" and dp["sampling"] == "poisson" and dp["max_grad_norm"] == 1.0
    assert math.isfinite(dp["epsilon"]) and 7.5 < dp["epsilon"] <= 8.0
    independent = RDPAccountant()
    for _ in range(dp["steps"]):
        independent.step(noise_multiplier=dp["noise_multiplier"], sample_rate=dp["sample_rate"])
    assert dp["epsilon"] == pytest.approx(independent.get_epsilon(delta=dp["delta"]), rel=1e-9)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["dp"]["epsilon"] == dp["epsilon"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][1:]
    assert all(0 <= r["clipped_frac"] <= 1 and r["epsilon"] > 0 for r in rows)
    assert "seed" not in json.dumps(dp)  # the secret sampling/noise seed never reaches run.json


def test_noise_is_really_applied(learnable_model_dir, dp_data, tmp_path):
    kw = dict(epochs=1, max_steps=3)
    a = train(dp_data, tmp_path / "a", dp_config(learnable_model_dir, noise_multiplier=1.0, seed=1).model_copy(
        update=kw))
    again = train(dp_data, tmp_path / "again", dp_config(learnable_model_dir, noise_multiplier=1.0, seed=1)
                  .model_copy(update=kw))
    other_seed = train(dp_data, tmp_path / "b", dp_config(learnable_model_dir, noise_multiplier=1.0, seed=2)
                       .model_copy(update=kw))
    no_noise = train(dp_data, tmp_path / "c", dp_config(learnable_model_dir, noise_multiplier=0.0, seed=1)
                     .model_copy(update=kw))
    assert a["adapter_sha256"] == again["adapter_sha256"]  # a fixed (test) seed reproduces the run
    assert len({a["adapter_sha256"], other_seed["adapter_sha256"], no_noise["adapter_sha256"]}) == 3
    assert no_noise["dp"]["epsilon"] is None and no_noise["dp"]["epsilon_infinite"]
    assert a["dp"]["noise_multiplier"] == 1.0 and math.isfinite(a["dp"]["epsilon"])
    secret = train(dp_data, tmp_path / "d", dp_config(learnable_model_dir, noise_multiplier=1.0).model_copy(
        update=kw))
    assert secret["adapter_sha256"] != a["adapter_sha256"]  # no seed: a fresh secret one


def test_dp_refuses_full_fine_tuning(learnable_model_dir, dp_data, tmp_path):
    with pytest.raises(InputError, match="adapter parameters"):
        train(dp_data, tmp_path / "run", dp_config(learnable_model_dir, epsilon=8.0).model_copy(
            update={"method": "full"}))
    assert not (tmp_path / "run").exists()


def _crash_at(monkeypatch, step: int) -> None:
    """Stop the loop with an exception before optimizer step `step` (the kill -9 path is tested in
    test_train_resume.py; here what matters is what the checkpoint carries for DP)."""
    from privtune.train.sft import Loop

    real = Loop.step

    def step_or_crash(self, group):
        if self.state.step + 1 == step:
            raise KeyboardInterrupt
        return real(self, group)

    monkeypatch.setattr(Loop, "step", step_or_crash)


def test_dp_run_resumes_with_its_secret_seed(learnable_model_dir, dp_data, tmp_path, monkeypatch):
    import shutil

    from privtune.train.sft import resume

    cfg = dp_config(learnable_model_dir, epsilon=8.0).model_copy(update={"epochs": 1, "checkpoint_every": 3})
    _crash_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        train(dp_data, tmp_path / "a", cfg)
    monkeypatch.undo()
    assert json.loads((tmp_path / "a" / "run.json").read_text())["status"] == "interrupted"
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    a, b = resume(tmp_path / "a"), resume(tmp_path / "b")
    # the secret seed came from the checkpoint, not a fresh draw: both continuations sample and noise alike
    assert a["adapter_sha256"] == b["adapter_sha256"] and a["steps"] == 8
    assert a["dp"]["steps"] == 8 and a["dp"]["epsilon"] == pytest.approx(privacy.epsilon_spent(
        a["dp"]["noise_multiplier"], a["dp"]["sample_rate"], 8, a["dp"]["delta"]), rel=1e-9)
    assert a["resumes"][0]["from_step"] == 3
