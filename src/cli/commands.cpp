#include "cli/commands.hpp"

namespace moelab {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"info", "parameter counts, weight memory and KV cache of a model preset or config.json", cmd_info},
      {"show", "summarise a results file: runs, status, key config, last values", cmd_show},
      {"fp8", "FP8 numerics: quantize a tensor, emulated FP8 GEMM, error against K (quantize|gemm|errcurve)",
       cmd_fp8},
      {"ep", "expert parallelism over MPI: dispatch/combine steps, traffic by link class, all-to-all bandwidth",
       cmd_ep},
      {"train", "train a DeepSeek-V3 model on the byte-level corpus: balancing, MTP, loss and expert load to HDF5",
       cmd_train},
  };
  return table;
}

}  // namespace moelab
