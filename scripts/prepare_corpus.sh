#!/usr/bin/env bash
# Prepares data/corpus.h5 (git-ignored), the training corpus of `moelab train`:
# English prose (Debian's fortunes and jargon-text), C/C++ headers from
# /usr/include and generated mathematics problems, byte-level tokens with a
# domain tag per token. See scripts/prepare_corpus.py for the layout.
#   scripts/prepare_corpus.sh [--out data/corpus.h5] [--bytes-per-domain N] ...
# Idempotent: an existing data/corpus.h5 is kept unless --force is given.
set -euo pipefail
cd "$(dirname "$0")/.."

force=0
args=()
out=data/corpus.h5
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --out) out="$2"; args+=("$1" "$2"); shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ -f "$out" ] && [ "$force" = 0 ]; then
  echo "prepare_corpus: $out exists (use --force to rebuild)"
  exit 0
fi
bash scripts/install-deps.sh
/usr/bin/python3 scripts/prepare_corpus.py --out "$out" "${args[@]}"
