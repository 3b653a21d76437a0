"""Mutation testing of one skcnn module on a seeded random sample of its mutants.

Run through ``tools/mutation.sh --sample N MODULE...`` (see tests/MUTATION.md).

A full mutmut run of ``_base.py`` alone (809 mutants, each against every test
that reaches the mutated function) takes hours on a small machine. This runs
a reproducible sample instead: the mutants of ``skcnn/<module>.py`` are
generated, their names sorted and ``N`` of them drawn with
``random.Random(seed)``, and only those are run, against a short test
selection chosen for that module (``SELECTIONS`` below), not the whole
``[tool.mutmut]`` one. Each module gets its own mutmut project in
``build/mutation/<module>/`` (git-ignored): a copy of ``skcnn/``, ``tests/``
and ``pyproject.toml`` whose ``[tool.mutmut]`` section is rewritten for the
module, so the per-module selections and caches never mix. Inspect
survivors there: ``cd build/mutation/_net && mutmut show <name>``.

The mutant generation step calls mutmut's own functions (the first lines of
``mutmut run``) because mutmut 3 has no "generate only" command; written for
mutmut 3.8.
"""

import argparse
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module -> (test files / node ids, extra pytest arguments). The tests that
# exercise the module and run in well under a minute single-threaded.
SELECTIONS = {
    "_net": (
        ["tests/test_net.py", "tests/test_schedules.py", "tests/test_device.py",
         "tests/test_performance.py",
         "tests/test_estimators.py::test_precision_bf16_trains_on_cpu",
         "tests/test_estimators.py::test_early_stopping_restores_best_and_holds_out_data",
         "tests/test_estimators.py::test_history_records_each_epoch",
         "tests/test_estimators.py::test_verbose_prints_a_log",
         "tests/test_estimators.py::test_warm_start_continues_training"],
        [],
    ),
    "_finetune": (["tests/test_finetune.py",
                   "tests/test_pretrained.py::test_layer_groups_cover_every_parameter_once",
                   "tests/test_pretrained.py::test_freeze_and_name_groups"], []),
    "_signal": (["tests/test_signal.py", "tests/test_sequences.py",
                 "tests/test_errors.py"], ["-k", "not gunpoint"]),
    "_sequences": (["tests/test_sequences.py", "tests/test_signal.py"],
                   ["-k", "not gunpoint"]),
    "_base": (["tests/test_base.py", "tests/test_errors.py", "tests/test_estimators.py",
               "tests/test_schedules.py", "tests/test_incremental.py"],
              ["-k", "not learns_digits and not dask"]),
    "_data": (["tests/test_data.py", "tests/test_performance.py",
               "tests/test_sequences.py"], []),
    "_augment": (["tests/test_augment.py", "tests/test_signal.py"],
                 ["-k", "not gunpoint"]),
}
BASE_ARGS = ["-p", "no:xdist", "-q", "-m", "not slow and not gpu"]

GENERATE = """
import os
os.makedirs("mutants", exist_ok=True)
from mutmut.__main__ import (copy_also_copy_files, copy_src_dir, create_mutants,
                             setup_source_paths, store_lines_covered_by_tests)
copy_src_dir()
copy_also_copy_files()
setup_source_paths()
store_lines_covered_by_tests()
create_mutants(1)
"""


def mutmut_section(module, tests, extra):
    return "\n".join([
        "[tool.mutmut]",
        'source_paths = ["skcnn/"]',
        f'only_mutate = ["skcnn/{module}.py"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        f"pytest_add_cli_args = {json.dumps(BASE_ARGS + extra)}",
        "use_git_change_detection = false",
        # mutmut's default (15) lets an endless loop run for 30 times the
        # tests' time before it counts as a timeout.
        "timeout_multiplier = 3.0",
        "",
    ])


def project_for(module):
    """A fresh mutmut project for ``module`` in build/mutation/<module>/."""
    tests, extra = SELECTIONS[module]
    work = ROOT / "build" / "mutation" / module
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "skcnn", work / "skcnn", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    kept, skipping = [], False
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("["):
            skipping = line.strip() == "[tool.mutmut]"
        if not skipping:
            kept.append(line)
    text = "\n".join(kept) + "\n\n" + mutmut_section(module, tests, extra)
    (work / "pyproject.toml").write_text(text)
    return work


def statuses(work, module):
    """Mutant name -> mutmut's exit code (None: not run) for the module."""
    meta = work / "mutants" / "skcnn" / f"{module}.py.meta"
    return json.loads(meta.read_text())["exit_code_by_key"]


def status_name(code):
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", choices=sorted(SELECTIONS))
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--children", type=int, default=1)
    args = parser.parse_args()

    work = project_for(args.module)
    subprocess.run([sys.executable, "-c", GENERATE], cwd=work, check=True,
                   stdout=subprocess.DEVNULL)
    names = sorted(statuses(work, args.module))
    sample = sorted(random.Random(args.seed).sample(names, min(args.sample, len(names))))
    (work / "sample.txt").write_text("\n".join(sample) + "\n")
    print(f"skcnn/{args.module}.py: {len(names)} mutants, running {len(sample)} "
          f"(seed {args.seed}) in {work.relative_to(ROOT)}", flush=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    subprocess.run([str(mutmut), "run", "--max-children", str(args.children), *sample],
                   cwd=work, check=False)

    codes = statuses(work, args.module)
    results = {name: status_name(codes[name]) for name in sample}
    counts = Counter(results.values())
    # An endless loop killed by hand reads as "segfault" (exit -9).
    killed = counts["killed"] + counts["timeout"] + counts["segfault"]
    reached = len(sample) - counts["no tests"]
    lines = [f"{name}: {status}" for name, status in results.items() if status != "killed"]
    (work / "results.txt").write_text("\n".join(lines) + "\n")
    score = 100 * killed / reached if reached else float("nan")
    summary = (f"skcnn/{args.module}.py: sample {len(sample)} of {len(names)} (seed {args.seed}): "
               + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
               + f"; score {killed}/{reached} = {score:.0f}% of the reached mutants")
    print(summary)
    print("\n".join(lines))
    with open(ROOT / "build" / "mutation" / "summary.txt", "a") as f:
        f.write(summary + "\n")


if __name__ == "__main__":
    main()
