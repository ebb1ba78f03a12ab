// moelab plan: price a DeepSeek-V3-class training run on a cluster you do not
// have (src/sim; DeepSeek-V3 §3.1-3.2, Table 1). One layout prints the step
// time and its breakdown, tokens/s per GPU, MFU, days, GPU-hours (and cost)
// for the token budget and memory per GPU with a fits / does-not-fit verdict;
// --sweep prices every point of a cartesian product and ranks the feasible
// layouts. Results: /runs/<plan|sweep>/plan/... and schedule/events
// (results/README.md, "plan").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "model/config.hpp"
#include "model/cost.hpp"
#include "parallel/schedule/events_h5.hpp"
#include "parallel/schedule/generators.hpp"
#include "sim/planner.hpp"

namespace moelab {

namespace {

using sim::PlanConfig;
using sim::PlanResult;

// "14.8T", "500B", "1e12", "2M": a token count.
double parse_tokens(const std::string& text) {
  MOE_CHECK(!text.empty()) << "--tokens: expected a count such as 14.8T";
  double scale = 1.0;
  std::string num = text;
  switch (text.back()) {
    case 'T': case 't': scale = 1e12; num.pop_back(); break;
    case 'B': case 'b': case 'G': case 'g': scale = 1e9; num.pop_back(); break;
    case 'M': case 'm': scale = 1e6; num.pop_back(); break;
    case 'K': case 'k': scale = 1e3; num.pop_back(); break;
    default: break;
  }
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(num, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MOE_CHECK(used == num.size() && used > 0 && v > 0) << "--tokens '" << text << "': expected a positive count such as 14.8T, 500B or 1e12";
  return v * scale;
}

// `--sweep pp=8,16 ep=32,64` (the form) becomes `--sweep pp:8,16 --sweep ep:32,64`.
std::vector<std::string> normalise_sweep_args(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--sweep") {
      out.push_back(args[i]);
      continue;
    }
    size_t j = i + 1;
    for (; j < args.size() && args[j].rfind("--", 0) != 0; ++j) {
      std::string item = args[j];
      const auto eq = item.find('=');
      if (eq != std::string::npos && item.find(':') == std::string::npos) item[eq] = ':';
      out.push_back("--sweep");
      out.push_back(item);
    }
    if (j == i + 1) out.push_back("--sweep");  // let the parser say what is missing
    i = j - 1;
  }
  return out;
}

void declare(CommandOptions& opts) {
  opts.add()("model", po::value<std::string>()->default_value("deepseek-v3"),
             "model preset (deepseek-v3, v3-small, ...) or a Hugging Face config.json")  //
      ("hardware", po::value<std::string>()->default_value("h800"),
       "hardware catalog entry (h800, h100, h200, a100, b200, cpu-local) or an INI file with 'base = NAME' and "
       "overrides (experiments/capacity/hardware/)")  //
      ("gpus", po::value<int64_t>()->default_value(2048), "GPUs in the job")  //
      ("pp", po::value<int64_t>()->default_value(16),
       "pipeline-parallel ranks (Megatron pipeline_model_parallel_size); DualPipeV runs 2 stages per rank")  //
      ("ep", po::value<int64_t>()->default_value(64),
       "expert-parallel degree inside a pipeline rank's GPUs (Megatron expert_model_parallel_size)")  //
      ("schedule", po::value<std::string>()->default_value("dualpipe"),
       "pipeline schedule: 1f1b, zb1p, dualpipe, dualpipev (gpipe, interleaved_1f1b also run)")  //
      ("seq-len", po::value<int64_t>()->default_value(4096), "sequence length (tokens)")  //
      ("global-batch", po::value<int64_t>()->default_value(15360), "sequences per optimizer step")  //
      ("micro-batch", po::value<int64_t>()->default_value(1), "sequences per micro-batch per GPU")  //
      ("tokens", po::value<std::string>()->default_value("14.8T"), "training token budget (14.8T, 500B, 1e12)")  //
      ("price-per-gpu-hour", po::value<double>()->default_value(0.0),
       "$ per GPU-hour for the cost line (DeepSeek-V3 Table 1 uses 2); 0: no cost")  //
      ("comm-sms", po::value<int64_t>()->default_value(-1),
       "SMs reserved for EP communication while overlapped with compute (DeepEP Buffer.num_sms); -1: DeepSeek-V3's "
       "20 of 132, scaled to the hardware's SM count")  //
      ("expert-imbalance", po::value<double>()->default_value(1.0),
       "busiest EP GPU's routed-expert work over the mean (1: balanced, as the bias-based balancing aims)")  //
      ("mtp", po::value<int>()->default_value(1), "1: train the MTP module(s) (DeepSeek-V3 D=1); 0: without")  //
      ("recompute", po::value<int>()->default_value(1),
       "1: recompute RMSNorm and MLA up-projections in backward (DeepSeek-V3 §3.2.3); 0: no recomputation")  //
      ("seed", po::value<uint64_t>()->default_value(1), "seed of the routing Monte Carlo")  //
      ("routing-trace", po::value<std::string>()->value_name("F.h5[:DATASET]"),
       "price the expert imbalance measured by a moelab run: load/expert_tokens [steps, layers, experts] "
       "(default: the first run that has it); replaces --expert-imbalance")  //
      ("calibration", po::value<std::string>()->default_value("kernels"),
       "kernels: isolated-kernel figures (DeepGEMM, FlashMLA, profile-data attention); profile-data: GEMM and "
       "memory-bound efficiencies scaled to deepseek-ai/profile-data's in-situ H800 training trace")  //
      ("ops", po::bool_switch(),
       "also print the itemised op times of one MoE layer (forward, backward, weight gradient) on the SMs left "
       "to compute, against deepseek-ai/profile-data's measured ~31 ms of compute per MoE layer pair")  //
      ("list-hardware", po::bool_switch(), "print the hardware catalog with every figure's source and exit")  //
      ("out", po::value<std::string>()->value_name("F.h5"), "results file to write (optional)")  //
      ("force", po::bool_switch(), "overwrite --out if it exists");
}

// load/expert_tokens of a moelab run -> the imbalance of the plan's EP layout.
sim::TraceImbalance read_routing_trace(const std::string& spec, const PlanConfig& c) {
  std::string path = spec, dataset;
  const auto colon = spec.find(".h5:");
  if (colon != std::string::npos) {
    path = spec.substr(0, colon + 3);
    dataset = spec.substr(colon + 4);
  }
  h5::File file = h5::File::open_read(path);
  if (dataset.empty()) {
    MOE_CHECK(file.has("runs")) << "--routing-trace " << path << ": no /runs group";
    for (const auto& run : file.open_group("runs").children())
      if (file.has("runs/" + run + "/load/expert_tokens")) {
        dataset = "runs/" + run + "/load/expert_tokens";
        break;
      }
    MOE_CHECK(!dataset.empty()) << "--routing-trace " << path << ": no run has load/expert_tokens";
  }
  MOE_CHECK(file.has(dataset)) << "--routing-trace " << path << ": no dataset '" << dataset << "'";
  const Tensor<double> loads = file.read<double>(dataset);
  MOE_CHECK(loads.rank() >= 2) << "--routing-trace " << path << ":" << dataset
                               << ": expected [steps, experts] or [steps, layers, experts], got "
                               << shape_str(loads.shape);
  const int64_t experts = loads.dim(-1);
  return sim::ep_imbalance_from_loads(loads.ptr(), loads.numel() / experts, experts, c.model.n_routed_experts, c.ep);
}

PlanConfig config_from(const CommandOptions& opts) {
  PlanConfig c;
  c.model = load_model_config(opts.get<std::string>("model"));
  c.hardware = sim::load_hardware(opts.get<std::string>("hardware"));
  c.gpus = opts.get<int64_t>("gpus");
  c.pp = opts.get<int64_t>("pp");
  c.ep = opts.get<int64_t>("ep");
  c.schedule = opts.get<std::string>("schedule");
  c.seq_len = opts.get<int64_t>("seq-len");
  c.global_batch = opts.get<int64_t>("global-batch");
  c.micro_batch = opts.get<int64_t>("micro-batch");
  c.tokens = parse_tokens(opts.get<std::string>("tokens"));
  c.price_per_gpu_hour = opts.get<double>("price-per-gpu-hour");
  MOE_CHECK(c.price_per_gpu_hour >= 0) << "--price-per-gpu-hour must be >= 0";
  c.comm_sms = opts.get<int64_t>("comm-sms");
  c.expert_imbalance = opts.get<double>("expert-imbalance");
  c.mtp = opts.get<int>("mtp") != 0;
  c.recompute = opts.get<int>("recompute") != 0;
  c.seed = opts.get<uint64_t>("seed");
  c.calibration = opts.get<std::string>("calibration");
  if (opts.has("routing-trace")) {
    MOE_CHECK(!opts.given("expert-imbalance")) << "give --routing-trace or --expert-imbalance, not both";
    const sim::TraceImbalance t = read_routing_trace(opts.get<std::string>("routing-trace"), c);
    c.expert_imbalance = std::max(1.0, t.mean_ratio);
  }
  return c;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string human_hours(double h) {
  if (h >= 1e6) return fmt("%.3fM", h / 1e6);
  if (h >= 1e3) return fmt("%.1fK", h / 1e3);
  return fmt("%.1f", h);
}

void print_plan(std::ostream& os, const PlanResult& r, double wall_ms) {
  const PlanConfig& c = r.config;
  auto pct = [&](double s) { return fmt("%5.1f%%", 100.0 * s / r.step_time_s); };
  os << "moelab plan: " << c.model.name << " on " << c.gpus << " x " << c.hardware.name << " (PP" << c.pp << " x EP"
     << c.ep << ", DP " << r.dp << ", " << c.schedule << ", " << r.num_stages << " stages, " << r.microbatches
     << " micro-batches of " << c.tokens_per_microbatch() << " tokens)\n";
  const auto& d = r.chunk.durations;
  os << "  chunk (one stage, one micro-batch): F " << fmt("%.2f", d.f_s * 1e3) << " ms, B " << fmt("%.2f", d.b_s * 1e3)
     << " ms (W " << fmt("%.2f", d.w_s * 1e3) << "), F&B " << fmt("%.2f", d.fb_s * 1e3) << " ms, PP p2p "
     << fmt("%.3f", d.p2p_s * 1e3) << " ms\n";
  os << "    compute F/B/W " << fmt("%.2f", r.chunk.compute_f_s * 1e3) << " / " << fmt("%.2f", r.chunk.compute_b_s * 1e3)
     << " / " << fmt("%.2f", r.chunk.compute_w_s * 1e3) << " ms; EP all-to-all per MoE layer: dispatch "
     << fmt("%.3f", r.chunk.a2a_dispatch_layer_s * 1e3) << " ms, combine "
     << fmt("%.3f", r.chunk.a2a_combine_layer_s * 1e3) << " ms\n";
  if (c.ep > 1 && c.model.n_routed_experts > 0)
    os << "  routing (node-limited, M=" << c.model.topk_group << "): " << fmt("%.2f", r.routing.nodes_per_token)
       << " nodes/token of " << r.routing.ep_nodes << " (own node " << fmt("%.2f", r.routing.own_node_prob)
       << "), " << fmt("%.2f", r.routing.gpus_per_token) << " GPUs/token, "
       << fmt("%.2f", r.routing.nvlink_copies_per_token) << " NVLink copies/token\n";
  if (c.expert_imbalance > 1.0)
    os << "  routed-expert work of the busiest EP GPU: x" << fmt("%.3f", c.expert_imbalance) << " the mean\n";
  os << "  step time        " << fmt("%9.3f", r.step_time_s) << " s\n";
  os << "    compute        " << fmt("%9.3f", r.compute_s) << " s " << pct(r.compute_s) << "\n";
  os << "    exposed EP comm" << fmt("%9.3f", r.exposed_comm_s) << " s " << pct(r.exposed_comm_s) << "\n";
  os << "    PP bubble      " << fmt("%9.3f", r.bubble_s) << " s " << pct(r.bubble_s) << "\n";
  os << "    DP sync        " << fmt("%9.3f", r.dp_sync_s) << " s " << pct(r.dp_sync_s) << "\n";
  os << "    optimizer      " << fmt("%9.3f", r.optimizer_s) << " s " << pct(r.optimizer_s) << "\n";
  os << "  tokens/s per GPU " << fmt("%9.1f", r.tokens_per_s_per_gpu) << "\n";
  os << "  MFU              " << fmt("%8.1f%%", 100.0 * r.mfu) << " (" << fmt("%.4g", r.model_flops_per_token / 1e9)
     << " GFLOP/token against " << fmt("%.4g", c.hardware.peak_bf16_tflops.value) << " TFLOP/s dense BF16)\n";
  os << "  budget " << fmt("%.4g", c.tokens / 1e12) << "T tokens: " << fmt("%.1f", r.days) << " days on " << c.gpus
     << " GPUs, " << human_hours(r.gpu_hours) << " GPU-hours (" << human_hours(r.gpu_hours_per_trillion)
     << " per trillion tokens)";
  if (c.price_per_gpu_hour > 0) os << ", $" << fmt("%.3f", r.cost_usd / 1e6) << "M at $" << c.price_per_gpu_hour << "/GPU-hour";
  os << "\n";
  const auto& m = r.memory;
  os << "  memory per GPU (fullest rank " << m.worst_rank << ", " << fmt("%.2f", m.params / 1e9) << "B params): weights "
     << fmt("%.1f", m.weights_gb) << " + grads " << fmt("%.1f", m.grads_gb) << " + optimizer "
     << fmt("%.1f", m.optimizer_gb) << " + activations " << fmt("%.1f", m.activations_gb) << " (" << m.peak_inflight
     << " in flight) + comm buffers " << fmt("%.1f", m.comm_buffers_gb) << " = " << fmt("%.1f", m.total_gb())
     << " GB of " << fmt("%.0f", m.capacity_gb) << " GB: "
     << (m.fits() ? "fits" : "DOES NOT FIT") << "\n";
  os << "  (simulated in " << fmt("%.1f", wall_ms) << " ms)\n";
}

// One MoE layer, op by op, priced as the planner prices it (kernel-level
// check against deepseek-ai/profile-data train.json: 124.3 ms of compute
// kernels for 4 overlapped layer pairs on H800, 20 SMs left to DeepEP).
void print_ops(std::ostream& os, const PlanConfig& c) {
  const sim::Calibration cal = sim::make_calibration(c.hardware, c.calibration);
  cost::WorkOptions wopt;
  wopt.tokens = c.tokens_per_microbatch();
  wopt.seq_len = c.seq_len;
  wopt.recompute_norm_and_mla_up = c.recompute;
  const int64_t layer = c.model.first_k_dense_replace;
  const auto work = cost::decoder_layer_work(c.model, layer, wopt);
  const double rows_per_group = static_cast<double>(wopt.tokens) * c.model.num_experts_per_tok * c.ep /
                                std::max<double>(1.0, static_cast<double>(c.model.n_routed_experts));
  const double sm = (c.hardware.num_sms.value - static_cast<double>(c.resolved_comm_sms())) / c.hardware.num_sms.value;
  char line[256];
  std::snprintf(line, sizeof line, "  %-28s %-12s %5s %10s %10s %10s %10s\n", "op (layer 3, one GPU)", "class", "prec",
                "fwd_ms", "bwd_ms", "wgrad_ms", "TFLOP/s");
  os << line;
  double tf = 0, tb = 0, tw = 0;
  for (const auto& op0 : work.ops) {
    const cost::OpWork op = cost::expert_parallel_share(op0, c.ep);
    const sim::PassTimes t = sim::op_time(op, c.hardware, cal, rows_per_group, sm);
    const double flops = op.fwd_flops + op.dgrad_flops + op.wgrad_flops + op.recompute_flops;
    const double secs = t.fwd_s + t.dgrad_s + t.recompute_s + t.wgrad_s;
    std::snprintf(line, sizeof line, "  %-28s %-12s %5s %10.3f %10.3f %10.3f %10.1f\n", op.name.c_str(),
                  cost::op_class_name(op.op_class), op.precision == cost::Precision::fp8 ? "fp8" : "bf16",
                  t.fwd_s * 1e3, (t.dgrad_s + t.recompute_s) * 1e3, t.wgrad_s * 1e3,
                  secs > 0 ? flops / secs / 1e12 : 0.0);
    os << line;
    tf += t.fwd_s;
    tb += t.dgrad_s + t.recompute_s;
    tw += t.wgrad_s;
  }
  std::snprintf(line, sizeof line,
                "  MoE layer on %.0f of %.0f SMs: F %.2f + B %.2f + W %.2f = %.2f ms of compute per layer pair "
                "(profile-data, H800: 124.3 ms / 4 = 31.1 ms)\n",
                c.hardware.num_sms.value - static_cast<double>(c.resolved_comm_sms()), c.hardware.num_sms.value, tf * 1e3,
                tb * 1e3, tw * 1e3, (tf + tb + tw) * 1e3);
  os << line;
}

void write_hardware(h5::Group&& g, const sim::Hardware& hw) {
  g.set_attr("name", hw.name);
  g.set_attr("description", hw.description);
  for (const auto& [key, value, source] : hw.figures()) {
    g.set_attr(key, value);
    g.set_attr(key + "_source", source);
  }
}

void write_calibration(h5::Group&& g, const sim::Calibration& cal) {
  for (const auto* curve : {&cal.dense_gemm, &cal.grouped_gemm}) {
    h5::Group cg = g.group(curve->name);
    cg.set_attr("source", curve->source);
    std::vector<double> x, e;
    for (const auto& p : curve->points) {
      x.push_back(p.log2_work);
      e.push_back(p.efficiency);
    }
    cg.write<double>("log2_work", {static_cast<int64_t>(x.size())}, x.data());
    cg.write<double>("efficiency", {static_cast<int64_t>(e.size())}, e.data());
  }
  g.set_attr("attention_fwd_efficiency", cal.attention_fwd_eff);
  g.set_attr("attention_bwd_efficiency", cal.attention_bwd_eff);
  g.set_attr("attention_source", cal.attention_source);
  g.set_attr("memory_efficiency", cal.memory_eff);
  g.set_attr("memory_source", cal.memory_source);
  g.set_attr("transfer_note", cal.transfer_note);
}

void write_plan(h5::Group&& g, const PlanResult& r) {
  g.set_attr("step_time_s", r.step_time_s);
  g.set_attr("compute_s", r.compute_s);
  g.set_attr("exposed_comm_s", r.exposed_comm_s);
  g.set_attr("bubble_s", r.bubble_s);
  g.set_attr("dp_sync_s", r.dp_sync_s);
  g.set_attr("optimizer_s", r.optimizer_s);
  g.set_attr("tokens_per_step", r.tokens_per_step);
  g.set_attr("tokens_per_s_per_gpu", r.tokens_per_s_per_gpu);
  g.set_attr("model_flops_per_token", r.model_flops_per_token);
  g.set_attr("mfu", r.mfu);
  g.set_attr("days", r.days);
  g.set_attr("gpu_hours", r.gpu_hours);
  g.set_attr("gpu_hours_per_trillion_tokens", r.gpu_hours_per_trillion);
  g.set_attr("cost_usd", r.cost_usd);
  g.set_attr("num_stages", r.num_stages);
  g.set_attr("microbatches", r.microbatches);
  g.set_attr("dp", r.dp);
  g.set_attr("expert_imbalance", r.config.expert_imbalance);
  g.set_attr("comm_sms", r.config.resolved_comm_sms());
  g.set_attr("slowest_stage", r.slowest_stage);
  g.set_attr("calibration", r.config.calibration);
  g.set_attr("paper_gpu_hours_per_trillion_tokens", sim::kPaperGpuHoursPerTrillion);
  g.set_attr("paper_tokens_per_s_per_gpu", sim::kPaperTokensPerSecPerGpu);
  h5::Group ch = g.group("chunk");
  ch.set_attr("f_s", r.chunk.durations.f_s);
  ch.set_attr("b_s", r.chunk.durations.b_s);
  ch.set_attr("w_s", r.chunk.durations.w_s);
  ch.set_attr("fb_s", r.chunk.durations.fb_s);
  ch.set_attr("p2p_s", r.chunk.durations.p2p_s);
  ch.set_attr("compute_f_s", r.chunk.compute_f_s);
  ch.set_attr("compute_b_s", r.chunk.compute_b_s);
  ch.set_attr("compute_w_s", r.chunk.compute_w_s);
  ch.set_attr("a2a_f_s", r.chunk.a2a_f_s);
  ch.set_attr("a2a_b_s", r.chunk.a2a_b_s);
  ch.set_attr("a2a_dispatch_layer_s", r.chunk.a2a_dispatch_layer_s);
  ch.set_attr("a2a_combine_layer_s", r.chunk.a2a_combine_layer_s);
  h5::Group rt = g.group("routing");
  rt.set_attr("nodes_per_token", r.routing.nodes_per_token);
  rt.set_attr("own_node_prob", r.routing.own_node_prob);
  rt.set_attr("remote_nodes_per_token", r.routing.remote_nodes_per_token);
  rt.set_attr("gpus_per_token", r.routing.gpus_per_token);
  rt.set_attr("nvlink_copies_per_token", r.routing.nvlink_copies_per_token);
  rt.set_attr("ep_nodes", r.routing.ep_nodes);
  h5::Group mem = g.group("memory");
  mem.set_attr("worst_rank", static_cast<int64_t>(r.memory.worst_rank));
  mem.set_attr("params", r.memory.params);
  mem.set_attr("weights_gb", r.memory.weights_gb);
  mem.set_attr("grads_gb", r.memory.grads_gb);
  mem.set_attr("optimizer_gb", r.memory.optimizer_gb);
  mem.set_attr("activations_gb", r.memory.activations_gb);
  mem.set_attr("comm_buffers_gb", r.memory.comm_buffers_gb);
  mem.set_attr("total_gb", r.memory.total_gb());
  mem.set_attr("capacity_gb", r.memory.capacity_gb);
  mem.set_attr("peak_inflight", r.memory.peak_inflight);
  mem.set_attr("fits", static_cast<int64_t>(r.memory.fits()));
  write_hardware(g.group("hardware"), r.config.hardware);
  write_calibration(g.group("calibration"), r.calibration);
}

int list_hardware(const CommandContext& ctx) {
  for (const auto& name : sim::hardware_names()) {
    const sim::Hardware hw = sim::hardware_entry(name);
    ctx.print() << hw.name << ": " << hw.description << "\n";
    for (const auto& [key, value, source] : hw.figures())
      ctx.print() << "  " << key << " = " << fmt("%.4g", value) << "    # " << source << "\n";
  }
  return 0;
}

struct SweepRow {
  std::string label;
  PlanConfig config;
  bool feasible = false;
  std::string reason;
  PlanResult result;
};

int run_sweep(CommandOptions& opts, const std::vector<ConfigPairs>& points, const CommandContext& ctx) {
  std::vector<SweepRow> rows;
  Timer timer;
  for (const auto& point : points) {
    opts.apply_point(point, ctx);
    SweepRow row;
    row.label = point_label(point);
    row.config = config_from(opts);
    try {
      row.result = sim::plan_step(row.config);
      row.feasible = row.result.memory.fits();
      if (!row.feasible)
        row.reason = "does not fit: " + fmt("%.1f", row.result.memory.total_gb()) + " GB > " +
                     fmt("%.0f", row.result.memory.capacity_gb) + " GB";
    } catch (const Error& e) {
      row.reason = e.what();
      const auto cut = row.reason.find(" [");
      if (cut != std::string::npos) row.reason = row.reason.substr(0, cut);
    }
    rows.push_back(std::move(row));
  }
  const double wall_s = timer.seconds();
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (rows[a].feasible != rows[b].feasible) return rows[a].feasible;
    if (!rows[a].feasible) return false;
    return rows[a].result.gpu_hours < rows[b].result.gpu_hours;
  });
  char line[512];
  std::snprintf(line, sizeof line, "%4s  %5s %4s %4s %-10s %9s %9s %6s %8s %10s %8s  %s\n", "rank", "gpus", "pp", "ep",
                "schedule", "step_s", "tok/s/gpu", "mfu%", "days", "gpu_hours", "mem_gb", "verdict");
  ctx.print() << line;
  int rank = 0;
  for (size_t i : order) {
    const auto& row = rows[i];
    const auto& c = row.config;
    if (row.feasible || row.result.step_time_s > 0) {
      const auto& r = row.result;
      std::snprintf(line, sizeof line, "%4s  %5lld %4lld %4lld %-10s %9.3f %9.1f %6.1f %8.1f %10s %8.1f  %s\n",
                    row.feasible ? std::to_string(++rank).c_str() : "-", static_cast<long long>(c.gpus),
                    static_cast<long long>(c.pp), static_cast<long long>(c.ep), c.schedule.c_str(), r.step_time_s,
                    r.tokens_per_s_per_gpu, 100.0 * r.mfu, r.days, human_hours(r.gpu_hours).c_str(),
                    r.memory.total_gb(), row.feasible ? "fits" : row.reason.c_str());
    } else {
      std::snprintf(line, sizeof line, "%4s  %5lld %4lld %4lld %-10s %9s %9s %6s %8s %10s %8s  %s\n", "-",
                    static_cast<long long>(c.gpus), static_cast<long long>(c.pp), static_cast<long long>(c.ep),
                    c.schedule.c_str(), "-", "-", "-", "-", "-", "-", ("infeasible: " + row.reason).c_str());
    }
    ctx.print() << line;
  }
  ctx.print() << rows.size() << " layouts priced in " << fmt("%.3f", wall_s) << " s; " << rank << " feasible\n";

  if (ctx.is_root() && opts.has("out")) {
    auto results = ResultsFile::create(opts.get<std::string>("out"), opts.get<bool>("force"), ctx.command_line,
                                       ctx.world_size);
    ResultsRun run = results->new_run("sweep", opts.resolved());
    h5::Group g = run.group().group("plan");
    const int64_t n = static_cast<int64_t>(rows.size());
    std::vector<int64_t> gpus(n), pp(n), ep(n), sched(n), feasible(n), rank_col(n, 0);
    std::vector<double> step(n), tps(n), mfu(n), days(n), gh(n), mem(n);
    std::vector<std::string> names = schedule::schedule_kinds();
    int rk = 0;
    for (size_t i : order)
      if (rows[i].feasible) rank_col[i] = ++rk;
    for (int64_t i = 0; i < n; ++i) {
      const auto& row = rows[i];
      gpus[i] = row.config.gpus;
      pp[i] = row.config.pp;
      ep[i] = row.config.ep;
      sched[i] = std::find(names.begin(), names.end(), row.config.schedule) - names.begin();
      feasible[i] = row.feasible;
      const bool priced = row.result.step_time_s > 0;
      step[i] = priced ? row.result.step_time_s : NAN;
      tps[i] = priced ? row.result.tokens_per_s_per_gpu : NAN;
      mfu[i] = priced ? row.result.mfu : NAN;
      days[i] = priced ? row.result.days : NAN;
      gh[i] = priced ? row.result.gpu_hours : NAN;
      mem[i] = priced ? row.result.memory.total_gb() : NAN;
    }
    g.write<int64_t>("gpus", {n}, gpus.data());
    g.write<int64_t>("pp", {n}, pp.data());
    g.write<int64_t>("ep", {n}, ep.data());
    g.write<int64_t>("schedule", {n}, sched.data());
    g.write<int64_t>("feasible", {n}, feasible.data());
    g.write<int64_t>("rank", {n}, rank_col.data());
    g.write<double>("step_time_s", {n}, step.data());
    g.write<double>("tokens_per_s_per_gpu", {n}, tps.data());
    g.write<double>("mfu", {n}, mfu.data());
    g.write<double>("days", {n}, days.data());
    g.write<double>("gpu_hours", {n}, gh.data());
    g.write<double>("memory_gb", {n}, mem.data());
    std::string joined;
    for (size_t i = 0; i < names.size(); ++i) joined += (i ? "," : "") + std::to_string(i) + "=" + names[i];
    g.set_attr("schedule_names", joined);
    std::string reasons;
    for (const auto& row : rows) reasons += row.label + ": " + (row.feasible ? "fits" : row.reason) + "\n";
    g.set_attr("verdicts", reasons);
    g.set_attr("sweep_wall_s", wall_s);
    if (!rows.empty()) write_hardware(g.group("hardware"), rows.front().config.hardware);
    run.complete();
    ctx.print() << "wrote " << results->path() << "\n";
  }
  return 0;
}

}  // namespace

int cmd_plan(const std::vector<std::string>& raw_args, const CommandContext& ctx) {
  CommandOptions opts(
      "plan",
      "[--model deepseek-v3] [--hardware h800] [--gpus 2048] [--pp 16] [--ep 64] [--schedule dualpipe]\n"
      "       [--seq-len 4096] [--global-batch 15360] [--tokens 14.8T] [--price-per-gpu-hour X] [--out F.h5]\n"
      "       [--sweep pp=8,16 ep=32,64,128 gpus=1024,2048,4096 schedule=1f1b,zb1p,dualpipe]",
      "Price one training step of a DeepSeek-V3-class model on a modelled cluster (src/sim): the work\n"
      "model of every layer priced with efficiency curves calibrated from published kernel measurements\n"
      "(DeepGEMM, DeepEP, FlashMLA, profile-data), node-limited EP all-to-all on a two-level network,\n"
      "the pipeline schedule run by the event simulator, ZeRO-1 DP sync, and memory per GPU.\n"
      "Prints step time and breakdown, tokens/s per GPU, MFU, days, GPU-hours (and cost) for --tokens,\n"
      "and a fits / DOES NOT FIT verdict. --sweep ranks the feasible layouts of a cartesian product.\n"
      "Results (--out): /runs/<plan|sweep>/plan/... and /runs/plan/schedule/events.");
  declare(opts);
  const std::vector<std::string> args = normalise_sweep_args(raw_args);
  if (!opts.parse(args, ctx)) return 0;
  if (opts.get<bool>("list-hardware")) return list_hardware(ctx);
  const std::vector<ConfigPairs> points = opts.sweep_points();
  if (points.size() > 1 || !points.front().empty()) return run_sweep(opts, points, ctx);

  PlanConfig c = config_from(opts);
  c.keep_events = opts.has("out");
  Timer timer;
  const PlanResult r = sim::plan_step(c);
  const double wall_ms = timer.seconds() * 1e3;
  print_plan(ctx.print(), r, wall_ms);
  if (opts.get<bool>("ops")) print_ops(ctx.print(), c);
  if (ctx.is_root() && opts.has("out")) {
    auto results = ResultsFile::create(opts.get<std::string>("out"), opts.get<bool>("force"), ctx.command_line,
                                       ctx.world_size);
    ResultsRun run = results->new_run("plan", opts.resolved());
    write_plan(run.group().group("plan"), r);
    schedule::write_schedule_group(run.group(), r.schedule, r.simulated, "simulated");
    run.complete();
    ctx.print() << "wrote " << results->path() << "\n";
  }
  return 0;
}

}  // namespace moelab
