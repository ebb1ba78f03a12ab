#!/usr/bin/env bash
# Installs moelab's build and run dependencies from Debian's packages.
# Idempotent: installs only what is missing, so test.sh and demo.sh can call
# it on every run at almost no cost.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libhdf5-dev
  libboost-program-options-dev libboost-context-dev  # context: the F&B fibers (src/parallel/overlap_pair.hpp)
  libbenchmark-dev libgtest-dev libgmock-dev
  libopenblas-dev
  nlohmann-json3-dev
  python3 python3-h5py python3-matplotlib python3-numpy
  fortunes jargon-text  # English prose of the training corpus (scripts/prepare_corpus.sh)
  valgrind
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
