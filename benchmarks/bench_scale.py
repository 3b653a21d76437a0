"""Scaling out: a search on a Dask cluster and with joblib, and DDP training.

Part ``search``: an 8-candidate ``GridSearchCV`` (cv=3) of ``CNNClassifier``
on the 1797 digits, run

- with ``n_jobs=1`` and ``num_threads=1`` (one process, one thread), the
  reference; with ``--default-threads`` also with torch's default threads
  (every core);
- on a 2-worker ``distributed.LocalCluster`` (1 thread each) through
  ``joblib.parallel_config(backend='dask')``;
- with ``n_jobs=2`` (loky) and ``num_threads=None`` (each worker's fits use
  the worker's thread budget, ``cpu_count() // 2``);
- with ``n_jobs=2`` and ``num_threads=<cpu_count>``: each worker's fits use
  every core, as torch's default does in a process that joblib did not
  limit (oversubscribed).

Each parallel run is checked to give the ``cv_results_`` scores of the
``n_jobs=1`` run. The searches do not refit (``refit=False``): the refit
runs in the calling process whatever the backend, so the timings are
those of the 24 fits that the backends share out. Worker start-up (cluster, loky processes importing torch)
is timed apart, as ``start``; ``search`` is the search alone.

Part ``ddp``: ``fit`` of a ``CNNClassifier`` on 1200 digits with global
batches of 64, by one process and by 2 processes launched with
``python -m torch.distributed.run`` (gloo on the CPU), with the test
accuracy of each. On a CPU with 2 cores this is a correctness path, not a
speed-up: the two processes share the cores and add an all-reduce per
batch.

With CUDA (``--gpu``): the search on ``device='cuda'`` with ``n_jobs=1``
and on a LocalCluster of one worker per GPU, and DDP with one process per
GPU (NCCL), recorded with the GPU model.

    python benchmarks/bench_scale.py [--parts search,ddp] [--epochs 2] [--gpu]
                                     [--default-threads]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(1, _ROOT)

GRID = {"lr": [1e-3, 3e-3, 1e-2, 3e-2], "channels": [(8, 16), (16, 32)]}


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y


def _search(epochs, device, **params):
    from sklearn.model_selection import GridSearchCV

    from skcnn import CNNClassifier

    est = CNNClassifier(hidden_units=(32,), max_epochs=epochs, random_state=0,
                        device=device, **params)
    # refit=False: the timings are those of the 24 parallel fits; the refit
    # runs in the calling process whatever the backend.
    return GridSearchCV(est, GRID, cv=3, refit=False)


def _scores(search):
    return np.array(search.cv_results_["mean_test_score"])


def _import_skcnn():
    import skcnn  # noqa: F401

    return os.getpid()


def bench_search(epochs, device="cpu", n_workers=2, default_threads=False):
    import joblib
    import torch

    X, y = _digits()
    rows = []
    ref = _search(epochs, device, num_threads=1)
    t = time.perf_counter()
    ref.fit(X, y)
    rows.append(("n_jobs=1, num_threads=1", 0.0, time.perf_counter() - t, True))
    base = _scores(ref)
    if default_threads:
        search = _search(epochs, device)
        t = time.perf_counter()
        search.fit(X, y)
        rows.append((f"n_jobs=1, torch default ({torch.get_num_threads()} threads)",
                     0.0, time.perf_counter() - t,
                     np.allclose(_scores(search), base)))

    import distributed

    t = time.perf_counter()
    cluster = distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True,
        host="127.0.0.1", dashboard_address=None, worker_dashboard_address=None)
    client = distributed.Client(cluster)
    client.run(_import_skcnn)
    start = time.perf_counter() - t
    try:
        search = _search(epochs, device)
        t = time.perf_counter()
        with joblib.parallel_config(backend="dask", n_jobs=-1):
            search.fit(X, y)
        rows.append((f"Dask LocalCluster ({n_workers} workers x 1 thread)", start,
                     time.perf_counter() - t, np.allclose(_scores(search), base)))
    finally:
        client.close()
        cluster.close()

    if device == "cpu":
        cores = os.cpu_count()
        for label, num_threads in [("n_jobs=2, num_threads=None", None),
                                   (f"n_jobs=2, num_threads={cores}", cores)]:
            t = time.perf_counter()
            joblib.Parallel(n_jobs=2)(joblib.delayed(_import_skcnn)() for _ in range(2))
            start = time.perf_counter() - t
            search = _search(epochs, device, num_threads=num_threads)
            search.n_jobs = 2
            t = time.perf_counter()
            search.fit(X, y)
            rows.append((label, start, time.perf_counter() - t,
                         np.allclose(_scores(search), base)))
    best = ref.cv_results_["params"][int(np.argmin(ref.cv_results_["rank_test_score"]))]
    return rows, best


DDP_PARAMS = dict(channels=(16, 32), hidden_units=(64,), batch_norm=True,
                  max_epochs=10, batch_size=64, lr=1e-2, random_state=0)


def ddp_worker(out, device):
    """One rank (or the single process): fit, then report time and accuracy."""
    import torch

    from skcnn import CNNClassifier

    X, y = _digits()
    clf = CNNClassifier(device=device, **DDP_PARAMS)
    t = time.perf_counter()
    clf.fit(X[:1200], y[:1200])
    elapsed = time.perf_counter() - t
    rank = int(os.environ.get("RANK", 0))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"fit_s": elapsed, "accuracy": clf.score(X[1200:], y[1200:]),
                   "threads": clf.n_threads_}, f)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_ddp(device="cpu", nproc=2, threads=1):
    rows = []
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = str(threads)
    runs = [("1 process", [sys.executable, __file__, "--ddp-worker"]),
            (f"{nproc} processes (torchrun)",
             [sys.executable, "-m", "torch.distributed.run",
              f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
              f"--master_port={_free_port()}", __file__, "--ddp-worker"])]
    for label, cmd in runs:
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            subprocess.run(cmd + [out, "--device", device], env=env, check=True,
                           cwd=_ROOT)
            total = time.perf_counter() - t
            results = [json.load(open(os.path.join(out, f)))
                       for f in sorted(os.listdir(out))]
        rows.append((label, max(r["fit_s"] for r in results), total,
                     results[0]["accuracy"], results[0]["threads"]))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="search,ddp")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--default-threads", action="store_true")
    parser.add_argument("--ddp-worker", metavar="OUT")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.ddp_worker:
        return ddp_worker(args.ddp_worker, args.device)

    import torch

    devices = ["cpu"]
    if args.gpu:
        if not torch.cuda.is_available():
            sys.exit("--gpu: CUDA is not available on this machine.")
        devices.append("cuda")
        print("GPU:", torch.cuda.get_device_name(0), "x", torch.cuda.device_count())
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, "
          f"loadavg {os.getloadavg()[0]:.2f}")
    parts = args.parts.split(",")
    for device in devices:
        n_gpus = torch.cuda.device_count() if device == "cuda" else 0
        if "search" in parts:
            rows, best = bench_search(args.epochs, device,
                                      n_workers=max(n_gpus, 2) if n_gpus else 2,
                                      default_threads=args.default_threads)
            print(f"\n## search, 8 candidates x 3 folds, {args.epochs} epochs, "
                  f"device={device} (best {best})")
            print("| run | start (s) | search (s) | speed-up | same scores |")
            print("|---|---|---|---|---|")
            ref = rows[0][2]
            for label, start, elapsed, same in rows:
                print(f"| {label} | {start:.1f} | {elapsed:.1f} | "
                      f"{ref / elapsed:.2f} | {same} |")
        if "ddp" in parts:
            rows = bench_ddp(device, nproc=max(n_gpus, 2) if n_gpus else 2)
            print(f"\n## DDP fit, 1200 digits, global batch 64, device={device}")
            print("| run | fit (s) | wall incl. start (s) | accuracy | threads/proc |")
            print("|---|---|---|---|---|")
            for label, fit_s, total, acc, threads in rows:
                print(f"| {label} | {fit_s:.1f} | {total:.1f} | {acc:.3f} | "
                      f"{threads} |")


if __name__ == "__main__":
    main()
