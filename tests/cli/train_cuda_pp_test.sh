#!/usr/bin/env bash
# `mpirun -np N moelab train --device cuda --set parallel.pp=2 --set parallel.schedule=dualpipe`
# (each stage's routed experts and dense GEMMs on its rank's GPU, the pipeline's
# point-to-point over NCCL; with parallel.ep=2 on 4 ranks also the EP
# dispatch/combine over NCCL) against the same run with --device cpu (MPI, CPU):
# per-step losses within 1e-5 relative at step 1 and 1e-3 after, gradient norms
# within 1e-4 / 1e-2 (the tolerances of train_cuda_ep_test.sh: FP32 GEMMs in
# another order, expert weight gradients summed in another order, AdamW amplifying
# rounding on near-zero gradients), and a measured timeline in the results. Needs
# one GPU per rank: otherwise "skipped: no GPU ..." (ctest SKIP_REGULAR_EXPRESSION).
#   train_cuda_pp_test.sh MPIEXEC FLAGS MOELAB CORPUS PYTHON NP "EXTRA SETTINGS"
set -u
mpiexec=$1; flags=$2; moelab=$3; corpus=$4; python=$5; np=${6:-2}; extra=${7:-}
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
dir=$(mktemp -d /tmp/moelab_train_cuda_pp.XXXXXX)
trap 'rm -rf "$dir"' EXIT
sets=""
for kv in $extra; do sets="$sets --set $kv"; done
common="--set model.preset=v3-tiny --set model.mtp_depth=0 --set balance.method=aux_free --set data.corpus=$corpus
  --set data.heldout_every=10 --set data.seq_len=16 --set data.batch_size=8 --set train.steps=4
  --set train.eval_batches=1 --set train.eval_every=0 --set train.log_every=1 --set parallel.pp=2
  --set parallel.schedule=dualpipe --set parallel.gpus_per_node=1 --set output.force=true $sets"
source "$(dirname "$0")/cuda_run.sh"
run_cuda "$dir/gpu.log" "pipelined train --device cuda" \
  timeout 300 "$mpiexec" -np "$np" $flags "$moelab" train --device cuda $common --set output.out="$dir/gpu.h5"
grep -q "routed experts and dense GEMMs on the GPU" "$dir/gpu.log" || { cat "$dir/gpu.log"; echo "FAIL: no device line"; exit 1; }
timeout 300 "$mpiexec" -np "$np" $flags "$moelab" train --device cpu $common --set output.out="$dir/cpu.h5" \
  >"$dir/cpu.log" 2>&1 || { cat "$dir/cpu.log"; echo "FAIL: pipelined train --device cpu"; exit 1; }
"$python" - "$dir/cpu.h5" "$dir/gpu.h5" "np=$np $extra" <<'PY'
import sys
import h5py
cpu, gpu = (h5py.File(p, "r")["runs/train"] for p in sys.argv[1:3])
bad = []
for name, first, later in (("loss", 1e-5, 1e-3), ("grad_norm", 1e-4, 1e-2)):
    a, b = cpu["train/" + name][()], gpu["train/" + name][()]
    if len(a) != len(b) or len(a) == 0:
        bad.append(f"train/{name}: {len(a)} steps on the CPU, {len(b)} with --device cuda")
    for i, (x, y) in enumerate(zip(a, b)):
        tol = (first if i == 0 else later) * abs(x)
        if abs(x - y) > tol:
            bad.append(f"train/{name} step {i + 1}: cpu {x!r} cuda {y!r} (tol {tol:.3g})")
if "schedule" not in gpu:
    bad.append("no /runs/train/schedule (the measured timeline) in the --device cuda run")
print("losses cpu ", cpu["train/loss"][()].tolist())
print("losses cuda", gpu["train/loss"][()].tolist())
if bad:
    print("FAIL:\n  " + "\n  ".join(bad))
    sys.exit(1)
print(f"ok: PP=2 dualpipe ({sys.argv[3].strip()}) with --device cuda follows the CPU run")
PY
