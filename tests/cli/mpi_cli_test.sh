#!/usr/bin/env bash
# moelab under mpirun with 2 and 4 ranks: rank 0 alone prints, and an error
# (on every rank, or on one) ends the job with a non-zero status, never a hang.
set -u
mpiexec=$1; flags=$2; moelab=$3
fail() { echo "FAIL: $*"; exit 1; }

for np in 2 4; do
  out=$(timeout 60 "$mpiexec" -np $np $flags "$moelab" info --model v3-tiny 2>&1) || fail "np=$np info failed: $out"
  n=$(grep -c "model: v3-tiny" <<<"$out")
  [ "$n" -eq 1 ] || fail "np=$np: expected one report from rank 0, got $n"
  echo "ok: np=$np info printed once"

  err=$(timeout 60 "$mpiexec" -np $np $flags "$moelab" info --model no-such-model 2>&1)
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "np=$np: bad model gave status $rc (124 = hang): $err"
  grep -q "error: .*unknown model preset 'no-such-model'" <<<"$err" || fail "np=$np: no error line: $err"
  n=$(grep -c "unknown model preset" <<<"$err")
  [ "$n" -eq 1 ] || fail "np=$np: the error was printed $n times"
  echo "ok: np=$np bad input ends the job with status $rc, one error line"
done
echo "1 passed, 0 failed"
