"""DP-SGD over the trainable (LoRA) parameters: Poisson sampling, per-record clipping, Gaussian noise, accounting.

Each step samples every training record independently with probability q (Poisson sampling, what the RDP/PRV
analysis of the subsampled Gaussian mechanism assumes), computes each sampled record's gradient on its own
(one record per backward pass: exact for any model, no hooks into PEFT layers), scales it to L2 norm ≤ C,
sums, adds N(0, σ²C²) per coordinate and divides by the expected batch size qN. σ is the smallest noise that
keeps the whole run within the target ε (Opacus's accountant, not a hand-rolled one); ε actually spent is
recomputed from the steps taken. The sampling and the noise come from a secret seed: a known seed would let
anyone subtract the noise.
"""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version as dist_version

import numpy as np
import torch

from privtune.errors import InputError

SampleLoss = Callable[[dict], tuple[torch.Tensor, int]]  # one-record batch → (sum of token losses, tokens)


@dataclass
class DPPlan:
    """What run.json reports about the privacy of a run (ε is filled in as steps are taken)."""

    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    expected_batch_size: float
    delta: float
    planned_steps: int
    accountant: str
    target_epsilon: float | None
    steps: int = 0
    epsilon: float | None = 0.0
    sampling: str = "poisson"
    unit: str = "training record"

    def to_dict(self) -> dict:
        """JSON-safe: ε is null when infinite (no noise), with `epsilon_infinite` saying so."""
        d = asdict(self)
        infinite = d["epsilon"] is not None and not math.isfinite(d["epsilon"])
        return {**d, "epsilon": None if infinite else d["epsilon"], "epsilon_infinite": infinite,
                "opacus_version": dist_version("opacus")}


def default_delta(n_train: int) -> float:
    """δ well below 1/N (a mechanism that leaks one whole record with probability 1/N is not private)."""
    return min(1e-5, 1.0 / (10 * n_train))


def _accountant(name: str):
    from opacus.accountants import create_accountant

    return create_accountant(mechanism=name)


def noise_multiplier_for(epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str = "rdp"
                         ) -> float:
    """The smallest σ for which `steps` Poisson-subsampled Gaussian steps stay within (ε, δ)."""
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():  # "optimal order is the largest alpha" only means a large ε
        warnings.simplefilter("ignore", UserWarning)
        return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                          steps=steps, accountant=accountant))


def epsilon_spent(noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp"
                  ) -> float:
    """ε after `steps` steps (0 before the first, inf without noise)."""
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    acc = _accountant(accountant)
    acc.history = [(noise_multiplier, sample_rate, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(acc.get_epsilon(delta=delta))


def plan(cfg_dp, n_train: int, logical_batch: int, steps: int) -> DPPlan:
    """σ, q and δ for a run of `steps` steps over n_train records with `logical_batch` records per step expected."""
    if n_train < 2 * logical_batch:
        raise InputError(f"DP-SGD needs more training records ({n_train}) than twice the batch size "
                         f"({logical_batch}): privacy comes from each record being in few batches", field="dp")
    q = logical_batch / n_train
    delta = cfg_dp.delta if cfg_dp.delta is not None else default_delta(n_train)
    if cfg_dp.noise_multiplier is not None:
        sigma = float(cfg_dp.noise_multiplier)
    else:
        try:
            sigma = noise_multiplier_for(cfg_dp.epsilon, delta, q, steps, cfg_dp.accountant)
        except ValueError as e:
            raise InputError(f"no noise level reaches ε={cfg_dp.epsilon} with δ={delta:g} over {steps} steps ({e})",
                             field="dp.epsilon") from None
    return DPPlan(noise_multiplier=sigma, max_grad_norm=cfg_dp.max_grad_norm, sample_rate=q,
                  expected_batch_size=float(logical_batch), delta=delta, planned_steps=steps,
                  accountant=cfg_dp.accountant, target_epsilon=cfg_dp.epsilon)


def new_secret_seed() -> int:
    return secrets.randbits(63)


def _stream_seed(seed: int, stream: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, stream, index]).generate_state(1, np.uint64)[0] >> 1)


def poisson_batches(n: int, sample_rate: float, steps: int, seed: int, epoch: int) -> list[list[int]]:
    """`steps` batches in which each of n records appears independently with probability sample_rate.

    Drawn as Binomial(n, q) many records without replacement (the same distribution, O(batch) per step).
    """
    rng = np.random.default_rng(_stream_seed(seed, 0, epoch))
    out = []
    for _ in range(steps):
        k = int(rng.binomial(n, sample_rate))
        out.append(sorted(int(i) for i in rng.choice(n, size=k, replace=False)))
    return out


def clip_factor(norm: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale that brings a gradient of L2 norm `norm` to at most max_norm (1 when it already is)."""
    return (max_norm / (norm + 1e-6)).clamp(max=1.0)


def clipped_grad_sum(sample_loss: SampleLoss, samples: Sequence[dict], params: Sequence[torch.Tensor],
                     max_norm: float) -> tuple[list[torch.Tensor], list[float], float]:
    """Σ_i clip(∇ loss_i): each record's gradient over `params` scaled to L2 norm ≤ max_norm, then summed.

    A record's loss is the mean over its supervised tokens. Returns (summed gradients, per-record norms before
    clipping, sum of the token losses).
    """
    summed = [torch.zeros_like(p) for p in params]
    norms, loss_sum = [], 0.0
    for batch in samples:
        s, n = sample_loss(batch)
        grads = torch.autograd.grad(s / max(n, 1), params)
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
        factor = clip_factor(norm, max_norm)
        for acc, g in zip(summed, grads, strict=True):
            acc.add_(g * factor.to(g.dtype))
        norms.append(float(norm))
        loss_sum += float(s.detach())
    return summed, norms, loss_sum


def add_noise(summed: Sequence[torch.Tensor], noise_multiplier: float, max_norm: float, expected_batch: float,
              seed: int, step: int) -> list[torch.Tensor]:
    """(Σ clipped grads + N(0, (σC)²)) / expected batch size; the noise stream is keyed by (secret seed, step)."""
    std = noise_multiplier * max_norm
    out = []
    gen = None
    for s in summed:
        if gen is None or gen.device != s.device:
            gen = torch.Generator(device=s.device).manual_seed(_stream_seed(seed, 1, step))
        noise = torch.normal(0.0, std, s.shape, generator=gen, device=s.device, dtype=s.dtype) if std > 0 else 0.0
        out.append((s + noise) / expected_batch)
    return out


def dp_step(sample_loss: SampleLoss, samples: Sequence[dict], params, opt, sched, dp: DPPlan, seed: int, step: int
            ) -> tuple[float, float, float, float]:
    """One DP-SGD optimizer step; returns (sum of token losses, mean pre-clip norm, share clipped, lr)."""
    summed, norms, loss_sum = clipped_grad_sum(sample_loss, samples, params, dp.max_grad_norm)
    if not math.isfinite(loss_sum):
        raise FloatingPointError(f"training loss is {loss_sum} at step {step}; lower the learning rate")
    noisy = add_noise(summed, dp.noise_multiplier, dp.max_grad_norm, dp.expected_batch_size, seed, step)
    for p, g in zip(params, noisy, strict=True):
        p.grad = g
    lr = opt.param_groups[0]["lr"]
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    dp.steps = step
    dp.epsilon = epsilon_spent(dp.noise_multiplier, dp.sample_rate, step, dp.delta, dp.accountant)
    mean_norm = sum(norms) / len(norms) if norms else 0.0
    clipped = sum(n > dp.max_grad_norm for n in norms) / len(norms) if norms else 0.0
    return loss_sum, mean_norm, clipped, lr
