"""Where a process stands in a torchrun launch, and the one collective the course needs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from helpers.environment import best_device


@dataclass
class Distributed:
    """Where this process stands in a torchrun launch: rank, world size, and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints and prints; the others only compute."""
        return self.rank == 0


def setup_distributed(device: str | torch.device | None) -> Distributed:
    """Join the process group torchrun describes (nccl on GPUs, gloo on CPU), or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = torch.device(device) if device is not None else best_device()
    if world == 1:
        return Distributed(0, 1, device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), device)


def sum_across(values: list[float], run: Distributed) -> list[float]:
    """Sum numbers over all processes (identity when alone)."""
    if run.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=run.device)
    dist.all_reduce(t)
    return t.tolist()
