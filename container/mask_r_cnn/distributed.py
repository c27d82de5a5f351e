"""Multi-host and multi-GPU training with `torch.distributed`.

The hosts come from `resourceconfig.json`; the first host in sorted order is the master and
`rank = host_rank * local_world_size + local_rank`, one process per GPU (one per host on CPU,
or `MASK_R_CNN_PROCESSES_PER_HOST`).
`MASTER_ADDR` overrides the master's address, so two processes on one machine, both hosts
mapped to 127.0.0.1, run a real 2-host job; `MASTER_PORT` sets the port (default 29500).
The backend is nccl on GPU and gloo on CPU.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .env import SageMakerEnv
from .errors import UserInputError

logger = logging.getLogger(__name__)

INIT_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True, kw_only=True)
class DistContext:
    """Where this process sits in the job.

    Attributes:
        rank: global rank (0 is the master: logs, checkpoints, `model/`).
        world_size: number of processes in the job.
        local_rank: index of this process on its host (its GPU).
        device: the torch device this process uses.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_master(self) -> bool:
        """Whether this process is rank 0."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1


def local_world_size(requested: int | None = None) -> int:
    """Number of processes to run on this host: `requested`, else one per GPU (one on CPU).

    Raises:
        UserInputError: more processes are requested than there are GPUs.
    """
    gpus = torch.cuda.device_count()
    if requested is None:
        return max(gpus, 1)
    if gpus and requested > gpus:
        raise UserInputError(
            f"MASK_R_CNN_PROCESSES_PER_HOST={requested} but this host has {gpus} GPUs; use at "
            "most one process per GPU or unset it."
        )
    return requested


def context_for(env: SageMakerEnv, local_rank: int, per_host: int) -> DistContext:
    """Compute the rank and device of process `local_rank` of this host."""
    device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    return DistContext(
        rank=env.host_rank * per_host + local_rank,
        world_size=len(env.hosts) * per_host,
        local_rank=local_rank,
        device=device,
    )


def _socket_interface(env: SageMakerEnv, address: str) -> str | None:
    try:
        if ipaddress.ip_address(address).is_loopback:
            return "lo"  # every host is this machine (MASTER_ADDR=127.0.0.1)
    except ValueError:
        pass
    return env.network_interface_name


def init_process_group(env: SageMakerEnv, ctx: DistContext) -> None:
    """Join the job's process group (no-op for a single process)."""
    if not ctx.distributed:
        return
    if ctx.device.startswith("cuda"):
        torch.cuda.set_device(ctx.local_rank)
    # One host: its processes meet on loopback; several: on the first host in sorted order.
    address = env.master_addr or (env.hosts[0] if len(env.hosts) > 1 else "127.0.0.1")
    backend = "nccl" if ctx.device.startswith("cuda") else "gloo"
    interface = _socket_interface(env, address)
    if interface:
        # gloo and nccl otherwise pick the interface of the host name, which may not route.
        os.environ.setdefault("GLOO_SOCKET_IFNAME", interface)
        os.environ.setdefault("NCCL_SOCKET_IFNAME", interface)
    logger.info(
        "distributed: backend=%s rank=%d world_size=%d master=%s:%d",
        backend,
        ctx.rank,
        ctx.world_size,
        address,
        env.master_port,
    )
    dist.init_process_group(
        backend=backend,
        init_method=f"tcp://{address}:{env.master_port}",
        rank=ctx.rank,
        world_size=ctx.world_size,
        timeout=INIT_TIMEOUT,
    )


def shutdown() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Return rank 0's `obj` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op for a single process)."""
    if ctx.distributed:
        dist.barrier()


def all_reduce_mean(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average scalar values over all ranks (for logging)."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    if ctx.device.startswith("cuda"):
        tensor = tensor.to(ctx.device)
    dist.all_reduce(tensor)
    tensor /= ctx.world_size
    return dict(zip(keys, tensor.cpu().tolist(), strict=True))


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when `flag` is true on at least one rank."""
    if not ctx.distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0])
    if ctx.device.startswith("cuda"):
        tensor = tensor.to(ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)
