"""fit of CNNClassifier / Conv1DClassifier against a hand-written PyTorch loop.

Both contenders train the same module (built by ``skcnn.models.get_model``
under the same seed, so the same initial weights), on the same data, with
Adam at a constant learning rate, the same batches (``ceil(n / batch_size)``
batches of sizes equal to within one, as skcnn trains), epochs and the same
per-epoch permutations (a ``torch.Generator`` seeded alike). The parent
checks that both end with the same weights, then prints the ratio of the
median fit times (skcnn / torch) and the peak RSS of each fit.

    python benchmarks/bench_fit.py [--reps 3] [--cases digits,images,series]
"""

import numpy as np
import torch
import torch.nn.functional as F

from _harness import Case, main  # puts the checkout on sys.path
from skcnn import CNNClassifier, Conv1DClassifier
from skcnn.models import get_model

SEED = 0
LR = 1e-3


def torch_fit(X, y, *, ndim, epochs, batch_size, n_classes):
    """The baseline: a loop over tensor slices, as one writes it by hand."""
    X = torch.from_numpy(X)
    if X.dim() == ndim + 1:
        X = X.unsqueeze(1)
    y = torch.from_numpy(y)

    torch.manual_seed(SEED)
    model = get_model("convnet", ndim=ndim, in_channels=X.shape[1],
                      n_outputs=n_classes, input_size=tuple(X.shape[2:]))
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    n_batches = -(-len(X) // batch_size)
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for idx in perm.tensor_split(n_batches):  # sizes equal to within one
            opt.zero_grad()
            loss = F.cross_entropy(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
    return model


def skcnn_fit(estimator_cls, X, y, *, epochs, batch_size):
    extra = {"normalize": None} if estimator_cls is Conv1DClassifier else {}
    est = estimator_cls("convnet", lr=LR, lr_schedule=None, max_epochs=epochs,
                        batch_size=batch_size, random_state=SEED, device="cpu",
                        **extra)
    est.fit(X, y)
    return est.module_


def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 8, 8)
    return {"X": X, "y": y.astype(np.int64), "nbytes": X.nbytes}


def images(n=20_000):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    X = rng.standard_normal((n, 3, 32, 32), dtype=np.float32)
    X[np.arange(n), y % 3, y, :] += 2.0  # a learnable signal: a bright row
    return {"X": X, "y": y, "nbytes": X.nbytes}


def series(n=2_000, length=1024):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, n)
    X = rng.standard_normal((n, 1, length), dtype=np.float32)
    for i in range(n):  # a learnable signal: a bump whose place is the class
        X[i, 0, y[i] * 200:y[i] * 200 + 50] += 1.0
    return {"X": X, "y": y, "nbytes": X.nbytes}


def _contenders(estimator, ndim, epochs, batch_size, n_classes):
    def ours(d):
        return skcnn_fit(estimator, d["X"], d["y"], epochs=epochs, batch_size=batch_size)

    def raw(d):
        return torch_fit(d["X"], d["y"], ndim=ndim, epochs=epochs,
                         batch_size=batch_size, n_classes=n_classes)

    return {"skcnn": ours, "torch": raw}


CASES = {
    "digits": Case(digits, _contenders(CNNClassifier, 2, 20, 64, 10),
                   note="CNNClassifier, 1797 x 1 x 8 x 8 digits, 20 epochs, batch 64"),
    "images": Case(images, _contenders(CNNClassifier, 2, 2, 64, 10),
                   note="CNNClassifier, 20000 x 3 x 32 x 32 synthetic, 2 epochs, batch 64"),
    "series": Case(series, _contenders(Conv1DClassifier, 1, 3, 64, 4),
                   note="Conv1DClassifier, 2000 x 1 x 1024 synthetic, 3 epochs, batch 64"),
}

if __name__ == "__main__":
    main(CASES, "fit: skcnn estimator vs a hand-written PyTorch loop")
