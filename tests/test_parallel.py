"""Threads and devices per worker: ``num_threads`` and ``device='auto'``."""

import json
import os
import subprocess
import sys
import types

import joblib
import numpy as np
import pytest
import torch

from skcnn import (
    CNNClassifier,
    CNNRegressor,
    Conv1DClassifier,
    Conv1DRegressor,
    _parallel,
)
from skcnn._parallel import malloc_thresholds
from skcnn._utils import resolve_device

TINY = dict(architecture="convnet", channels=(4,), hidden_units=(8,), max_epochs=2, random_state=0)


@pytest.fixture
def torch_threads():
    """Leave torch's thread count as the test found it."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


@pytest.mark.parametrize("Est", [CNNClassifier, CNNRegressor])
def test_num_threads_is_used_recorded_and_restored(Est, small_digits, torch_threads):
    X, y = small_digits
    torch.set_num_threads(1)
    est = Est(ThreadSpy, num_threads=2, max_epochs=2, random_state=0).fit(
        X[:100], y[:100])
    seen = est.module_.seen
    assert set(seen) == {2}
    assert est.n_threads_ == 2
    assert est.history_[:, "n_threads"] == [2, 2]
    assert torch.get_num_threads() == 1  # restored after fit
    seen.clear()
    est.predict(X[:10])
    assert set(seen) == {2} and torch.get_num_threads() == 1


def test_num_threads_none_keeps_torch_setting_outside_workers(small_digits,
                                                              torch_threads):
    X, y = small_digits
    torch.set_num_threads(1)
    est = CNNClassifier(**TINY).fit(X[:60], y[:60])
    assert est.n_threads_ == 1 and est.history_[:, "n_threads"] == [1, 1]


@pytest.mark.parametrize("Est", [CNNClassifier, CNNRegressor, Conv1DClassifier,
                                 Conv1DRegressor])
def test_num_threads_is_validated(Est):
    X = np.random.RandomState(0).rand(20, 64)
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="'num_threads' parameter"):
        Est(num_threads=0, max_epochs=1).fit(X, y)


def test_thread_limit_nests_and_restores(torch_threads):
    torch.set_num_threads(1)
    with _parallel.thread_limit(2):
        assert torch.get_num_threads() == 2
        with _parallel.thread_limit(3):
            assert torch.get_num_threads() == 3
        assert torch.get_num_threads() == 3  # the outermost block restores
    assert torch.get_num_threads() == 1


class ThreadSpy(torch.nn.Module):
    """A linear model that records torch's thread count in each forward."""

    def __init__(self, in_channels, n_outputs):
        super().__init__()
        self.fc = torch.nn.Linear(64 * in_channels, n_outputs)
        self.seen = []

    def forward(self, x):
        self.seen.append(torch.get_num_threads())
        return self.fc(x.flatten(1))


def _fit_in_worker(X, y):
    # A worker left with another thread count by earlier work.
    torch.set_num_threads(3)
    est = CNNClassifier(ThreadSpy, max_epochs=2, random_state=0).fit(X, y)
    return est.n_threads_, sorted(set(est.module_.seen)), torch.get_num_threads()


def test_num_threads_none_uses_the_loky_worker_budget(small_digits):
    X, y = small_digits
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        out = joblib.Parallel(n_jobs=2)(
            joblib.delayed(_fit_in_worker)(X[:60], y[:60]) for _ in range(2))
    # joblib gave each worker one thread: the fit used it, then the
    # worker's own setting came back.
    assert out == [(1, [1], 3), (1, [1], 3)]


def test_worker_thread_budget_of_a_dask_worker(monkeypatch):
    worker = types.SimpleNamespace(
        name=0, address="tcp://127.0.0.1:1",
        state=types.SimpleNamespace(nthreads=4, executing={"a", "b"}))
    monkeypatch.setattr(_parallel, "_dask_worker", lambda: worker)
    assert _parallel.worker_thread_budget() == 2  # 4 threads, 2 tasks running
    worker.state.executing = {"a"}
    assert _parallel.worker_thread_budget() == 4
    assert _parallel.resolve_num_threads(None) == 4
    assert _parallel.resolve_num_threads(7) == 7


@pytest.fixture
def four_gpus(monkeypatch):
    """Pretend that the machine has 4 CUDA devices."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(_parallel, "_dask_worker", lambda: None)
    monkeypatch.setattr(_parallel, "_ray_context", lambda: None)
    monkeypatch.setattr(_parallel, "_in_loky_worker", lambda: False)
    return monkeypatch


def test_auto_device_outside_workers_is_the_current_gpu(four_gpus):
    assert resolve_device("auto") == "cuda"


def test_auto_device_follows_local_rank(four_gpus):
    four_gpus.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == "cuda:1"
    four_gpus.setenv("LOCAL_RANK", "6")
    assert resolve_device("auto") == "cuda:2"


def test_auto_device_spreads_dask_workers(four_gpus):
    devices = []
    for name in range(6):
        worker = types.SimpleNamespace(name=name, address=f"tcp://127.0.0.1:{name}")
        four_gpus.setattr(_parallel, "_dask_worker", lambda w=worker: w)
        devices.append(resolve_device("auto"))
    assert devices == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]


def test_auto_device_spreads_loky_workers(four_gpus):
    four_gpus.setattr(_parallel, "_in_loky_worker", lambda: True)
    for identity, expected in [((2,), "cuda:1"), ((1, 7), "cuda:2")]:
        process = types.SimpleNamespace(_identity=identity)
        four_gpus.setattr(_parallel.multiprocessing, "current_process",
                          lambda p=process: p)
        assert resolve_device("auto") == expected


def test_auto_device_with_one_gpu_is_cuda(four_gpus):
    four_gpus.setattr(torch.cuda, "device_count", lambda: 1)
    four_gpus.setenv("LOCAL_RANK", "3")
    assert resolve_device("auto") == "cuda"


def test_explicit_device_is_not_spread(four_gpus):
    four_gpus.setenv("LOCAL_RANK", "3")
    assert resolve_device("cuda:0") == "cuda:0"


_MALLOC_SCRIPT = """
import contextlib, json, os, resource, sys
import numpy as np
import torch
import skcnn._base
from skcnn import CNNClassifier
from skcnn._parallel import malloc_thresholds, restore_heap_in_worker

SMALL, LARGE, HUGE = map(int, sys.argv[1:4])  # floats per block

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def churn(size, times):
    before = faults()
    for _ in range(times):
        torch.ones(size)  # allocated, written and freed
    return faults() - before

def fit_faults():
    # Page faults of LARGE blocks churned during a fit (at its first epoch's end)
    from skorch.callbacks import Callback

    class Churn(Callback):
        def on_epoch_end(self, net, **kwargs):
            if not hasattr(self, "count"):
                self.count = churn(LARGE, 10)

    rng = np.random.default_rng(0)
    X = rng.random((64, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    cb = Churn()
    CNNClassifier(channels=(4,), hidden_units=(8,), max_epochs=1,
                  callbacks=[cb], random_state=0).fit(X, y)
    return cb.count

# Before anything calls mallopt: glibc as the process starts
out = {"outside": churn(SMALL, 100), "outside_large": churn(LARGE, 10)}
skcnn._base.malloc_thresholds = contextlib.nullcontext
out["fit_untouched"] = fit_faults()
skcnn._base.malloc_thresholds = malloc_thresholds
with malloc_thresholds() as raised:
    out["raised"] = raised
    out["inside"] = churn(SMALL, 100)
    out["inside_large"] = churn(LARGE, 10)
    # a DataLoader worker forked here decodes with the usual thresholds
    pid = os.fork()
    if pid == 0:
        restore_heap_in_worker(0)
        os._exit(0 if churn(HUGE, 5) > 5 * HUGE // 1024 // 2 else 1)
    out["worker_restored"] = os.waitpid(pid, 0)[1] == 0
out["after"] = churn(SMALL, 100)
# blocks larger than any the heap freed above, so that none is reused
out["after_huge"] = churn(HUGE, 5)
out["fit"] = fit_faults()
print(json.dumps(out))
"""


def _malloc_run(env_update, small, large, huge):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_update}
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_"):
        if name not in env_update:
            env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", _MALLOC_SCRIPT, str(small), str(large), str(huge)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_thresholds_reuse_blocks_over_32_mib_during_fit():
    # glibc maps every block over 32 MiB (its largest mmap threshold) on its
    # own and unmaps it when freed: a batch's activations of that size are
    # page-faulted anew at every batch. Inside malloc_thresholds() (and so
    # during fit) they are reused; afterwards the process keeps blocks up to
    # 32 MiB in its heap (where glibc's adaptive rule ends).
    # 16 MiB (4096 pages), 64 MiB (16 384), 128 MiB (32 768)
    out = _malloc_run({}, 1 << 22, 1 << 24, 1 << 25)
    assert out["raised"] is True and out["worker_restored"] is True
    # 10 blocks of 16 384 pages: about 164 000 faults when each is mapped anew
    assert out["outside_large"] > 100_000
    assert out["inside_large"] < 60_000  # the first one or two faulted in
    # and mapped again after it: 5 blocks of 32 768 pages
    assert out["after_huge"] > 100_000
    # blocks up to 32 MiB: from the heap before (adaptive), during and after
    assert out["inside"] < 40_000 and out["after"] < 40_000
    assert out["fit"] < 60_000
    assert out["fit_untouched"] > 100_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_thresholds_undo_dasks_trim_threshold_for_the_fit():
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which
    # makes glibc map and unmap every block over 128 KiB: each of torch's
    # per-batch buffers then page-faults. Inside malloc_thresholds() (and so
    # during fit) blocks are reused; afterwards the worker's setting is back.
    # 4 MiB (1024 pages), 16 MiB, 24 MiB (6144 pages: under the 32 MiB a
    # plain process would keep in its heap after the block)
    out = _malloc_run({"MALLOC_TRIM_THRESHOLD_": "65536"}, 1 << 20, 1 << 22, 6 << 20)
    assert out["raised"] is True
    # 100 blocks of 1024 pages: about 100 000 faults when each is mapped anew
    assert out["outside"] > 50_000
    assert out["inside"] < 5_000
    # the worker's thresholds are restored: 5 blocks of 6144 pages mapped anew
    assert out["after_huge"] > 20_000
    # fit runs inside malloc_thresholds()
    assert out["fit"] < 15_000  # the first blocks faulted in, then reused
    assert out["fit_untouched"] > 20_000


def test_malloc_thresholds_leave_other_c_libraries_alone(monkeypatch):
    monkeypatch.setattr(_parallel, "_glibc", lambda: None)
    with malloc_thresholds() as changed:
        assert changed is False


class _FakeLibc:
    """Records mallopt calls: (param, value)."""

    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("trim", pad))
        return 1


@pytest.mark.parametrize("env, expected", [
    # a plain process: glibc's adaptive rule's end point in a torch process
    ({}, {-4: 65536, -3: 32 << 20, -1: 64 << 20}),
    # Dask's workers: their trim threshold, glibc's 128 KiB mmap threshold
    ({"MALLOC_TRIM_THRESHOLD_": "65536"}, {-4: 65536, -3: 128 << 10, -1: 65536}),
    # what the environment asked for, 0 included (no block mapped)
    ({"MALLOC_MMAP_MAX_": "0", "MALLOC_MMAP_THRESHOLD_": "1048576"},
     {-4: 0, -3: 1 << 20, -1: 2 << 20}),
])
def test_malloc_thresholds_set_back_what_the_environment_asked_for(monkeypatch, env,
                                                                   expected):
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    libc = _FakeLibc()
    monkeypatch.setattr(_parallel, "_glibc", lambda: libc)
    with malloc_thresholds():
        with malloc_thresholds():  # nested: set once, restored once
            pass
        inside = list(libc.calls)
    assert inside == [(-4, 0), (-1, 2**31 - 1)]
    after = libc.calls[2:]
    assert after[-1] == ("trim", 0)
    assert dict(after[:-1]) == expected


@pytest.mark.parametrize("free, trims", [(1 << 20, False), (100 << 20, True)])
def test_malloc_thresholds_trim_only_a_heap_with_much_free(monkeypatch, free, trims):
    # malloc_trim releases the pages of every free block, which the next
    # call faults in again: a one-sample predict keeps its pages
    libc = _FakeLibc()

    def mallinfo2():
        info = _parallel._Mallinfo2()
        info.fordblks = free
        return info

    libc.mallinfo2 = mallinfo2
    monkeypatch.setattr(_parallel, "_glibc", lambda: libc)
    with malloc_thresholds():
        pass
    assert (("trim", 0) in libc.calls) is trims
