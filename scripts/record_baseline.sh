#!/usr/bin/env bash
# (Re-)records the regression baseline results/baselines/quick.h5 on this
# machine: a Release build of moelab and the benchmarks, then the quick suite
# with MOELAB_BASELINE_REPS repetitions (default 5). Commit the new file with a
# message saying why it moved (results/baselines/README.md).
#
#   scripts/record_baseline.sh            quick suite into results/baselines/quick.h5
#   MOELAB_BASELINE_SUITE=full scripts/record_baseline.sh   full suite into results/baselines/full.h5
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MOELAB_BUILD_DIR:-$root/build}
suite=${MOELAB_BASELINE_SUITE:-quick}
reps=${MOELAB_BASELINE_REPS:-5}
out="$root/results/baselines/$suite.h5"
export OMP_WAIT_POLICY=passive

"$root/scripts/install-deps.sh"
[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=(moelab callgrind_kernels)
for src in "$root"/experiments/micro/bench_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
cmake --build "$build" -j "${MOELAB_JOBS:-2}" --target "${targets[@]}"

if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- src kernels experiments 2>/dev/null)" ]; then
  echo "record_baseline: warning: uncommitted changes in src/ kernels/ experiments/ (the baseline's commit says -dirty)" >&2
fi
mkdir -p "$(dirname "$out")"
"$build/moelab" bench --suite "$suite" --repetitions "$reps" --out "$out" --force
echo "record_baseline: wrote $out; check it: $build/moelab compare $out $out"
