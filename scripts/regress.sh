#!/usr/bin/env bash
# Regression check: builds moelab and the benchmarks, runs the quick suite
# (`moelab bench --suite quick`, a few minutes on 2 cores) and compares it
# with the committed baseline results/baselines/quick.h5. Exit status 0 when
# nothing regressed, 1 on a regression, a loss/error curve that moved by even
# one ULP, a figure missing from the new run, or a suite entry that failed.
#
# Gates (results/baselines/README.md says why):
#   instructions (callgrind, noise-free)   2%    MOELAB_INSTR_THRESHOLD
#   exact curves (loss, FP8 error curve)   bit for bit
#   timings and rates                      100%  MOELAB_TIME_THRESHOLD, and the noise gate
#                                                (3 x robust CV) and the U test at alpha 0.05
# The shared 2-core machine's load moves wall times by +-60% between runs, so
# timings only catch gross slowdowns here; on a quiet machine use e.g.
# MOELAB_TIME_THRESHOLD=10%.
#
#   scripts/regress.sh                        check against the baseline
#   MOELAB_RECORD_BASELINE=1 scripts/regress.sh   re-record the baseline instead
#   MOELAB_BASELINE=other.h5 scripts/regress.sh   check against another file
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${MOELAB_RECORD_BASELINE:-0}" = 1 ]; then exec "$root/scripts/record_baseline.sh"; fi

build=${MOELAB_BUILD_DIR:-$root/build}
baseline=${MOELAB_BASELINE:-$root/results/baselines/quick.h5}
out=${MOELAB_REGRESS_OUT:-$build/regress/quick.h5}
export OMP_WAIT_POLICY=passive

"$root/scripts/install-deps.sh"
[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
# moelab, the probe of the callgrind entries and every micro-benchmark there is.
targets=(moelab callgrind_kernels)
for src in "$root"/experiments/micro/bench_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
cmake --build "$build" -j "${MOELAB_JOBS:-2}" --target "${targets[@]}"

mkdir -p "$(dirname "$out")"
[ -f "$baseline" ] || { echo "regress: no baseline $baseline (record one: scripts/record_baseline.sh)" >&2; exit 2; }
"$build/moelab" bench --suite quick --out "$out" --force
"$build/moelab" compare "$baseline" "$out" \
  --threshold "${MOELAB_TIME_THRESHOLD:-100%}" --threshold "instructions=${MOELAB_INSTR_THRESHOLD:-2%}" \
  --json "${out%.h5}-compare.json"
