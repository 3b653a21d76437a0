"""fit of CNNClassifier on image files and uint8 arrays against a hand-written loop.

Cases (``N`` image files of 64 x 64 RGB PNG, written once into a cache
folder; ``N`` defaults to 20 000):

- ``files``: ``CNNClassifier().fit(paths, y)`` with ``num_workers`` workers
  against a hand-written loop over a ``torch.utils.data.DataLoader`` that
  reads the same files with PIL in as many workers. Both train the same
  module from the same initial weights on the same batches (same
  permutations, sizes equal to within one) with Adam at a constant rate, so
  they end with the same weights (checked). The ratio is skcnn's time over
  the loop's (target: <= 1.05). The setup reads every file once, so that
  both contenders find them in the page cache; skcnn's time includes its
  reading of every file's header before training.
- ``files_quarter``: skcnn alone on the first ``N / 4`` files: its peak RSS,
  compared with ``files``', shows whether memory grows with the number of
  files (target: the same within 10%).
- ``uint8``: ``fit`` on the same images as one in-memory uint8 array
  ``(N, 64, 64, 3)`` against a loop that converts each batch; the report
  gives the data's size (uint8) and its float32 size, 4 times more: skcnn's
  peak RSS should stay below the latter (no float32 copy of the set).

    python benchmarks/bench_images.py [--n 20000] [--workers 2] [--epochs 1]
        [--reps 3] [--cases files,files_quarter,uint8] [--threads T]
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from _harness import Case, main  # puts the checkout on sys.path
from skcnn import CNNClassifier
from skcnn.models import get_model


def _option(name, default):
    """``--name value`` from the command line, passed to workers by the environment."""
    key = f"BENCH_IMAGES_{name.upper()}"
    if f"--{name}" in sys.argv:
        i = sys.argv.index(f"--{name}")
        os.environ[key] = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    return int(os.environ.get(key, default))


N = _option("n", 20_000)
WORKERS = _option("workers", 2)
EPOCHS = _option("epochs", 1)
SIZE, BATCH, SEED, LR, N_CLASSES = 64, 64, 0, 1e-3, 10
CACHE = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"skcnn_bench_images_{SIZE}px")


def _image(i, label):
    """A 64 x 64 RGB image whose class is a bright row (deterministic in i)."""
    rng = np.random.default_rng(i)
    a = rng.integers(0, 160, (SIZE, SIZE, 3), dtype=np.uint8)
    a[label * 6:label * 6 + 4, :, label % 3] = 255
    return a


def labels(n):
    return np.random.default_rng(SEED).integers(0, N_CLASSES, n)


def files(n=None):
    from PIL import Image

    n = N if n is None else n
    y = labels(N)[:n]
    os.makedirs(CACHE, exist_ok=True)
    paths = [os.path.join(CACHE, f"{i:06d}.png") for i in range(n)]
    nbytes = 0
    for i, path in enumerate(paths):
        if not os.path.exists(path):
            Image.fromarray(_image(i, y[i])).save(path)
        # Read once, untimed, into the page cache: otherwise the first
        # contender reads the files from the disk and the second from memory.
        with open(path, "rb") as f:
            nbytes += len(f.read())
    return {"paths": paths, "y": y, "nbytes": nbytes}


def array():
    y = labels(N)
    X = np.stack([_image(i, y[i]) for i in range(N)])
    return {"X": X, "y": y, "nbytes": X.nbytes}


def skcnn_fit(X, y, workers=0):
    est = CNNClassifier(lr=LR, lr_schedule=None, max_epochs=EPOCHS, batch_size=BATCH,
                        num_workers=workers, random_state=SEED, device="cpu")
    est.fit(X, y)
    return est.module_


class FileDataset(torch.utils.data.Dataset):
    """What one writes by hand: PIL, to a float tensor in [0, 1]."""

    def __init__(self, paths, y):
        self.paths, self.y = paths, torch.from_numpy(y)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            a = np.asarray(im.convert("RGB"))
        return torch.from_numpy(a).permute(2, 0, 1).float().div(255), self.y[i]


def _batches(n, gen):
    """The epoch's batches: a permutation split into sizes equal to within one."""
    perm = torch.randperm(n, generator=gen)
    return [idx.tolist() for idx in perm.tensor_split(-(-n // BATCH))]


def _model():
    torch.manual_seed(SEED)
    return get_model("convnet", ndim=2, in_channels=3, n_outputs=N_CLASSES,
                     input_size=(SIZE, SIZE))


def torch_files(d):
    model = _model()
    dataset = FileDataset(d["paths"], d["y"])
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    for _ in range(EPOCHS):
        # A generator of its own for the workers' seeds (otherwise drawn from
        # the global RNG, which would change the dropout masks): same weights.
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=_batches(len(dataset), gen), num_workers=WORKERS,
            generator=torch.Generator().manual_seed(0))
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    return model


def torch_uint8(d):
    model = _model()
    X, y = torch.from_numpy(d["X"]), torch.from_numpy(d["y"])
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    for _ in range(EPOCHS):
        for idx in _batches(len(X), gen):
            idx = torch.tensor(idx)
            xb = X[idx].permute(0, 3, 1, 2).float().div(255)
            opt.zero_grad()
            F.cross_entropy(model(xb), y[idx]).backward()
            opt.step()
    return model


CASES = {
    "files": Case(files, {"skcnn": lambda d: skcnn_fit(d["paths"], d["y"], WORKERS),
                          "torch": torch_files},
                  rtol=1e-4, atol=1e-5,
                  note=f"CNNClassifier on {N} 64x64 PNG files, {WORKERS} workers, "
                       f"{EPOCHS} epoch(s), batch {BATCH}"),
    "files_quarter": Case(lambda: files(N // 4),
                          {"skcnn": lambda d: skcnn_fit(d["paths"], d["y"], WORKERS)},
                          note=f"CNNClassifier on {N // 4} 64x64 PNG files (peak RSS "
                               "against the 'files' case)"),
    "uint8": Case(array, {"skcnn": lambda d: skcnn_fit(d["X"], d["y"]),
                          "torch": torch_uint8},
                  rtol=1e-4, atol=1e-5,
                  note=f"CNNClassifier on a uint8 array ({N}, 64, 64, 3) = "
                       f"{N * SIZE * SIZE * 3 / 2**20:.0f} MB (float32: "
                       f"{N * SIZE * SIZE * 12 / 2**20:.0f} MB), {EPOCHS} epoch(s)"),
}

if __name__ == "__main__":
    main(CASES, "fit on image files / uint8 arrays: skcnn vs a hand-written loop")
