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

# NCCL dispatch/combine vs MPI (2 ranks: needs 2 GPUs on this host, else it
# reports skipped) and `moelab forward --device cuda` vs --device cpu.
cmake --build $build -j "$(nproc)" --target moelab test_forward_device_cli
cmake --build $build -j "$(nproc)" --target test_nccl_dispatch 2>/dev/null || echo "gpu_check: no NCCL, test_nccl_dispatch not built"
(cd $build && ctest -R "nccl_|ForwardDevice" --output-on-failure) || echo "gpu_check: NCCL / forward --device cuda checks FAILED"

# `moelab train --device cuda` against --device cpu (its parts, one whole step,
# the CLI's loss curve), the GPU suite of `moelab bench --device cuda`, and the
# routed experts' forward/backward timings as training runs them.
cmake --build $build -j "$(nproc)" --target moelab test_train_gpu test_train_device_cli bench_experts_gpu bench_kernels_gpu
$build/tests/test_train_gpu --gtest_output=json:$out/train_tests.json || echo "gpu_check: train --device cuda checks FAILED (see above)"
(cd $build && ctest -R "TrainDeviceCli|BenchDevice" --output-on-failure) || echo "gpu_check: train/bench --device cuda CLI checks FAILED"
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

# Expert parallelism over NCCL in training (2 ranks: needs 2 GPUs on this host,
# else reported as skipped): the NCCL experts against the MPI/CPU ones, and
# `mpirun -np 2 moelab train --device cuda --set parallel.ep=2` against --device cpu.
cmake --build $build -j "$(nproc)" --target test_nccl_ep_experts 2>/dev/null || echo "gpu_check: no NCCL, test_nccl_ep_experts not built"
(cd $build && ctest -R "nccl_ep_experts|train_cuda_ep" --output-on-failure) || echo "gpu_check: EP over NCCL in training FAILED"
