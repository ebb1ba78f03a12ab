// What every subcommand is given: its MPI place and where to print.
#pragma once

#include <ostream>
#include <string>

namespace moelab {

struct CommandContext {
  int rank = 0;
  int world_size = 1;
  std::ostream* out = nullptr;  // stdout on rank 0; a null stream on other ranks
  std::string command_line;     // the whole invocation, for results provenance
  bool is_root() const { return rank == 0; }
  std::ostream& print() const { return *out; }
};

}  // namespace moelab
