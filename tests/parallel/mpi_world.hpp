// This process's rank and the number of ranks in MPI_COMM_WORLD, for tests
// that run under mpirun.
#pragma once

#include <mpi.h>

namespace moelab::test {

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

inline int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

}  // namespace moelab::test
