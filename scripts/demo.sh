#!/usr/bin/env bash
# The README's first command: installs what is missing, builds moelab
# (Release, build/), and runs the main job with its embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target moelab

mkdir -p results
echo "== DeepSeek-V3 (671B) as its config.json describes it"
build/moelab info --model deepseek-v3
echo
echo "== the v3-small experiment model, written to results/demo.h5"
build/moelab info --model v3-small --out results/demo.h5 --force
echo
echo "== what the results file holds"
build/moelab show results/demo.h5
