#!/usr/bin/env bash
# Run once on a machine with an NVIDIA GPU: builds moelab with the CUDA
# kernels, runs every GPU-vs-CPU test and the GPU micro-benchmarks, and prints
# one table: op, max error against the CPU twin, time, TFLOP/s or GB/s.
#
#   scripts/gpu_check.sh            build in build-gpu/ (Release, CUDA on)
# Without a GPU it says so and exits 0 after the build (the tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=build-gpu
cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DMOELAB_CUDA=ON >/dev/null
cmake --build $build -j "$(nproc)" --target test_kernels bench_kernels_gpu
out=$build/gpu_check
mkdir -p $out
$build/tests/test_kernels --gtest_output=json:$out/tests.json || echo "gpu_check: some GPU tests FAILED (see above)"
$build/experiments/micro/bench_kernels_gpu --benchmark_min_time=0.2s \
  --benchmark_out=$out/bench.json --benchmark_out_format=json >/dev/null || true
/usr/bin/python3 - "$out/tests.json" "$out/bench.json" <<'PY'
import json, sys
tests = json.load(open(sys.argv[1]))
print(f"{'test':<40} {'result':<8} figures")
for suite in tests["testsuites"]:
    for t in suite["testsuite"]:
        props = {k: v for k, v in t.items() if k.startswith(("max_", "mismatch_"))}
        skipped = t.get("result") == "SKIPPED"
        result = "skipped" if skipped else ("FAILED" if t.get("failures") else "ok")
        figures = " ".join(f"{k}={v}" for k, v in props.items())
        print(f"{suite['name'] + '.' + t['name']:<40} {result:<8} {figures}")
bench = json.load(open(sys.argv[2]))
print(f"\n{'benchmark':<52} {'time_us':>10} {'TFLOP/s':>9} {'GB/s':>9}")
for b in bench["benchmarks"]:
    if b.get("error_occurred"):
        print(f"{b['name']:<52} skipped: {b.get('error_message', '')}")
        continue
    t_us = b["real_time"] * {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6}[b["time_unit"]]
    tf = b.get("FLOP/s", 0) / 1e12
    gb = b.get("bytes/s", 0) / 1e9
    print(f"{b['name']:<52} {t_us:>10.1f} {tf:>9.2f} {gb:>9.1f}")
PY

# `moelab train --device cuda` against --device cpu (its parts, one whole step,
# the CLI's loss curve), the GPU suite of `moelab bench --device cuda`, and the
# routed experts' forward/backward timings as training runs them.
cmake --build $build -j "$(nproc)" --target moelab test_train_gpu test_train_device_cli bench_experts_gpu bench_kernels_gpu
$build/tests/test_train_gpu --gtest_output=json:$out/train_tests.json || echo "gpu_check: train --device cuda checks FAILED (see above)"
/usr/bin/python3 - "$out/train_tests.json" <<'PY'
import json, sys
tests = json.load(open(sys.argv[1]))
print(f"\n{'train --device cuda test':<52} {'result':<8} figures")
for suite in tests["testsuites"]:
    for t in suite["testsuite"]:
        props = {k: v for k, v in t.items() if k.startswith(("max_", "loss_", "grad_"))}
        result = "skipped" if t.get("result") == "SKIPPED" else ("FAILED" if t.get("failures") else "ok")
        print(f"{suite['name'] + '.' + t['name']:<52} {result:<8} " + " ".join(f"{k}={v}" for k, v in props.items()))
PY
$build/experiments/micro/bench_experts_gpu --benchmark_min_time=0.2s || echo "gpu_check: bench_experts_gpu FAILED"

# Every GPU test (ctest label `gpu`, tests/CMakeLists.txt): the GPU-vs-CPU
# kernels, CudaTrainStep, the --device cuda CLIs (forward, ep, train, bench), the
# NCCL dispatcher, pipeline transport and EP experts, and `moelab train --device
# cuda` under mpirun (EP=2 direct / two_hop / bf16 wire, PP=2 DualPipe, PP 2 x
# EP 2) against the CPU runs. Multi-rank tests need one GPU per rank on this
# host: with fewer they report "skipped: no GPU" (ctest lists them as skipped).
cmake --build $build -j "$(nproc)"
(cd $build && ctest -L gpu --output-on-failure --timeout 600 2>&1 | tee $out/ctest_gpu.log) ||
  echo "gpu_check: some GPU tests FAILED (see above)"
echo
# ctest's own lines: "Test #N: name ....   Passed", "***Skipped", "***Failed", "***Timeout".
echo "GPU tests (ctest -L gpu): $(grep -c -E 'Test +#[0-9]+: .* Passed' $out/ctest_gpu.log || true) passed," \
  "$(grep -c -E 'Test +#[0-9]+: .*\*\*\*Skipped' $out/ctest_gpu.log || true) skipped (no GPU, or not one per rank)," \
  "$(grep -c -E 'Test +#[0-9]+: .*\*\*\*(Failed|Timeout|Exception)' $out/ctest_gpu.log || true) failed"
