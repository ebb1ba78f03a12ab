#!/usr/bin/env bash
# moelab ep under mpirun: a two-hop run verifies and writes comm/ [steps, ranks]
# with the node limit held; a recorded routing replays to the same expert
# loads; a model whose groups are not the nodes is refused with one line; and
# a rank killed mid-step ends the job with an error instead of hanging it.
set -u
mpiexec=$1; flags=$2; moelab=$3
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive
fail() { echo "FAIL: $*"; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
small="--set moe.experts=16 --set moe.topk=4 --set moe.hidden=160 --set moe.expert_inter=32 --set moe.tokens=48 --set run.steps=3 --set bench.a2a_sizes=4096 --set bench.iters=2"

# 1. two_hop, fp8 dispatch, M = 1 of 2 nodes, 4 ranks: verified, node limit held.
out=$(timeout 120 "$mpiexec" -np 4 $flags "$moelab" ep $small --set parallel.dispatch=two_hop \
      --set parallel.max_nodes=1 --set run.record_routing=true --out "$dir/a.h5" 2>&1) || fail "two_hop run: $out"
grep -q "verify: ok" <<<"$out" || fail "no verify ok: $out"
grep -q "max 1 (<= M: yes)" <<<"$out" || fail "node limit: $out"
grep -q "alltoall" <<<"$out" || fail "no all-to-all table: $out"
grep -q "busbw / memcpy" <<<"$out" || fail "no memcpy ratio: $out"
show=$("$moelab" show "$dir/a.h5" 2>&1)
grep -q "comm/dispatch_bytes_sent_inter \[3, 4\]" <<<"$show" || fail "comm datasets: $show"
grep -q "routing/topk_idx \[3, 192, 4\]" <<<"$show" || fail "recorded routing: $show"
echo "ok: two_hop fp8 run verified, node limit held, comm/ [steps, ranks] written"

# 2. replay of the recorded routing: the same expert loads per rank.
out=$(timeout 120 "$mpiexec" -np 4 $flags "$moelab" ep $small --set routing.source=replay \
      --set routing.replay_file="$dir/a.h5" --set routing.replay_dataset=/runs/ep/routing/topk_idx \
      --set parallel.dispatch=two_hop --set parallel.max_nodes=1 --out "$dir/b.h5" 2>&1) || fail "replay: $out"
a=$("$moelab" show "$dir/a.h5" | grep "comm/expert_load ")
b=$("$moelab" show "$dir/b.h5" | grep "comm/expert_load ")
[ -n "$a" ] && [ "$a" = "$b" ] || fail "replayed loads differ: '$a' vs '$b'"
echo "ok: replayed routing gives the recorded loads ($a)"

# 3. model groups vs nodes: v3-tiny has n_group 4, topk_group 2; 4 ranks in 2 nodes.
err=$(timeout 60 "$mpiexec" -np 4 $flags "$moelab" ep --model v3-tiny --set parallel.gpus_per_node=2 \
      --set moe.tokens=8 --set run.steps=1 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "mismatched groups gave status $rc: $err"
grep -q "error: .*n_group = 4, topk_group = 2.*nodes per EP group (2" <<<"$err" || fail "no clear error: $err"
echo "ok: model groups that are not the nodes are refused (status $rc)"

# 4. a rank killed after dispatch: the job ends with an error, not a hang.
start=$(date +%s)
err=$(timeout 60 "$mpiexec" -np 4 $flags "$moelab" ep $small --set debug.kill_rank=2 --set debug.kill_step=1 2>&1)
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "killed rank gave status $rc (124 = hang): $err"
echo "ok: killed rank ended the job with status $rc in $(( $(date +%s) - start )) s"
echo "4 passed, 0 failed"
