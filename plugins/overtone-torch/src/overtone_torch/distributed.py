"""Data parallelism under ``torchrun``: detect the environment, set up the process group."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    """This process's place: ``rank`` of ``size`` processes, ``local_rank`` on its machine (its GPU)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> World:
    """Join the process group when ``torchrun`` set ``WORLD_SIZE`` > 1 (gloo on CPU, nccl on CUDA)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)  # before NCCL starts, so each process owns its GPU
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), local_rank)


def barrier(world: World) -> None:
    """Wait for every process (a no-op for one process)."""
    if world.size > 1:
        dist.barrier()


def teardown(world: World) -> None:
    """Leave the process group if this run joined one."""
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
