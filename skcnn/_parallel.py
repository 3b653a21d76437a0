"""Threads and devices per worker, and the torch.distributed environment.

A hyperparameter search runs many fits at once: joblib's loky processes,
Dask workers or Ray tasks. Each fit should use the threads its worker was
given, not every core of the machine (torch's default), or ``k`` workers
on ``k`` cores run ``k * k`` threads and small networks slow down many
times over. With several GPUs, concurrent fits with ``device='auto'``
should not all land on ``cuda:0``.

- :func:`worker_thread_budget`: the threads the current worker was given
  (Dask, Ray, joblib's loky workers), ``None`` outside a worker.
- :func:`thread_limit`: run a block with torch's intra-op threads set to a
  count and restore the previous count after it (process-wide, and safe
  when several threads of one process fit at once).
- :func:`worker_index`: an ordinal of the current worker (``LOCAL_RANK``,
  the Dask worker, the Ray or loky worker process), to spread fits over
  the GPUs.
- :func:`dist_env`: the ``torchrun`` environment (rank and world size) of
  a data-parallel fit.
- :func:`malloc_thresholds`: run a block (a fit, a prediction) with
  glibc's ``malloc`` reusing freed memory rather than mapping each large
  block anew, then restore the process's thresholds.

Nothing here schedules anything: the engines (joblib, Dask, Ray,
``torchrun``) do, and these helpers read what they set up.
"""

import contextlib
import ctypes
import functools
import multiprocessing
import os
import sys
import threading
import zlib

import torch

__all__ = ["dist_env", "malloc_thresholds", "resolve_num_threads", "thread_limit",
           "worker_index", "worker_thread_budget"]


def _dask_worker():
    """The ``distributed.Worker`` running this code, or None."""
    if "distributed" not in sys.modules:  # never import Dask just to look
        return None
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _ray_context():
    """Ray's runtime context when this code runs in a Ray task, else None."""
    if "ray" not in sys.modules:
        return None
    try:
        import ray

        if not ray.is_initialized():
            return None
        ctx = ray.get_runtime_context()
        if ctx.worker.mode != ray.WORKER_MODE:  # the driver
            return None
        return ctx
    except Exception:  # an old or partial Ray: not a Ray worker for us
        return None


def _in_loky_worker():
    """Whether this process is a worker of joblib's loky executor."""
    loky = sys.modules.get("joblib.externals.loky.process_executor")
    return loky is not None and getattr(loky, "_CURRENT_DEPTH", 0) > 0


def _env_int(name):
    try:
        value = int(os.environ[name])
    except (KeyError, ValueError):
        return None
    return value if value > 0 else None


def worker_thread_budget():
    """Threads the worker running this code was given; None outside a worker.

    - Dask worker: its ``nthreads`` shared by the tasks it runs at the
      moment (``threads_per_worker=1``: one thread per fit);
    - Ray task: the CPUs Ray assigned to it (``num_cpus``);
    - joblib loky worker: the thread limit joblib set in its environment
      (``OMP_NUM_THREADS``: ``cpu_count() // n_jobs`` unless given, or
      ``parallel_config(inner_max_num_threads=...)``).

    Returns
    -------
    n_threads : int or None
    """
    worker = _dask_worker()
    if worker is not None:
        state = getattr(worker, "state", worker)
        nthreads = int(getattr(state, "nthreads", 0) or getattr(worker, "nthreads", 1))
        running = len(getattr(state, "executing", ())) or 1
        return max(1, nthreads // running)
    ctx = _ray_context()
    if ctx is not None:
        try:
            cpus = ctx.get_assigned_resources().get("CPU")
        except Exception:
            cpus = None
        if cpus:
            return max(1, int(cpus))
        return _env_int("OMP_NUM_THREADS") or 1
    if _in_loky_worker():
        return _env_int("OMP_NUM_THREADS")
    return None


def resolve_num_threads(num_threads):
    """The torch thread count a fit uses for ``num_threads``.

    ``None``: the worker's budget (:func:`worker_thread_budget`), else the
    count torch uses now (its default, or what the caller set).
    """
    if num_threads is not None:
        return int(num_threads)
    budget = worker_thread_budget()
    return budget if budget is not None else torch.get_num_threads()


_lock = threading.Lock()
_active = {"depth": 0, "saved": None}


@contextlib.contextmanager
def thread_limit(n_threads):
    """Run the block with ``torch.set_num_threads(n_threads)``, then restore.

    torch's thread count is process-wide. Nested and concurrent blocks (fits
    in threads of one process: joblib's threading backend, a Dask worker
    with several threads) share it: the count of the outermost block is
    saved and restored when the last block ends.
    """
    with _lock:
        if _active["depth"] == 0:
            _active["saved"] = torch.get_num_threads()
        _active["depth"] += 1
        if torch.get_num_threads() != n_threads:
            torch.set_num_threads(n_threads)
    try:
        yield n_threads
    finally:
        with _lock:
            _active["depth"] -= 1
            if _active["depth"] == 0 and torch.get_num_threads() != _active["saved"]:
                torch.set_num_threads(_active["saved"])


# glibc's mallopt parameters (malloc.h) and its defaults.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_GLIBC_MMAP_THRESHOLD = 128 * 1024
_GLIBC_MMAP_MAX = 65536
# While a network trains or predicts: no block gets a mapping of its own
# (M_MMAP_MAX = 0) and freed memory stays in the heap (the largest trim
# threshold mallopt takes, an int), so the buffers of one batch are reused
# by the next instead of being mapped, page-faulted and unmapped anew.
TORCH_TRIM_THRESHOLD = 2**31 - 1
# After it, in a process that did not ask for thresholds of its own: what
# glibc's adaptive rule settles on in a torch process (blocks up to its
# 32 MiB cap from the heap, trimmed beyond twice that); mallopt switches
# that rule off for good, so its end point is set by hand.
TORCH_MMAP_THRESHOLD = 32 * 1024 * 1024

# After the block, memory goes back to the system (malloc_trim) only when
# the heap holds more than this much free: a trim releases the pages of
# every free block, which the next call then faults in again (0.4 ms added
# to a one-sample predict when trimming after every call).
TRIM_AFTER = 64 * 1024 * 1024

_malloc_lock = threading.Lock()
_malloc_active = {"depth": 0}


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _heap_free(libc):
    """Bytes free in the heap's blocks (``mallinfo2``), None before glibc 2.33."""
    mallinfo2 = getattr(libc, "mallinfo2", None)
    return None if mallinfo2 is None else mallinfo2().fordblks


@functools.cache
def _glibc():
    """The C library when it is glibc (it has ``mallopt``), else None (loaded once)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc only)
    except (OSError, AttributeError):
        return None
    if hasattr(libc, "mallinfo2"):  # glibc 2.33 and later
        libc.mallinfo2.restype = _Mallinfo2
    return libc


def _reuse_heap(libc):
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, TORCH_TRIM_THRESHOLD)


def _restore_heap(libc):
    """The thresholds the environment asked for, else the adaptive rule's end point."""
    trim = _env_int("MALLOC_TRIM_THRESHOLD_")
    mmap = _env_int("MALLOC_MMAP_THRESHOLD_")
    if mmap is None:
        # glibc's own start when the environment fixed a trim threshold
        # (Dask's workers: every block over 128 KiB mapped, as they want)
        mmap = _GLIBC_MMAP_THRESHOLD if trim is not None else TORCH_MMAP_THRESHOLD
    try:  # 0 is a valid setting here: no block mapped on its own
        mmap_max = int(os.environ["MALLOC_MMAP_MAX_"])
    except (KeyError, ValueError):
        mmap_max = _GLIBC_MMAP_MAX
    libc.mallopt(_M_MMAP_MAX, max(0, mmap_max))
    libc.mallopt(_M_MMAP_THRESHOLD, mmap)
    libc.mallopt(_M_TRIM_THRESHOLD, trim if trim is not None else 2 * mmap)


def restore_heap_in_worker(worker_id=None):
    """``worker_init_fn`` of a ``DataLoader``: its forked workers decode images
    with the process's usual thresholds, not with the training loop's."""
    libc = _glibc()
    if libc is not None and _malloc_active["depth"]:
        _restore_heap(libc)


@contextlib.contextmanager
def malloc_thresholds():
    """Run the block with glibc's ``malloc`` reusing freed memory, then restore.

    glibc serves a block over its mmap threshold (128 KiB, rising with use
    up to 32 MiB) with a mapping of its own, unmapped when freed. torch
    allocates and frees its activations and gradients at every batch: each
    one over the threshold is then mapped and page-faulted anew. That is
    the case of every activation over 32 MiB (a batch of 64 images of
    64 x 64 pixels through 32 channels: 33.5 MB), where a fit on images
    spent a third of its time in the kernel (18 million minor page faults
    over 313 batches), and of every block over 128 KiB in a process started
    with ``MALLOC_TRIM_THRESHOLD_`` set (Dask's nanny starts its workers
    with 65536, which switches the adaptive threshold off: fits there ran
    1.4x slower).

    On glibc, the block runs with no block mapped on its own (``M_MMAP_MAX``
    0) and freed memory kept in the heap (trim threshold 2 GiB), so that
    each batch reuses the previous one's memory. When the last concurrent
    block ends, ``malloc_trim(0)`` returns the freed memory to the system
    (when the heap holds more than 64 MiB free, ``TRIM_AFTER``: small
    calls such as a one-sample ``predict`` keep their pages for the next
    call) and the thresholds are set to what the environment asked for
    (``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_MMAP_MAX_``), else to where glibc's adaptive rule ends in a
    torch process (mmap threshold 32 MiB, trim threshold 64 MiB): ``mallopt``
    switches that rule off for the rest of the process. Elsewhere (another
    C library) the block runs untouched.

    Yields
    ------
    bool
        Whether the thresholds were changed.
    """
    libc = _glibc()
    if libc is None:
        yield False
        return
    with _malloc_lock:
        if _malloc_active["depth"] == 0:
            _reuse_heap(libc)
        _malloc_active["depth"] += 1
    try:
        yield True
    finally:
        with _malloc_lock:
            _malloc_active["depth"] -= 1
            if _malloc_active["depth"] == 0:
                _restore_heap(libc)
                free = _heap_free(libc)
                if free is None or free > TRIM_AFTER:
                    libc.malloc_trim(0)


def worker_index():
    """An ordinal of the current worker, to pick its GPU; None outside one.

    ``LOCAL_RANK`` (torchrun, SLURM launchers), then the Dask worker (its
    name when it is an integer, as ``LocalCluster`` names them, else a
    hash of its address), the Ray worker process and joblib's loky worker
    process (their process identity).
    """
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is not None and local_rank.isdigit():
        return int(local_rank)
    worker = _dask_worker()
    if worker is not None:
        name = str(getattr(worker, "name", ""))
        if name.lstrip("-").isdigit():
            return abs(int(name))
        return zlib.crc32(str(worker.address).encode())
    if _ray_context() is not None or _in_loky_worker():
        identity = getattr(multiprocessing.current_process(), "_identity", ())
        return (identity[-1] - 1) if identity else os.getpid()
    return None


def dist_env():
    """``(rank, world_size, local_rank)`` under ``torchrun``; None otherwise.

    A data-parallel fit starts when ``WORLD_SIZE`` > 1 and ``RANK`` are set
    (``torchrun``, ``python -m torch.distributed.run``, or ``srun`` with the
    variables exported), or when a process group is already initialised.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
        if world > 1:
            rank = torch.distributed.get_rank()
            return rank, world, _env_int("LOCAL_RANK") or 0
        return None
    world = _env_int("WORLD_SIZE")
    rank = os.environ.get("RANK")
    if world is None or world < 2 or rank is None or not rank.isdigit():
        return None
    local = os.environ.get("LOCAL_RANK", "0")
    return int(rank), world, int(local) if local.isdigit() else 0
