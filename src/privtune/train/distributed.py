"""Data parallelism for the SFT loop under `accelerate launch` or `torchrun` (several GPUs, several machines).

The loop is not wrapped in DDP: its loss runs the decoder body and the LM head separately (head only at label
positions), which DDP's forward hooks would not see. Instead every process takes its share of each optimizer
step's records, the gradients of the trainable parameters are summed across processes before clipping, and the
identical AdamW step keeps the replicas identical. `batch_size` stays the number of records per forward pass
summed over all processes, so one config gives the same training on 1 or N processes (up to float summation
order). Accelerate's `PartialState` picks the backend (NCCL on GPUs, gloo on CPU) and the device per process.
Only process 0 writes files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from privtune.errors import InputError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence) -> list:
        """This process's share: every world-th item from its rank."""
        return list(items[self.rank:: self.world])

    def all_sum(self, values: Sequence[float], device) -> list[float]:
        if self.world == 1:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def sum_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Σ over processes of each trainable parameter's gradient (zeros where a process had no records)."""
        if self.world == 1:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            torch.distributed.all_reduce(p.grad)

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def setup(device: str = "auto") -> tuple[Dist, torch.device | None]:
    """(Dist, this process's device) when launched with WORLD_SIZE > 1, else (single process, None)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), None
    for var, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if os.environ.get(var, "").lower() in ("1", "true"):
            raise InputError(f"{name} is not supported by privtune's loop; use a plain multi-GPU (DDP) accelerate "
                             "config: LoRA replicas are small", field="accelerate config")
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())  # gloo on CPU, NCCL on GPUs
    if state.num_processes != world:  # two processes that both believe they are alone would both write
        raise RuntimeError(f"WORLD_SIZE={world} but accelerate set up {state.num_processes} process(es)")
    return Dist(state.process_index, state.num_processes), state.device
