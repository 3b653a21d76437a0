#!/usr/bin/env bash
# Mutation testing of skcnn's training machinery with mutmut 3 (not part of CI).
#
# Usage (from the repository root, in an environment with skcnn's test extra):
#     pip install 'skcnn[mutation]'
#     tools/mutation.sh                  # every module of [tool.mutmut] only_mutate
#     tools/mutation.sh _data _augment   # some modules only
#     MUTMUT_CHILDREN=4 tools/mutation.sh
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
if [ "$#" -eq 0 ]; then
    exec mutmut run --max-children "$children"
fi
names=()
for module in "$@"; do
    names+=("skcnn.${module}.*")
done
exec mutmut run --max-children "$children" "${names[@]}"
