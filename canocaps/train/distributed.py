"""Multi-GPU (or multi-process CPU) training through PyTorch DDP started by ``torchrun``.

Nothing here starts processes: ``torchrun --nproc_per_node G -m canocaps.cli train ...``
sets ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` and the trainer joins the group. The same
config runs on one process (no ``torchrun``) or many.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info_from_env() -> DistInfo:
    return DistInfo(rank=int(os.environ.get("RANK", 0)), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                    world_size=int(os.environ.get("WORLD_SIZE", 1)))


def init_distributed(info: DistInfo, device: torch.device) -> None:
    """Join the process group torchrun set up (NCCL on CUDA, Gloo on CPU)."""
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def exit_worker(code: int = 0) -> NoReturn:
    """End a ``torchrun`` worker process: a barrier, ``destroy_process_group``, flush, ``os._exit(code)``.

    Call it once every rank is done (not after an error on one rank: the barrier would wait for ever).

    Why not a normal exit: once a module has been wrapped in ``DistributedDataParallel`` the Gloo
    group's worker threads outlive ``destroy_process_group`` (PyTorch 2.13), and the gradient
    all-reduces they ran hold the backward pass's Python context. If such a thread releases one while
    the interpreter is shutting down it cannot take the GIL, and the process aborts (SIGABRT,
    "terminate called without an active exception"); torchrun then reports a finished run as failed.
    This was seen in about one run in ten under CPU load (2 Gloo processes, a 2-core machine).
    Skipping interpreter shutdown avoids it; every file the run writes is complete before this call.
    """
    barrier()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
