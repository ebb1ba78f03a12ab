#include "cli/commands.hpp"

namespace moelab {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"info", "parameter counts, weight memory and KV cache of a model preset or config.json", cmd_info},
      {"show", "summarise a results file: runs, status, key config, last values", cmd_show},
      {"fp8", "FP8 numerics: quantize a tensor, emulated FP8 GEMM, error against K (quantize|gemm|errcurve)",
       cmd_fp8},
      {"train", "train a DeepSeek-V3 model on the byte-level corpus: balancing, MTP, loss and expert load to HDF5",
       cmd_train},
      {"forward", "run the decoder layers of a safetensors checkpoint on a hidden state (HDF5 in, HDF5 out)",
       cmd_forward},
      {"init-weights", "write a random checkpoint of a model's decoder layers (F32, BF16 or FP8; one file or shards)",
       cmd_init_weights},
      {"schedule", "pipeline schedules (1F1B, ZB1P, DualPipe, DualPipeV, ...): validate, simulate bubbles, Gantt chart",
       cmd_schedule},
      {"ep", "expert parallelism over MPI: dispatch/combine steps, traffic by link class, all-to-all bandwidth",
       cmd_ep},
      {"bench", "run the benchmark suite (micro-benchmarks, end-to-end runs, instruction counts) into HDF5",
       cmd_bench},
      {"compare", "compare benchmark figures against a baseline: change, significance, regressions", cmd_compare},
      {"plan", "capacity planner: price a DeepSeek-V3 run on a modelled cluster (step time, GPU-hours, memory; --sweep)",
       cmd_plan},
  };
  return table;
}

}  // namespace moelab
