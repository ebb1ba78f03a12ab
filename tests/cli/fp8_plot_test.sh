#!/usr/bin/env bash
# moelab fp8 errcurve -> HDF5 -> scripts/plot.py -> the PNG of error against K.
#   fp8_plot_test.sh MOELAB PYTHON3 SOURCE_DIR
set -euo pipefail
moelab="$1" python="$2" src="$3"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$moelab" fp8 errcurve --k 256,512 --acc-bits 13,fp32 --promote 0,128 --trials 1 --m 16 --n 16 \
  --out "$work/ec.h5" > "$work/table.txt"
grep -q "acc_bits" "$work/table.txt"
"$python" "$src/scripts/plot.py" "$work/ec.h5" --out "$work/plots" --only fp8
test -s "$work/plots/fp8_errcurve_errcurve.png"
echo "ok: $work/plots/fp8_errcurve_errcurve.png"
