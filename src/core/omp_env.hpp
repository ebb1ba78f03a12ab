// OpenMP (libgomp) and OpenBLAS (its own pthreads) share the 2 cores of a
// small machine. libgomp's idle threads spin for a while after each parallel
// region by default, starving the OpenBLAS threads of the GEMM that follows
// (measured: several-fold slower layers). OMP_WAIT_POLICY=passive makes them
// sleep instead. libgomp reads the variable once when it loads, before
// main(), so a process that finds it unset sets it and re-executes itself.
// A user's explicit setting is kept.
#pragma once

#include <cstdlib>
#include <unistd.h>

namespace moelab {

inline void ensure_passive_omp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: run on, merely slower
}

}  // namespace moelab
