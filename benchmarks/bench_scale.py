"""Scaling out: a search on a Dask cluster and with joblib, and DDP training.

Part ``search``: an 8-candidate ``GridSearchCV`` (cv=3) of ``CNNClassifier``
on the 1797 digits (``lr`` x ``channels`` in (32, 64) or (64, 128), 12
epochs, batches of 32): 24 fits of a few seconds each on one core, so that
the fits, not the scheduling, set the time. It runs

- with ``n_jobs=1`` and ``num_threads=1`` (one process, one thread), the
  reference; with ``--default-threads`` also with torch's default threads
  (every core);
- on a 2-worker ``distributed.LocalCluster`` (1 thread each) through
  ``joblib.parallel_config(backend='dask', scatter=[X, y])``: the data go
  to every worker once, before the search;
- with ``n_jobs=2`` (loky) and ``num_threads=None`` (each worker's fits use
  the worker's thread budget, ``cpu_count() // 2``);
- with ``n_jobs=2`` and ``num_threads=<cpu_count>``: each worker's fits use
  every core, as torch's default does in a process that joblib did not
  limit (oversubscribed).

Each parallel run is checked to give the ``cv_results_`` scores of the
``n_jobs=1`` run. The searches do not refit (``refit=False``): the refit
runs in the calling process whatever the backend, so the timings are
those of the 24 fits that the backends share out. Every process that fits
(the caller, each Dask worker, each loky worker) is warmed up first with
the imports and one tiny fit, which also reports the threads a fit uses
there; that and the start-up of the workers are timed apart, as
``start``; ``search`` is the search alone. ``--runs`` picks the parallel
runs (the oversubscribed one can take many times longer on a busy
machine).

Part ``ddp``: ``fit`` of a ``CNNClassifier`` on 1200 digits with global
batches of 64, by one process and by 2 processes launched with
``python -m torch.distributed.run`` (gloo on the CPU), with the test
accuracy of each. On a CPU with 2 cores this is a correctness path, not a
speed-up: the two processes share the cores and add an all-reduce per
batch.

With CUDA (``--gpu``): the search on ``device='cuda'`` with ``n_jobs=1``
and on a LocalCluster of one worker per GPU, and DDP with one process per
GPU (NCCL), recorded with the GPU model.

    python benchmarks/bench_scale.py [--parts search,ddp] [--epochs 12] [--gpu]
                                     [--default-threads]
                                     [--runs dask,loky,loky-oversubscribed]
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

# A realistic search: fits of a few seconds each on one core (a network of
# 32-64 or 64-128 channels, 12 epochs on 1198 digits), so that the work, not
# the scheduling, sets the time. About 100 s with n_jobs=1 on an idle core.
GRID = {"lr": [3e-4, 1e-3, 3e-3, 1e-2], "channels": [(32, 64), (64, 128)]}
SEARCH_PARAMS = dict(hidden_units=(128,), batch_size=32, random_state=0)
RUNS = ("serial", "dask", "loky", "loky-oversubscribed")


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y


def _search(epochs, device, **params):
    from sklearn.model_selection import GridSearchCV

    from skcnn import CNNClassifier

    est = CNNClassifier(max_epochs=epochs, device=device, **SEARCH_PARAMS, **params)
    # refit=False: the timings are those of the 24 parallel fits; the refit
    # runs in the calling process whatever the backend.
    return GridSearchCV(est, GRID, cv=3, refit=False)


def _scores(search):
    return np.array(search.cv_results_["mean_test_score"])


def _warm_up(device="cpu", num_threads=None):
    """Import and run one tiny fit in this process (a worker, or the caller).

    Returns the process id, the thread count a fit with ``num_threads``
    uses here, and torch's own setting.
    """
    import torch

    from skcnn import CNNClassifier
    from skcnn._parallel import resolve_num_threads

    X, y = _digits()
    CNNClassifier(channels=(4,), hidden_units=(8,), max_epochs=1, device=device,
                  num_threads=num_threads, random_state=0).fit(X[:64], y[:64])
    return os.getpid(), resolve_num_threads(num_threads), torch.get_num_threads()


def _threads_note(infos):
    """'1 thread per fit (torch default 1)' from the workers' warm-up."""
    fit = sorted({n for _, n, _ in infos})
    torch_default = sorted({n for _, _, n in infos})
    return (f"{len({pid for pid, _, _ in infos})} workers, "
            f"{'/'.join(map(str, fit))} thread(s) per fit, torch default "
            f"{'/'.join(map(str, torch_default))}")


def _cpu_seconds(pids):
    """User + system CPU seconds used so far by the processes ``pids``."""
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def _timed_search(search, X, y, pids=()):
    """Wall seconds of ``search.fit`` and the CPU seconds the fitting
    processes (``pids``, else this one) spent in it."""
    pids = list(pids) or [os.getpid()]
    cpu = _cpu_seconds(pids)
    t = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - t, _cpu_seconds(pids) - cpu


def bench_search(epochs, device="cpu", n_workers=2, default_threads=False,
                 runs=RUNS):
    """Rows of (label, start_s, (search_s, cpu_s), same scores, threads note).

    Every process that runs fits is warmed up first (imports, one tiny
    fit), outside the timings: ``start`` is the cluster or pool start-up,
    the warm-up and, for Dask, the broadcast of the data to every worker.
    """
    import joblib
    import torch

    X, y = _digits()
    rows = []
    _warm_up(device, 1)
    ref = _search(epochs, device, num_threads=1)
    rows.append(("n_jobs=1, num_threads=1", 0.0, _timed_search(ref, X, y), True,
                 "1 process, 1 thread"))
    base = _scores(ref)
    if default_threads:
        search = _search(epochs, device)
        rows.append((f"n_jobs=1, torch default ({torch.get_num_threads()} threads)",
                     0.0, _timed_search(search, X, y),
                     np.allclose(_scores(search), base),
                     f"1 process, {torch.get_num_threads()} threads"))

    if "dask" in runs:
        import distributed

        t = time.perf_counter()
        cluster = distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True,
            host="127.0.0.1", dashboard_address=None, worker_dashboard_address=None)
        client = distributed.Client(cluster)
        try:
            client.wait_for_workers(n_workers)
            # The warm-up runs as a task on each worker, as the fits will,
            # so that it reports the thread budget a fit gets there.
            infos = client.gather([
                client.submit(_warm_up, device, pure=False, workers=[address])
                for address in client.scheduler_info()["workers"]])
            # scatter: X and y go to every worker once, now, not with the tasks.
            with joblib.parallel_config(backend="dask", n_jobs=-1, scatter=[X, y]):
                start = time.perf_counter() - t
                search = _search(epochs, device)
                elapsed = _timed_search(search, X, y, [pid for pid, _, _ in infos])
            rows.append((f"Dask LocalCluster ({n_workers} workers x 1 thread), "
                         "num_threads=None", start, elapsed,
                         np.allclose(_scores(search), base), _threads_note(infos)))
        finally:
            client.close()
            cluster.close()

    if device == "cpu":
        cores = os.cpu_count()
        loky = []
        if "loky" in runs:
            loky.append(("n_jobs=2 (loky), num_threads=None", None))
        if "loky-oversubscribed" in runs:
            loky.append((f"n_jobs=2 (loky), num_threads={cores}", cores))
        for label, num_threads in loky:
            # The pool is started and warmed up by 4 tasks (so that both
            # workers get one); GridSearchCV(n_jobs=2) then reuses it.
            t = time.perf_counter()
            infos = joblib.Parallel(n_jobs=2)(
                joblib.delayed(_warm_up)(device, num_threads) for _ in range(4))
            start = time.perf_counter() - t
            search = _search(epochs, device, num_threads=num_threads)
            search.n_jobs = 2
            rows.append((label, start,
                         _timed_search(search, X, y, {pid for pid, _, _ in infos}),
                         np.allclose(_scores(search), base), _threads_note(infos)))
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
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--runs", default=",".join(RUNS),
                        help="search runs besides n_jobs=1: dask, loky, "
                             "loky-oversubscribed")
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
        load_before = os.getloadavg()[0]
        n_gpus = torch.cuda.device_count() if device == "cuda" else 0
        if "search" in parts:
            rows, best = bench_search(args.epochs, device,
                                      n_workers=max(n_gpus, 2) if n_gpus else 2,
                                      default_threads=args.default_threads,
                                      runs=args.runs.split(","))
            print(f"\n## search, 8 candidates x 3 folds, {args.epochs} epochs, "
                  f"device={device} (best {best})")
            print("Every process that fits was warmed up (imports, one tiny fit) "
                  "before the timings; 'start' is pool/cluster start-up, warm-up "
                  "and, for Dask, the broadcast of X and y. Load average before: "
                  f"{load_before:.2f}, after: {os.getloadavg()[0]:.2f}.")
            print("'CPU' is the CPU time the fitting processes (this one, or the "
                  "workers) spent in the search: near the n_jobs=1 figure when "
                  "the workers add little overhead, whatever the machine's load.")
            print("| run | threads | start (s) | search (s) | speed-up | CPU (s) "
                  "| same scores |")
            print("|---|---|---|---|---|---|---|")
            ref = rows[0][2][0]
            for label, start, (elapsed, cpu), same, note in rows:
                print(f"| {label} | {note} | {start:.1f} | {elapsed:.1f} | "
                      f"{ref / elapsed:.2f} | {cpu:.1f} | {same} |")
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
