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

# ---- the quickstart (issue 4): train DeepSeek-V3 (v3-small) for a few minutes
# with auxiliary-loss-free balancing and multi-token prediction, on the
# byte-level corpus built from Debian packages. moelab's embedded defaults are
# the quickstart's configuration (no config file); DEMO_STEPS shortens it.
echo
echo "== the training corpus (data/corpus.h5: prose, C/C++ headers, generated maths)"
scripts/prepare_corpus.sh
echo
echo "== quickstart: v3-small, aux-loss-free balancing + complementary sequence-wise loss, MTP depth 1,"
echo "   experts spread over 2 MPI ranks (expert parallelism, EP=2: dispatch/combine by MPI all-to-all)"
export OMP_WAIT_POLICY=passive
mpi_flags=(--oversubscribe -np "${DEMO_RANKS:-2}" -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1 -x OMP_WAIT_POLICY)
[ "$(id -u)" -eq 0 ] && mpi_flags+=(--allow-run-as-root)
mpirun "${mpi_flags[@]}" build/moelab train --set output.out=results/quickstart.h5 --set output.force=true \
  ${DEMO_STEPS:+--set train.steps=$DEMO_STEPS --set train.decay_start=$((DEMO_STEPS / 2)) --set train.decay_steps=$((DEMO_STEPS / 2))}
echo
echo "== plots"
/usr/bin/python3 scripts/plot.py results/quickstart.h5 --out results/quickstart_plots
