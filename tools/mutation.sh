#!/usr/bin/env bash
# Mutation testing of skcnn's training machinery with mutmut 3 (not part of CI).
#
# Usage (from the repository root, in an environment with skcnn's test extra):
#     pip install 'skcnn[mutation]'
#     tools/mutation.sh                  # every module of [tool.mutmut] only_mutate
#     tools/mutation.sh _data _augment   # some modules only
#     MUTMUT_CHILDREN=4 tools/mutation.sh
#     tools/mutation.sh --sample 50 _net _finetune   # a seeded sample per module
#     MUTMUT_SEED=7 tools/mutation.sh --sample 40 _base
#
# --sample N runs, for each module named, N mutants drawn at random (seed
# MUTMUT_SEED, default 2026) against a short test selection for that module
# (tools/mutation_sample.py, SELECTIONS), each module in its own mutmut project
# under build/mutation/<module>/; a one-line summary per module is appended
# to build/mutation/summary.txt and the survivors listed in
# build/mutation/<module>/results.txt. Runs at the lowest priority (nice 19).
#
# The modules mutated and the (fast) test files run against each mutant are
# set in pyproject.toml, [tool.mutmut]. mutmut copies the project into
# mutants/ (git-ignored), runs the tests once to learn which tests reach
# which function, then runs, for each mutant, only those tests. Results:
#     mutmut results                     # survivors
#     mutmut show <mutant name>          # the diff of one mutant
# tests/MUTATION.md records the score of the last run and the survivors
# accepted, with the reason each is harmless or out of the tests' reach.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per child: forks and small nets
children=${MUTMUT_CHILDREN:-2}
if [ "${1:-}" = "--sample" ]; then
    n=$2
    shift 2
    for module in "$@"; do
        nice -n 19 python tools/mutation_sample.py "$module" --sample "$n" \
            --seed "${MUTMUT_SEED:-2026}" --children "${MUTMUT_CHILDREN:-1}"
    done
    exit 0
fi
if [ "$#" -eq 0 ]; then
    exec mutmut run --max-children "$children"
fi
names=()
for module in "$@"; do
    names+=("skcnn.${module}.*")
done
exec mutmut run --max-children "$children" "${names[@]}"
