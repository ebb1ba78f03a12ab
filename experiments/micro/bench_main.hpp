// A Google Benchmark main for binaries that mix OpenMP and OpenBLAS
// (pthreads): libgomp's spinning worker threads starve OpenBLAS's threads
// on a small machine, so the benchmark re-executes itself with
// OMP_WAIT_POLICY=passive unless the caller chose a policy.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "core/rng.hpp"

namespace moelab::bench {

inline std::vector<float> random_floats(int64_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(scale * rng.normal());
  return v;
}

inline benchmark::Counter rate(double per_iteration) {
  return benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

inline void ensure_passive_omp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: run on with the policy unset
}

}  // namespace moelab::bench

#define MOELAB_BENCHMARK_MAIN()                                             \
  int main(int argc, char** argv) {                                         \
    moelab::bench::ensure_passive_omp(argv);                                \
    ::benchmark::Initialize(&argc, argv);                                   \
    if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;     \
    ::benchmark::RunSpecifiedBenchmarks();                                  \
    ::benchmark::Shutdown();                                                \
    return 0;                                                               \
  }
