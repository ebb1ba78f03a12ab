// The capacity planner: prices one training step of a DeepSeek-V3-class model
// on a modelled cluster and turns it into tokens/s, MFU, days, GPU-hours and
// memory per GPU.
//
// One step, for a layout of G GPUs = PP ranks x (G/PP GPUs per rank), EP
// groups of `ep` GPUs inside each pipeline rank's block, ZeRO-1 data
// parallelism over the rest (no TP, as DeepSeek-V3 §3.2):
//   1. the work model (src/model/cost.hpp) of the whole model for one
//      micro-batch, priced per op by the cost model (cost_model.hpp), divided
//      into the schedule's stages by a min-max contiguous partition (the
//      embedding on the first stage, the head on the last); the slowest
//      stage's F, B, W are the chunk durations (the simulator takes one
//      duration per op kind);
//   2. EP all-to-all per MoE layer from node-limited routing statistics
//      (routing_stats.hpp) on the network model (network.hpp): two-hop
//      dispatch in FP8, combine in BF16, forward and backward;
//   3. chunk durations: F = compute + exposed all-to-all, B likewise, and for
//      DualPipe(V)'s F&B pair max(compute on the SMs left after `comm_sms`,
//      all-to-all of both) -- the overlap DualPipe's pairing allows;
//   4. the schedule generator and event simulator of src/parallel/schedule
//      run the step: makespan, busy, bubble, peak in-flight activations;
//   5. ZeRO-1 DP gradient reduce-scatter + parameter all-gather (exposed,
//      after the pipeline drains) and the optimizer update;
//   6. memory per GPU of the fullest rank (weights, gradients, optimizer
//      states, activations at the schedule's peak, communication buffers).
#pragma once

#include <string>
#include <vector>

#include "model/config.hpp"
#include "parallel/schedule/simulate.hpp"
#include "sim/cost_model.hpp"
#include "sim/hardware.hpp"
#include "sim/routing_stats.hpp"

namespace moelab::sim {

struct PlanConfig {
  ModelConfig model;
  Hardware hardware;
  int64_t gpus = 2048;
  int64_t pp = 16;  // pipeline ranks (DualPipeV: 2 x pp stages)
  int64_t ep = 64;
  std::string schedule = "dualpipe";
  int64_t seq_len = 4096;
  int64_t global_batch = 15360;  // sequences per step
  int64_t micro_batch = 1;       // sequences per micro-batch per GPU
  double tokens = 14.8e12;       // training budget
  double price_per_gpu_hour = 0; // $; 0 = no cost line
  int64_t comm_sms = -1;         // SMs reserved for communication while overlapped; -1: 20 of 132 ([P] §3.2.2),
                                 // scaled to the hardware's SM count
  int64_t resolved_comm_sms() const {
    return comm_sms >= 0 ? comm_sms : static_cast<int64_t>(hardware.num_sms.value * 20.0 / 132.0 + 0.5);
  }
  double expert_imbalance = 1.0; // busiest EP GPU's expert work / mean
  bool mtp = true;
  bool recompute = true;         // RMSNorm and MLA up-projections recomputed in backward ([P] §3.2.3)
  double grad_reduce_bytes = 4;  // bytes per gradient element in the DP reduce-scatter (FP32 grads, [P] §3.3)
  double deepep_buffer_gb = 1.0; // staging buffers of the EP kernels (ASSUMED)
  uint64_t seed = 1;             // routing Monte Carlo
  int64_t routing_tokens = 8192; // routing Monte Carlo sample
  bool keep_events = false;      // keep the step timeline (schedule/events)
  std::string calibration = "kernels";  // kernels | profile-data (cost_model.hpp)

  int64_t dp() const { return gpus / pp; }  // GPUs per pipeline rank = DP degree of non-expert params
  int64_t microbatches() const { return global_batch / (dp() * micro_batch); }
  int64_t tokens_per_microbatch() const { return micro_batch * seq_len; }
  void validate() const;  // one line naming the option that does not fit
};

struct MemoryBreakdown {
  int worst_rank = 0;
  double params = 0;  // parameters held by the GPU
  double weights_gb = 0, grads_gb = 0, optimizer_gb = 0, activations_gb = 0, comm_buffers_gb = 0;
  int64_t peak_inflight = 0;  // micro-batch x stage activation sets alive at the peak
  double total_gb() const { return weights_gb + grads_gb + optimizer_gb + activations_gb + comm_buffers_gb; }
  double capacity_gb = 0;
  bool fits() const { return total_gb() <= capacity_gb; }
};

struct ChunkCost {
  double compute_f_s = 0, compute_b_s = 0, compute_w_s = 0;  // B: input gradient + recomputation
  double a2a_f_s = 0, a2a_b_s = 0;                           // EP dispatch + combine of the chunk's MoE layers
  double a2a_dispatch_layer_s = 0, a2a_combine_layer_s = 0;  // one MoE layer
  double p2p_s = 0;                                          // one PP activation transfer
  schedule::Durations durations;
};

struct PlanResult {
  PlanConfig config;
  int64_t num_stages = 0, microbatches = 0, dp = 0;
  int64_t slowest_stage = 0;
  double total_params = 0;  // over all stages (MTP included when trained)
  double params_all_ranks = 0;  // sum over one pipeline's ranks, experts counted once per EP group  // the stage whose chunk durations the simulator uses
  RoutingStats routing;
  ChunkCost chunk;
  // Step time = compute + exposed_comm + bubble + dp_sync + optimizer.
  double step_time_s = 0, compute_s = 0, exposed_comm_s = 0, bubble_s = 0, dp_sync_s = 0, optimizer_s = 0;
  double tokens_per_step = 0, tokens_per_s_per_gpu = 0;
  double model_flops_per_token = 0, mfu = 0;  // MFU against the dense BF16 peak
  double days = 0, gpu_hours = 0, gpu_hours_per_trillion = 0, cost_usd = 0;
  MemoryBreakdown memory;
  Calibration calibration;
  // With keep_events: the simulated step (schedule and its timeline), written
  // as the schedule/ group of a results file by schedule::write_schedule_group.
  schedule::Schedule schedule;
  schedule::SimResult simulated;
};

PlanResult plan_step(const PlanConfig& cfg);

// DeepSeek-V3's own run ([P] §3.1-3.2, §4.2): deepseek-v3 on 2048 H800, PP16 x
// EP64 x ZeRO-1 DP128, DualPipe, 15360 sequences of 4096 tokens, 14.8T tokens.
PlanConfig deepseek_v3_paper_layout();

// Sequences per step of DeepSeek-V3's paper layout and the derived figures it
// is validated against ([P] Table 1; shared/reference/deepseek-v3.md §8).
inline constexpr double kPaperGpuHoursPerTrillion = 180e3;
inline constexpr double kPaperTokensPerSecPerGpu = 1e12 / (180e3 * 3600.0);  // 1543.2

}  // namespace moelab::sim
