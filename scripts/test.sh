#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs the whole
# suite with ctest (unit tests, MPI tests, GPU tests that skip without a GPU).
#
#   scripts/test.sh              Release build in build/ (CUDA kernels too when
#                                nvcc is found), every test
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer
#                                build in build-sanitize/, unit tests
#   extra arguments go to ctest, e.g. scripts/test.sh -R Router
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
if [ "${1:-}" = "--sanitize" ]; then sanitize=1; shift; fi

scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

if [ $sanitize -eq 1 ]; then
  build=build-sanitize
  cmake -S . -B $build -DCMAKE_BUILD_TYPE=Debug -DMOELAB_SANITIZE=ON -DMOELAB_CUDA=OFF -DMOELAB_BENCH=OFF \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" >/dev/null
  cmake --build $build -j "$jobs"
  # Open MPI's own allocations are reported as leaks at exit; leak checking
  # is therefore off, everything else aborts the test on the first error.
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  cd $build && ctest --output-on-failure -j "$jobs" -L unit "$@"
else
  build=build
  cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build $build -j "$jobs"
  cd $build && ctest --output-on-failure -j "$jobs" "$@"
fi
