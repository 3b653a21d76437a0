"""Data-parallel training with ``torch.distributed`` (launched by torchrun).

When an estimator's ``fit`` runs in a process started by ``torchrun`` (or
``python -m torch.distributed.run``, or ``srun`` exporting ``RANK`` and
``WORLD_SIZE``), every rank runs the same script on the same data and:

- joins the process group (``gloo`` on the CPU, ``nccl`` on CUDA), once;
- trains the network wrapped in
  :class:`~torch.nn.parallel.DistributedDataParallel`, which starts every
  rank from rank 0's weights and averages the gradients, so the ranks
  keep identical weights;
- takes its shard of each epoch's permutation (the permutation is drawn
  from the same seeded generator on every rank; see
  :class:`skcnn._data.BatchIterator`), in batches of
  ``ceil(batch_size / world_size)``: ``batch_size`` stays the global batch;
- averages the recorded losses over the ranks, so that early stopping and
  the LR schedules see the same numbers and decide alike;
- with ``sync_batch_norm=True``, normalises with batch statistics over all
  ranks (:class:`SyncBatchNorm`, which unlike torch's runs on the CPU too;
  the masked batch norm of the 1-D networks, over the real time steps of
  every rank's batch).

Nothing is launched from here: ``torchrun`` starts the processes.
"""

import os

import torch
import torch.distributed as dist
from torch import nn

from ._parallel import dist_env

__all__ = ["DistInfo", "SyncBatchNorm", "average", "average_buffers",
           "convert_sync_batchnorm", "global_batch_norm", "restore_batchnorm",
           "setup", "syncing"]


class DistInfo:
    """Rank and world size of a data-parallel fit."""

    def __init__(self, rank, world_size):
        self.rank = rank
        self.world_size = world_size

    def __repr__(self):
        return f"DistInfo(rank={self.rank}, world_size={self.world_size})"


def setup(device):
    """Join the process group of a torchrun launch; None outside one.

    Parameters
    ----------
    device : str
        The resolved device of this rank (``'cuda:<LOCAL_RANK>'`` or
        ``'cpu'``): NCCL for CUDA, gloo otherwise.

    Returns
    -------
    info : DistInfo or None
    """
    env = dist_env()
    if env is None:
        return None
    if not dist.is_available():
        raise RuntimeError(
            "The torchrun environment (WORLD_SIZE, RANK) is set, but this "
            "torch build has no torch.distributed support."
        )
    if not dist.is_initialized():
        # NCCL needs a GPU per process; ranks that share a GPU use gloo.
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        backend = ("nccl" if str(device).startswith("cuda")
                   and torch.cuda.device_count() >= local_world else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend, init_method="env://")
    return DistInfo(dist.get_rank(), dist.get_world_size())


def average(tensor):
    """Mean of ``tensor`` over the ranks (in place, returned)."""
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.div_(dist.get_world_size())


def average_buffers(module):
    """Average the floating-point buffers of ``module`` over the ranks.

    Integer buffers (``num_batches_tracked``) take rank 0's value.
    """
    with torch.no_grad():
        for buffer in module.buffers():
            if buffer.is_floating_point():
                average(buffer.data)
            else:
                dist.broadcast(buffer.data, src=0)


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the batch of every rank, on any device.

    In training, with a process group initialised, the per-channel sums of
    the inputs and of their squares and the sample counts are summed over
    the ranks (:func:`torch.distributed.nn.functional.all_reduce`, which
    carries the gradients back to every rank), so the network normalises
    with the statistics of the global batch, as one process would.
    Otherwise it is an ordinary batch norm. Unlike
    :class:`torch.nn.SyncBatchNorm`, it runs on the CPU (gloo) as well.
    """

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}D input)")

    def forward(self, x):
        if not syncing(self):
            return super().forward(x)
        return global_batch_norm(self, x)


def syncing(bn):
    """Whether batch norm ``bn`` takes its statistics over every rank now.

    In training, with a process group of more than one rank initialised.
    """
    return (bn.training and dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)


def global_batch_norm(bn, x):
    """Normalise ``x`` with the batch statistics of every rank's batch.

    The per-channel count, sum and sum of squares of ``x`` (shape
    ``(n, C, ...)``, or the ``(n_real, C)`` rows of a masked batch) are
    summed over the ranks with the differentiable
    :func:`torch.distributed.nn.functional.all_reduce`, so that the
    gradients flow back through the other ranks' statistics as they would
    through one process's batch norm on the union of the batches. The
    running statistics of ``bn`` are updated as ``nn.BatchNorm`` would
    with the global batch. Every rank must call this the same number of
    times (it is a collective); a rank's batch may be empty.

    Parameters
    ----------
    bn : nn.modules.batchnorm._BatchNorm
        The layer: its ``weight``, ``bias``, ``eps``, ``momentum`` and
        running statistics.
    x : torch.Tensor of shape (n, C, ...)
        This rank's batch.

    Returns
    -------
    out : torch.Tensor, the shape and dtype of ``x``
    """
    from torch.distributed.nn.functional import all_reduce

    channels = x.shape[1]
    dims = [0] + list(range(2, x.dim()))
    xf = x.float()
    count = torch.tensor([xf.numel() / channels], device=x.device,
                         dtype=torch.float32)
    stats = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])
    stats = all_reduce(stats)
    n = stats[-1]
    mean = stats[:channels] / n
    var = (stats[channels:2 * channels] / n - mean * mean).clamp_min(0)
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            m = (1.0 / float(bn.num_batches_tracked) if bn.momentum is None
                 else bn.momentum)
            unbiased = var * (n / (n - 1).clamp_min(1))
            bn.running_mean.mul_(1 - m).add_(m * mean.detach())
            bn.running_var.mul_(1 - m).add_(m * unbiased.detach())
    shape = [1, channels] + [1] * (x.dim() - 2)
    out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps)
    if bn.affine:
        out = out * bn.weight.view(shape) + bn.bias.view(shape)
    return out.to(x.dtype)


_PLAIN_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def convert_sync_batchnorm(module):
    """Make the batch-norm layers of ``module`` take global batch statistics.

    Plain ``nn.BatchNorm1d/2d/3d`` layers are replaced by
    :class:`SyncBatchNorm` (sharing their parameters); the
    :class:`~skcnn.models._masking.MaskedBatchNorm1d` layers of the 1-D
    networks, which skip padded time steps, are switched to their own
    synchronised mode (``sync = True``), which sums the statistics of the
    real time steps over the ranks. Returns the swaps, for
    :func:`restore_batchnorm`.
    """
    from .models._masking import MaskedBatchNorm1d

    swaps = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, MaskedBatchNorm1d):
                child.sync = True
                swaps.append((parent, name, child, child))
            elif type(child) in _PLAIN_BN:
                sync = SyncBatchNorm(child.num_features, child.eps, child.momentum,
                                     child.affine, child.track_running_stats)
                sync.load_state_dict(child.state_dict())
                sync.to(next(child.buffers(), torch.empty(0)).device)
                if child.affine:
                    sync.weight = child.weight  # the same Parameters
                    sync.bias = child.bias
                sync.train(child.training)
                setattr(parent, name, sync)
                swaps.append((parent, name, child, sync))
    return swaps


def restore_batchnorm(swaps):
    """Put the original batch-norm layers back, with the trained state."""
    for parent, name, original, sync in swaps:
        if sync is original:  # a MaskedBatchNorm1d switched in place
            original.sync = False
            continue
        original.load_state_dict(sync.state_dict())
        original.train(sync.training)
        setattr(parent, name, original)
