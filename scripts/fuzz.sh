#!/usr/bin/env bash
# Fuzzes the safetensors header parser with libFuzzer (clang from Debian:
# apt-get install clang), with AddressSanitizer and UBSan.
#
#   scripts/fuzz.sh [SECONDS=60] [extra libFuzzer flags...]
#
# Runs from the committed corpus (tests/fuzz/corpus/safetensors_header), then
# merges into it only the new inputs that add coverage, so the corpus stays
# small; commit what it adds. A crash leaves crash-* in build/fuzz and exits
# non-zero. ctest's fuzz_corpus_safetensors_header replays the corpus with the
# normal compiler. The build is three source files, independent of CMake.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang++ (apt-get install clang)" >&2; exit 2; }

out="$root/build/fuzz"
corpus="$root/tests/fuzz/corpus/safetensors_header"
mkdir -p "$out" "$corpus"
bin="$out/fuzz_safetensors_header"
echo "fuzz.sh: building $bin"
clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/src" -I"$root" -o "$bin" \
  "$root/tests/fuzz/fuzz_safetensors_header.cpp" "$root/src/io/safetensors_header.cpp" \
  "$root/src/core/error.cpp" "$root/src/core/tensor.cpp"

fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
echo "fuzz.sh: fuzzing for ${seconds}s from $(ls "$corpus" | wc -l) corpus inputs"
(cd "$out" && "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$@" "$fresh" "$corpus")
before=$(ls "$corpus" | wc -l)
"$bin" -merge=1 "$corpus" "$fresh" 2>/dev/null
echo "fuzz.sh: corpus $before -> $(ls "$corpus" | wc -l) inputs (commit the new ones)"
