"""Data-parallel training for :func:`aekit.fit`: who takes which rows, and what is summed.

The core loop asks a *strategy* for everything that depends on the process count, so it holds
no rank logic itself. :class:`SingleProcess` is the identity. :class:`DataParallel` (chosen
when ``torch.distributed`` is initialised, e.g. under ``torchrun``) wraps the model in
``DistributedDataParallel``; every process draws the same seeded permutation, so a global batch
is the same everywhere, and each takes a contiguous share of it. The loss is rescaled so the
averaged gradient equals the global-batch gradient, epoch sums are all-reduced and only rank 0
writes files. With per-sample losses this matches one process with the same global batch up to
float round-off; batch-statistic terms (batch norm, KL sparsity) see the local batch.

References
----------
Li et al., "PyTorch Distributed: experiences on accelerating data parallel training",
VLDB 2020 (DistributedDataParallel); Goyal et al., "Accurate, large minibatch SGD", 2017
(the global-batch equivalence).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["DataParallel", "SingleProcess", "strategy", "world_and_rank"]


class SingleProcess:
    """One process: the model as is, the whole batch, the loop's own generator for noise."""

    world, rank = 1, 0

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    @property
    def is_writer(self) -> bool:
        """Whether this process writes history, checkpoints and models (rank 0)."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training forward pass goes through."""
        return model

    def batches_per_epoch(self, n: int, batch_size: int) -> int:
        """Mini-batches of ``batch_size`` per epoch over ``n`` samples (the last may be short)."""
        return math.ceil(n / batch_size)

    def shard(self, idx: torch.Tensor, step: int, generator: torch.Generator
              ) -> tuple[torch.Tensor, float, torch.Generator]:
        """This process's rows of the global batch ``idx``, the loss scale, the noise generator.

        The scale makes the gradient averaged over processes equal the gradient of the mean
        loss over the global batch.
        """
        return idx, 1.0, generator

    def all_reduce_(self, tensors) -> None:
        """Sum each tensor over processes, in place (nothing to do for one process)."""

    def any(self, value: float) -> float:
        """The maximum of ``value`` over processes (a flag every process must agree on)."""
        return value

    def sync_buffers_(self, module: nn.Module) -> None:
        """Give every process rank 0's buffers (batch-norm running statistics), in place."""

    def run(self, loop) -> None:
        """Run the training loop (``loop.run()``), then free what :meth:`wrap` made for it
        (nothing to free for one process)."""
        loop.run()


class DataParallel(SingleProcess):
    """Data-parallel training over an initialised ``torch.distributed`` process group."""

    def __init__(self, seed: int = 0):
        import torch.distributed as dist

        super().__init__(seed)
        self.dist = dist
        self.world, self.rank = dist.get_world_size(), dist.get_rank()
        # Corruption noise must differ between processes: each rank reseeds its own generator
        # from (seed, rank, step), which also makes it resumable without storing its state.
        self.noise = torch.Generator()

    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)  # broadcasts rank 0's weights now

    def batches_per_epoch(self, n: int, batch_size: int) -> int:
        nb = math.ceil(n / batch_size)
        if n % batch_size and n % batch_size < self.world:
            nb -= 1  # a last batch smaller than the process count would leave a rank empty
        return nb

    def shard(self, idx, step, generator):
        m = idx.shape[0]
        local = idx[self.rank * m // self.world:(self.rank + 1) * m // self.world]
        self.noise.manual_seed(self.seed * 1_000_003 + self.rank * 7919 + step)
        return local, local.shape[0] * self.world / m, self.noise

    def all_reduce_(self, tensors) -> None:
        for t in tensors:
            self.dist.all_reduce(t, op=self.dist.ReduceOp.SUM)

    def any(self, value: float) -> float:
        t = torch.tensor(float(value))
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        return float(t)

    def sync_buffers_(self, module):
        # DistributedDataParallel broadcasts rank 0's buffers at the start of each forward,
        # so after a step every rank holds running statistics updated with its own rows
        # only; validation, best-epoch snapshots and the final model would then differ by rank
        for b in module.buffers():
            self.dist.broadcast(b.data, src=0)

    def run(self, loop):
        try:
            loop.run()
        finally:
            # The training loop is part of a reference cycle, so it outlives fit until the
            # garbage collector runs, and the DistributedDataParallel wrapper it holds with it,
            # possibly until interpreter exit, after destroy_process_group. Freeing the
            # wrapper's reducer (and the gloo work it holds) that late made a rank abort with
            # "terminate called without an active exception" in about 1 run in 25. Dropping
            # the loop's reference frees the wrapper now, while the process group lives.
            loop.forward = None


def strategy(seed: int = 0) -> SingleProcess:
    """:class:`DataParallel` when ``torch.distributed`` is initialised with > 1 process, else
    :class:`SingleProcess`."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DataParallel(seed)
    return SingleProcess(seed)


def world_and_rank() -> tuple[int, int]:
    """``(world size, rank)`` of the initialised process group, ``(1, 0)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0
