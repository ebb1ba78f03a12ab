#!/usr/bin/env bash
# moelab train with parallel.pp = 2 and 4, and PP = 2 x EP = 2 (issue 6): for each schedule the
# pipelined run's per-step losses, gradient norms and MaxVio equal the
# single-process run's to the 4 printed decimals (3 steps of v3-tiny,
# aux-free balancing, no MTP; then with MTP depth 1 and the sequence-wise
# balance loss), and the results file holds the measured timeline
# (schedule/events, one row per op) with the sim-vs-measured attributes.
# Bad pipeline settings end the job with one clear error.
set -u
mpiexec=$1; flags=$2; moelab=$3; python=$4; corpus=$5
fail() { echo "FAIL: $*"; exit 1; }
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
args=(--set model.preset=v3-tiny --set model.mtp_depth=0 --set balance.method=aux_free --set data.corpus=$corpus
      --set train.steps=3 --set data.batch_size=8 --set data.seq_len=16 --set train.eval_every=0
      --set train.eval_batches=1 --set train.log_every=1 --set output.force=true)
steps() { grep -E "^step [0-9]+/" | sed -E 's/ +[0-9]+ tok\/s//'; }

ref=$(timeout 60 "$moelab" train "${args[@]}" --set output.out=$tmp/ref.h5 2>&1) || fail "single process: $ref"
ref_steps=$(steps <<<"$ref")
[ -n "$ref_steps" ] || fail "no step lines: $ref"
for np in 2 4; do
  for kind in 1f1b zb1p dualpipe dualpipev; do
    out=$(timeout 60 "$mpiexec" -np $np $flags "$moelab" train "${args[@]}" --set parallel.pp=$np \
          --set parallel.schedule=$kind --set output.out=$tmp/$kind$np.h5 2>&1) ||
      fail "np=$np $kind: $out"
    # v3-tiny's 2 decoder layers over 2-8 stages: some stages hold no layer (embedding or head only).
    [ "$(steps <<<"$out")" = "$ref_steps" ] || fail "np=$np $kind: steps differ from one process:
$(steps <<<"$out")
vs
$ref_steps"
    grep -q "predicted_end_ms" <<<"$out" || fail "np=$np $kind: no sim-vs-measured table: $out"
    "$python" - "$tmp/$kind$np.h5" $np <<'PY' || fail "np=$np $kind: results file"
import sys, h5py
f = h5py.File(sys.argv[1], "r"); np_ = int(sys.argv[2])
g = f["runs/train/schedule"]
assert g.attrs["source"] in (b"measured", "measured")
n = g["events/op"].shape[0]
assert n > 0 and set(g["events/rank"][:]) == set(range(np_)), (n, set(g["events/rank"][:]))
assert len(g.attrs["predicted_vs_measured_error_pct"]) == np_
assert g.attrs["duration_model"] in (b"rank_stage_means+p2p+gap", "rank_stage_means+p2p+gap")
assert len(g.attrs["one_mean_error_pct"]) == len(g.attrs["stage_only_error_pct"]) == np_
assert len(g.attrs["measured_rank_stage_durations_s"]) == np_ * g.attrs["num_stages"] * 5
assert g.attrs["measured_p2p_s"] >= 0 and g.attrs["measured_gap_s"] >= 0
assert f["runs/train/schedule_predicted/schedule/events/op"].shape[0] == n
PY
    echo "ok: np=$np $kind equals one process, timeline written ($(grep -A$np predicted_end_ms <<<"$out" | tail -n $np | awk '{printf "%s%% ", $4}')sim-vs-measured)"
  done
done

# PP = 2 x EP = 2 on 4 ranks: two pipeline replicas, each stage's MoE layers dispatched over its EP pair.
for kind in 1f1b zb1p dualpipe dualpipev; do
  out=$(timeout 60 "$mpiexec" -np 4 $flags "$moelab" train "${args[@]}" --set parallel.pp=2 --set parallel.ep=2 \
        --set parallel.schedule=$kind --set output.out=$tmp/ppep_$kind.h5 2>&1) || fail "PP2xEP2 $kind: $out"
  [ "$(steps <<<"$out")" = "$ref_steps" ] || fail "PP2xEP2 $kind: steps differ from one process:
$(steps <<<"$out")
vs
$ref_steps"
  echo "ok: PP=2 x EP=2 $kind equals one process"
done

# F&B overlap: DualPipe's halves interleaved (default) or one after the other give the same steps;
# both measure the communication hidden behind computation, per world rank.
out=$(timeout 60 "$mpiexec" -np 4 $flags "$moelab" train "${args[@]}" --set parallel.pp=2 --set parallel.ep=2 \
      --set parallel.schedule=dualpipe --set parallel.overlap=false --set output.out=$tmp/ppep_sequential.h5 2>&1) ||
  fail "PP2xEP2 dualpipe without overlap: $out"
[ "$(steps <<<"$out")" = "$ref_steps" ] || fail "PP2xEP2 dualpipe without overlap: steps differ from one process"
grep -q "F&B halves one after the other" <<<"$out" || fail "no communication table without overlap: $out"
for f in ppep_dualpipe ppep_sequential; do
  "$python" - "$tmp/$f.h5" <<'PY' || fail "$f: communication attributes"
import sys, h5py
a = h5py.File(sys.argv[1], "r")["runs/train/schedule"].attrs
for k in ("expert", "pipeline", "total"):
    assert len(a[f"comm_{k}_s"]) == 4 and all(x > 0 for x in a[f"comm_{k}_s"]), (k, a[f"comm_{k}_s"])
    assert all(0 <= h <= 1 for h in a[f"comm_{k}_hidden_fraction"]), (k, a[f"comm_{k}_hidden_fraction"])
    assert all(e <= c + 1e-9 for e, c in zip(a[f"comm_{k}_exposed_s"], a[f"comm_{k}_s"]))
print(f"  {sys.argv[1].split('/')[-1]}: overlapped={a['comm_fb_overlapped']}, expert comm hidden "
      f"{100 * a['comm_expert_hidden_fraction_all_ranks']:.1f}%, all comm hidden {100 * a['comm_total_hidden_fraction_all_ranks']:.1f}%")
PY
done
echo "ok: PP=2 x EP=2 dualpipe with and without F&B overlap equal one process; hidden communication measured"

err=$(timeout 60 "$mpiexec" -np 2 $flags "$moelab" train "${args[@]}" --set parallel.pp=2 --set parallel.schedule=dualpipe \
      --set data.batch_size=2 --set output.out=$tmp/bad.h5 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "DualPipe with 2 micro-batches on 2 ranks gave status $rc: $err"
n=$(grep -c "error:" <<<"$err"); [ "$n" -eq 1 ] || fail "expected one error line, got $n: $err"
echo "ok: bad micro-batch count: $(grep error: <<<"$err")"
# MTP (depth 1, on the last stage with the shared embedding and head) and the sequence-wise balance
# loss (balance.method v3: bias + complementary loss, α raised to 0.01 so its figure shows) under
# PP = 2 and PP = 2 x EP = 2: per-step loss, MTP loss, aux loss, |g| and MaxVio equal one process's.
margs=("${args[@]}" --set model.mtp_depth=1 --set balance.method=v3 --set balance.aux_loss_coeff=0.01)
mref=$(timeout 60 "$moelab" train "${margs[@]}" --set output.out=$tmp/mref.h5 2>&1) || fail "single process MTP+aux: $mref"
mref_steps=$(steps <<<"$mref")
grep -q " mtp .* aux " <<<"$mref_steps" || fail "no mtp/aux figures in: $mref_steps"
for kind in 1f1b zb1p dualpipe dualpipev; do
  out=$(timeout 60 "$mpiexec" -np 2 $flags "$moelab" train "${margs[@]}" --set parallel.pp=2 \
        --set parallel.schedule=$kind --set output.out=$tmp/mtp_$kind.h5 2>&1) || fail "MTP+aux np=2 $kind: $out"
  [ "$(steps <<<"$out")" = "$mref_steps" ] || fail "MTP+aux np=2 $kind: steps differ from one process:
$(steps <<<"$out")
vs
$mref_steps"
  echo "ok: MTP + aux loss, np=2 $kind equals one process"
done
"$python" - "$tmp/mref.h5" "$tmp/mtp_dualpipe.h5" <<'PY' || fail "MTP+aux results differ"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["runs/train"] for p in sys.argv[1:])
for k in ("train/loss", "train/mtp_loss", "train/aux_loss", "load/expert_tokens"):
    x, y = a[k][:], b[k][:]
    assert x.shape == y.shape and np.allclose(x, y, rtol=1e-5, atol=1e-9), (k, x, y)
assert (a["train/aux_loss"][:] > 0).all() and (a["train/mtp_loss"][:] > 0).all()
assert len(a["load"].attrs["layer_ids"]) == 2  # layer 1 and the MTP module's layer 2
PY
echo "ok: MTP + aux loss results file (loss, mtp_loss, aux_loss, loads of the MTP layer) equal one process"
out=$(timeout 60 "$mpiexec" -np 4 $flags "$moelab" train "${margs[@]}" --set parallel.pp=2 --set parallel.ep=2 \
      --set parallel.schedule=dualpipe --set output.out=$tmp/mtp_ppep.h5 2>&1) || fail "MTP+aux PP2xEP2: $out"
[ "$(steps <<<"$out")" = "$mref_steps" ] || fail "MTP+aux PP2xEP2: steps differ from one process:
$(steps <<<"$out")
vs
$mref_steps"
echo "ok: MTP + aux loss, PP=2 x EP=2 dualpipe equals one process"
echo "1 passed, 0 failed"
