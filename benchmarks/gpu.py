"""Throughput on a CUDA GPU: skcnn against the raw PyTorch loop (not a test).

Two measurements, each in images per second, median of ``--reps`` timed
runs after one warm-up run (cuDNN autotuning), contenders alternated:

- **training**: ``CNNClassifier`` (``--arch``, default ``'convnet'``) on a
  synthetic ``--n-train`` x 3 x ``--size`` x ``--size`` set, ``--epochs``
  epochs, batch ``--batch-size``, Adam at a constant learning rate, against
  a hand-written loop over the same module architecture and initial
  weights: data moved to the GPU once, an index permutation per epoch,
  ``channels_last``, ``cudnn.benchmark``; precision float32, bf16 autocast
  and fp16 autocast with a ``GradScaler`` (``precision=None/'bf16'/'fp16'``).
- **feature extraction**: ``PretrainedFeatureExtractor('resnet50',
  weights=None)`` on ``--n-extract`` uint8 images of 224 x 224 (resized to
  256, centre-cropped to 224, normalised), against a raw torchvision loop
  with the same weights and preprocessing, in float32 and under bf16/fp16
  autocast (the extractor's ``precision`` parameter).

The ratio printed is skcnn's throughput over the raw loop's (target: at
least 0.95). Timings include moving the data to the GPU and validating it,
for both contenders alike, and end with ``torch.cuda.synchronize()``.

    python benchmarks/gpu.py [--reps 3] [--skip-extract] [--skip-train]

Exits with a message (status 0) where CUDA is not available.
"""

import argparse
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import _harness  # noqa: F401  (puts the checkout on sys.path)
from skcnn import CNNClassifier
from skcnn.models import get_model

PRECISIONS = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}
LR, SEED = 1e-3, 0


def _timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def _race(contenders, reps):
    """Median seconds of each contender: one warm-up, then alternated runs."""
    for fn in contenders.values():
        fn()
    times = {name: [] for name in contenders}
    names = list(contenders)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            times[name].append(_timed(contenders[name]))
    return {name: statistics.median(t) for name, t in times.items()}


# -- training ---------------------------------------------------------------

def raw_train(X, y, *, arch, precision, epochs, batch_size, n_classes):
    dev = torch.device("cuda")
    Xg = torch.from_numpy(X).to(dev).contiguous(memory_format=torch.channels_last)
    yg = torch.from_numpy(y).to(dev)
    torch.manual_seed(SEED)
    model = get_model(arch, in_channels=X.shape[1], n_outputs=n_classes,
                      input_size=tuple(X.shape[2:]))
    model = model.to(dev, memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    dtype = PRECISIONS[precision]
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    n_batches = -(-len(Xg) // batch_size)
    for _ in range(epochs):
        perm = torch.randperm(len(Xg), generator=gen).to(dev)
        for idx in perm.tensor_split(n_batches):  # as skcnn: sizes within one
            opt.zero_grad()
            with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                logits = model(Xg[idx])
            loss = F.cross_entropy(logits.float(), yg[idx])
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
    return model


def skcnn_train(X, y, *, arch, precision, epochs, batch_size, n_classes):
    return CNNClassifier(arch, lr=LR, lr_schedule=None, max_epochs=epochs,
                         batch_size=batch_size, precision=precision,
                         random_state=SEED, device="cuda").fit(X, y)


def bench_train(args):
    rng = np.random.default_rng(0)
    n, size = args.n_train, args.size
    y = rng.integers(0, 10, n)
    X = rng.standard_normal((n, 3, size, size), dtype=np.float32)
    print(f"\n## training: CNNClassifier({args.arch!r}), {n} x 3 x {size} x {size}, "
          f"{args.epochs} epochs, batch {args.batch_size}")
    for precision in PRECISIONS:
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            print(f"precision={precision}: not supported by this GPU")
            continue
        kw = dict(arch=args.arch, precision=precision, epochs=args.epochs,
                  batch_size=args.batch_size, n_classes=10)
        med = _race({"skcnn": lambda kw=kw: skcnn_train(X, y, **kw),
                     "torch": lambda kw=kw: raw_train(X, y, **kw)}, args.reps)
        rate = {k: n * args.epochs / v for k, v in med.items()}
        print(f"precision={precision!s:>4}: skcnn {rate['skcnn']:9.0f} img/s, "
              f"raw loop {rate['torch']:9.0f} img/s, "
              f"ratio {rate['skcnn'] / rate['torch']:.3f}")


# -- feature extraction -----------------------------------------------------

def bench_extract(args):
    import torchvision
    import torchvision.transforms.v2.functional as TF
    from torch import nn

    from skcnn.pretrained import PretrainedFeatureExtractor

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (args.n_extract, 224, 224, 3), dtype=np.uint8)
    batch = args.extract_batch_size
    ext = PretrainedFeatureExtractor("resnet50", weights=None, batch_size=batch,
                                     device="cuda", random_state=0).fit(X[:2])
    cfg = ext.preprocessing_
    model = torchvision.models.resnet50()
    model.load_state_dict(ext.module_.state_dict())
    model.fc = nn.Identity()
    model = model.cuda().eval()
    mean = torch.tensor(cfg["mean"], device="cuda").view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], device="cuda").view(1, 3, 1, 1)

    def raw(dtype):
        out = np.empty((len(X), 2048), dtype=np.float32)
        with torch.inference_mode(), torch.autocast("cuda", dtype=dtype,
                                                    enabled=dtype is not None):
            for start in range(0, len(X), batch):
                x = torch.from_numpy(X[start:start + batch]).cuda(non_blocking=True)
                x = x.permute(0, 3, 1, 2).float().div_(255)
                x = TF.resize(x, [cfg["resize"]], antialias=True)
                x = TF.center_crop(x, list(cfg["input_size"]))
                out[start:start + batch] = model((x - mean) / std).float().cpu().numpy()
        return out

    has_precision = "precision" in ext.get_params()
    print(f"\n## feature extraction: resnet50 (weights=None), {len(X)} x 224 x 224 x 3 "
          f"uint8, batch {batch}")
    for precision, dtype in PRECISIONS.items():
        contenders = {"torch": lambda dtype=dtype: raw(dtype)}
        if precision is None or has_precision:
            if has_precision:
                ext.set_params(precision=precision)
            contenders["skcnn"] = lambda: ext.transform(X)
        med = _race(contenders, args.reps)
        rate = {k: len(X) / v for k, v in med.items()}
        line = f"precision={precision!s:>4}: raw loop {rate['torch']:8.0f} img/s"
        if "skcnn" in rate:
            line += (f", skcnn {rate['skcnn']:8.0f} img/s, "
                     f"ratio {rate['skcnn'] / rate['torch']:.3f}")
        else:
            line += " (the extractor has no precision parameter)"
        print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--arch", default="convnet")
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-extract", type=int, default=2_048)
    parser.add_argument("--extract-batch-size", type=int, default=128)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-extract", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py needs a CUDA GPU, and torch sees none on this "
              "machine: nothing was measured.")
        return 0
    torch.backends.cudnn.benchmark = True
    print(f"# GPU throughput, skcnn vs the raw loop: {torch.cuda.get_device_name()}, "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    if not args.skip_train:
        bench_train(args)
    if not args.skip_extract:
        bench_extract(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
