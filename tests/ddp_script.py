"""Run by tests/test_distributed.py under ``torch.distributed.run`` (2 ranks).

Each rank fits the same estimators on the same digits and saves its weights,
histories and test accuracy to ``<out>/rank<rank>.pt``.
"""

import os
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

from skcnn import CNNClassifier

PARAMS = dict(architecture="convnet", channels=(16, 32), hidden_units=(64,), batch_norm=True, max_epochs=25,
              batch_size=64, lr=1e-2, random_state=0)
EARLY = dict(architecture="convnet", channels=(8,), hidden_units=(16,), max_epochs=30, batch_size=64,
             lr=1e-2, lr_schedule="plateau", early_stopping=True, patience=2,
             random_state=0)


def data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return X[:1200], y[:1200], X[1200:], y[1200:]


def sync_bn_check(rank):
    """Largest difference between SyncBatchNorm on this rank's half of a batch
    and BatchNorm2d on the whole batch: outputs, input gradients, running
    statistics."""
    from skcnn._distributed import SyncBatchNorm

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 4, 4, generator=gen) * 2 + 1
    weights = torch.randn(8, 3, 4, 4, generator=gen)
    full = torch.nn.BatchNorm2d(3)
    x_full = x.clone().requires_grad_(True)
    expected = full(x_full)
    (expected * weights).sum().backward()
    sync = SyncBatchNorm(3)
    half = slice(4 * rank, 4 * rank + 4)
    x_half = x[half].clone().requires_grad_(True)
    out = sync(x_half)
    (out * weights[half]).sum().backward()
    diffs = [out - expected[half], x_half.grad - x_full.grad[half],
             sync.running_mean - full.running_mean,
             sync.running_var - full.running_var]
    return max(float(d.detach().abs().max()) for d in diffs)


def main(out):
    torch.set_num_threads(1)
    X, y, X_test, y_test = data()
    result = {}
    for name, params in [("plain", PARAMS),
                         ("sync_bn", {**PARAMS, "sync_batch_norm": True}),
                         ("early", EARLY)]:
        clf = CNNClassifier(**params).fit(X, y)
        result[name] = {
            "state": {k: v.clone() for k, v in clf.module_.state_dict().items()},
            "history": [{k: v for k, v in row.items() if k not in ("batches", "dur")}
                        for row in clf.history_],
            "accuracy": clf.score(X_test, y_test),
            "batches": clf.history_[-1, "train_batch_count"],
        }
    rank = int(os.environ["RANK"])
    result["sync_bn_check"] = sync_bn_check(rank)
    torch.save(result, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
