# Sourced by the `--device cuda` CLI test scripts.
# run_cuda LOG WHAT CMD...: runs CMD with its output in LOG. When CMD fails
# because there is no GPU (for every rank), prints "skipped: no GPU ..." (the
# ctest SKIP_REGULAR_EXPRESSION) and ends the script with 0; on any other
# failure prints LOG and ends it with 1.
run_cuda() {
  local log=$1 what=$2
  shift 2
  "$@" >"$log" 2>&1
  local rc=$?
  [ $rc -eq 0 ] && return 0
  if grep -q -e "--device cuda: no GPU" -e "NCCL needs one GPU per rank" "$log"; then
    echo "skipped: no GPU for every rank ($(grep -m1 'error:' "$log"))"
    exit 0
  fi
  cat "$log"
  echo "FAIL: $what exited with $rc"
  exit 1
}
