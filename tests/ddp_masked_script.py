"""Run by tests/test_distributed_masked.py under ``torch.distributed.run`` (2 ranks).

Synchronised masked batch norm (the 1-D networks' ``MaskedBatchNorm1d``):
each rank compares the layer on its half of a batch of unequal-length
series with one layer on the whole batch, then fits an FCN with
``sync_batch_norm=True``, and saves what it found to ``<out>/rank<rank>.pt``.
"""

import os
import sys

import numpy as np
import torch
import torch.distributed as dist

from skcnn import Conv1DClassifier
from skcnn.models._masking import MaskedBatchNorm1d

FCN = dict(channels=(4, 8, 4), kernel_size=3, max_epochs=3, batch_size=32,
           lr=1e-2, random_state=0, sync_batch_norm=True)
# Rank 0's half is all real steps, rank 1's is padded: the ranks must still
# join the same all-reduces.
LENGTHS = [12, 12, 12, 12, 3, 7, 12, 5]


def series():
    """128 series of 3 classes with lengths 20 to 39 (a mask in every batch)."""
    rng = np.random.default_rng(0)
    X, y = [], []
    for i in range(128):
        label = i % 3
        length = 20 + int(rng.integers(0, 20))
        t = np.linspace(0, 1, length)
        X.append((np.sin(2 * np.pi * (label + 1) * t)
                  + 0.3 * rng.standard_normal(length)).astype(np.float32))
        y.append(label)
    return X, np.array(y)


def _batch(with_mask):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 12, generator=gen) * 2 + 1
    weights = torch.randn(8, 3, 12, generator=gen)
    mask = torch.arange(12)[None, :] < torch.tensor(LENGTHS)[:, None]
    return x, weights, (mask if with_mask else None)


def _layer():
    bn = MaskedBatchNorm1d(3)
    with torch.no_grad():  # not the identity, so that their gradients show
        bn.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return bn


def masked_bn_check(rank, with_mask, sync=True):
    """Largest differences between the layer on this rank's half (synced over
    the 2 ranks) and the layer in one process on the whole batch."""
    x, weights, mask = _batch(with_mask)
    full = _layer()
    x_full = x.clone().requires_grad_(True)
    expected = full(x_full, mask)
    (expected * weights).sum().backward()

    part = _layer()
    part.sync = sync
    half = slice(4 * rank, 4 * rank + 4)
    x_half = x[half].clone().requires_grad_(True)
    out = part(x_half, None if mask is None else mask[half])
    (out * weights[half]).sum().backward()
    # The parameters' gradients are sums over the batch: add up the ranks'.
    grads = torch.cat([part.weight.grad, part.bias.grad])
    dist.all_reduce(grads)
    diffs = {
        "output": out - expected[half],
        "input_grad": x_half.grad - x_full.grad[half],
        "param_grad": grads - torch.cat([full.weight.grad, full.bias.grad]),
        "running_mean": part.running_mean - full.running_mean,
        "running_var": part.running_var - full.running_var,
    }
    return {k: float(d.detach().abs().max()) for k, d in diffs.items()}


def main(out):
    torch.set_num_threads(1)
    X, y = series()
    clf = Conv1DClassifier("fcn", **FCN).fit(X, y)
    rank = int(os.environ["RANK"])
    result = {
        "masked": masked_bn_check(rank, with_mask=True),
        "unmasked": masked_bn_check(rank, with_mask=False),
        "masked_unsynced": masked_bn_check(rank, with_mask=True, sync=False),
        "state": {k: v.clone() for k, v in clf.module_.state_dict().items()},
        "history": [{k: v for k, v in row.items() if k not in ("batches", "dur")}
                    for row in clf.history_],
        "sync_flags": [m.sync for m in clf.module_.modules()
                       if isinstance(m, MaskedBatchNorm1d)],
    }
    torch.save(result, os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
