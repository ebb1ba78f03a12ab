# Sourced by scripts/regress.sh and scripts/record_baseline.sh: installs what
# is missing and builds, in $build (Release), what `moelab bench` runs —
# moelab, the callgrind probe and every experiments/micro/bench_*.cpp — and
# nothing else (no tests), so a check costs minutes, not a full build.
"$root/scripts/install-deps.sh"
[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
bench_targets=(moelab callgrind_kernels)
for src in "$root"/experiments/micro/bench_*.cpp; do bench_targets+=("$(basename "$src" .cpp)"); done
cmake --build "$build" -j "${MOELAB_JOBS:-2}" --target "${bench_targets[@]}"
