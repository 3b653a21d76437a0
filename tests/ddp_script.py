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

PARAMS = dict(channels=(16, 32), hidden_units=(64,), batch_norm=True, max_epochs=25,
              batch_size=64, lr=1e-2, random_state=0)
EARLY = dict(channels=(8,), hidden_units=(16,), max_epochs=30, batch_size=64,
             lr=1e-2, lr_schedule="plateau", early_stopping=True, patience=2,
             random_state=0)


def data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return X[:1200], y[:1200], X[1200:], y[1200:]


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
    torch.save(result, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
