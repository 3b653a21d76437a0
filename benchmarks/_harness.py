"""Side-by-side timing shared by the benchmark scripts (not a test).

A script declares its cases: a ``setup`` that builds the data (untimed) and
one function per contender (``"skcnn"`` and ``"torch"``, the hand-written
loop). :func:`main` runs every measurement in a fresh subprocess, so that
each contender gets its own peak RSS and neither inherits the other's
allocator state, and alternates the contenders over the repetitions
(``skcnn, torch, torch, skcnn, ...``) so that a change in the machine's load
hits both. It prints the median wall-clock and CPU seconds of each
contender, the ratios of the first contender (skcnn) to each other one
(below 1 means skcnn is faster) and the memory figures:

- ``data``: bytes of the inputs the operation reads;
- ``before``: RSS after the setup, right before the timed call;
- ``peak``: the highest RSS during the call (the kernel's ``VmHWM``, reset
  with ``/proc/self/clear_refs`` before the call; ``ru_maxrss`` elsewhere);
- ``extra``: ``peak - before``, what the call itself allocated at its peak
  (model, optimizer state, a batch's activations... and any copy of X).

Each contender's result (trained weights or outputs) is saved by the worker
and compared across contenders by the parent, so a ratio is only printed
for two programs that did the same work.

Run a script with ``--reps N`` (default 3), ``--cases a,b`` to pick cases,
``--threads T`` to set torch's threads (default: torch's own choice). On a
machine that other jobs share, ``--threads 1`` with the CPU-time ratio is
the steadiest figure: two threads competing with other processes for two
cores can take several times longer at random (OpenMP waits).
"""

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

MB = 2**20

# Run from a checkout without installing: the repository root on the path.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(1, _ROOT)


class Case:
    """One benchmark: untimed ``setup() -> data`` and ``contenders``.

    Each contender is ``fn(data) -> result``, where the result is what the
    parent compares across contenders: a ``state_dict`` (trained weights) or
    an array/tensor (outputs). ``data`` may hold ``"nbytes"``, the size of
    the inputs, for the report; ``rtol``/``atol`` bound the comparison of
    outputs (``0`` asks for bit-identical results).
    """

    def __init__(self, setup, contenders, *, rtol=0.0, atol=0.0, note=""):
        self.setup = setup
        self.contenders = contenders
        self.rtol = rtol
        self.atol = atol
        self.note = note


def _rss_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _worker(cases, name, contender, out_path, threads):
    import torch

    if threads:
        torch.set_num_threads(threads)
    case = cases[name]
    data = case.setup()
    gc.collect()
    reset = _reset_peak()
    before = _rss_kb("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    result = case.contenders[contender](data)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _rss_kb("VmHWM") if reset else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if hasattr(result, "state_dict"):
        result = result.state_dict()
    torch.save(result, out_path)
    return {"seconds": seconds, "cpu": cpu, "before_kb": before, "peak_kb": peak,
            "data_bytes": int(data.get("nbytes", 0)) if isinstance(data, dict) else 0,
            "threads": torch.get_num_threads()}


def _compare(a, b, rtol, atol):
    """Largest absolute difference between two results and whether it passes."""
    import numpy as np
    import torch

    if isinstance(a, dict):
        pairs = [(a[k], b[k]) for k in a]
        if set(a) != set(b):
            return float("inf"), False
    else:
        pairs = [(a, b)]
    worst, ok = 0.0, True
    for x, y in pairs:
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y)
        if x.shape != y.shape:
            return float("inf"), False
        if not x.is_floating_point():
            ok &= bool(torch.equal(x, y))
            continue
        x, y = x.double(), y.double()
        diff = (x - y).abs()
        if diff.numel():
            worst = max(worst, float(diff.max()))
        ok &= bool(torch.all(diff <= atol + rtol * y.abs()))
    return worst, ok


def _run_one(script, name, contender, threads, out_path):
    cmd = [sys.executable, script, "--worker", name, contender, out_path]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{name}/{contender} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _load1():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def main(cases, description):
    """Parse the command line and run the cases (or one worker)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cases", default=",".join(cases))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "CONTENDER", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, contender, out_path = args.worker
        print(json.dumps(_worker(cases, name, contender, out_path, args.threads)))
        return

    import torch

    script = os.path.abspath(sys.argv[0])
    print(f"# {description}")
    print(f"# python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, load average {_load1():.2f} at start")
    for name in args.cases.split(","):
        case = cases[name]
        names = list(case.contenders)
        runs = {c: [] for c in names}
        with tempfile.TemporaryDirectory() as tmp:
            paths = {c: os.path.join(tmp, c + ".pt") for c in names}
            for rep in range(args.reps):
                order = names if rep % 2 == 0 else names[::-1]
                for c in order:
                    runs[c].append(_run_one(script, name, c, args.threads, paths[c]))
            results = {c: torch.load(paths[c], weights_only=False) for c in names}
        ours, others = names[0], names[1:]
        med = {c: statistics.median(r["seconds"] for r in runs[c]) for c in names}
        cpu = {c: statistics.median(r["cpu"] for r in runs[c]) for c in names}
        print(f"\n## {name}: {case.note}")
        for c in names:
            r = runs[c]
            peak = max(x["peak_kb"] for x in r) / 1024
            before = statistics.median(x["before_kb"] for x in r) / 1024
            secs = ", ".join(f"{x['seconds']:.2f}" for x in r)
            print(f"{c:>6}: median {med[c]:7.3f} s  (runs {secs}; CPU {cpu[c]:.2f} s)  "
                  f"RSS before {before:6.0f} MB, peak {peak:6.0f} MB, "
                  f"extra {peak - before:5.0f} MB  [{r[0]['threads']} threads]")
        data_mb = runs[ours][0]["data_bytes"] / MB
        for c in others:
            worst, ok = _compare(results[ours], results[c], case.rtol, case.atol)
            print(f"ratio {ours}/{c}: {med[ours] / med[c]:.3f} wall, "
                  f"{cpu[ours] / cpu[c]:.3f} CPU time   "
                  f"(data {data_mb:.0f} MB; results {'match' if ok else 'DIFFER'}, "
                  f"max |diff| {worst:.2e}; load average {_load1():.2f})")
