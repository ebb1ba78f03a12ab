// The capacity planner; see planner.hpp for the steps.
#include "sim/planner.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.hpp"
#include "model/cost.hpp"
#include "model/weights.hpp"
#include "parallel/schedule/generators.hpp"
#include "sim/network.hpp"

namespace moelab::sim {

namespace {

bool is_dualpipe_family(const std::string& s) { return s == "dualpipe" || s == "dualpipev"; }

int64_t num_stages_of(const PlanConfig& c) { return c.schedule == "dualpipev" ? 2 * c.pp : c.pp; }

// Routing statistics are a pure function of (model routing, ep, node size,
// seed, sample): memoised so a sweep draws each once.
RoutingStats cached_routing_stats(const ModelConfig& m, int64_t ep, int64_t gpus_per_node, uint64_t seed,
                                  int64_t tokens) {
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, uint64_t, int64_t>;
  static std::map<Key, RoutingStats> cache;
  static std::mutex mu;
  const Key key{m.n_routed_experts, m.num_experts_per_tok, m.n_group, m.topk_group, ep, gpus_per_node, seed, tokens};
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  RoutingStats st = node_limited_routing_stats(m, ep, gpus_per_node, seed, tokens);
  std::lock_guard<std::mutex> lock(mu);
  cache.emplace(key, st);
  return st;
}

// Parameters of each piece of the model in stage order: [0] embedding,
// [1..L] decoder layers then MTP modules, [L+1] final norm + head.
struct PieceParams {
  double non_expert = 0, expert = 0;  // expert: routed experts (all of them)
  double act_bytes_per_token = 0;
};

std::vector<PieceParams> piece_params(const ModelConfig& m, bool mtp) {
  const int64_t L = m.num_hidden_layers + (mtp ? m.num_nextn_predict_layers : 0);
  std::vector<PieceParams> pieces(L + 2);
  for (const auto& w : model_weights(m, mtp)) {
    const double n = static_cast<double>(shape_numel(w.shape));
    size_t idx = 0;
    if (w.layer >= 0) {
      idx = static_cast<size_t>(w.layer) + 1;
    } else if (w.component == Component::embedding) {
      idx = 0;
    } else {
      idx = static_cast<size_t>(L) + 1;  // final norm, head
    }
    const bool routed = w.name.find(".mlp.experts.") != std::string::npos;
    (routed ? pieces[idx].expert : pieces[idx].non_expert) += n;
  }
  pieces[0].act_bytes_per_token = cost::activation_bytes_per_token(m, cost::LayerKind::embedding);
  for (int64_t l = 0; l < L; ++l) {
    const cost::LayerKind kind = l >= m.num_hidden_layers ? cost::LayerKind::mtp
                                 : m.is_moe_layer(l)       ? cost::LayerKind::moe
                                                           : cost::LayerKind::dense;
    pieces[l + 1].act_bytes_per_token = cost::activation_bytes_per_token(m, kind);
  }
  pieces[L + 1].act_bytes_per_token = cost::activation_bytes_per_token(m, cost::LayerKind::head);
  return pieces;
}

// Contiguous partition of the pieces (embedding, layers, MTP, head) into S
// non-empty stages minimising the slowest stage's cost (a planner balances
// its stages; DP over split points). Returns [S] (first piece, one past last).
std::vector<std::pair<int64_t, int64_t>> balanced_stages(const std::vector<double>& cost, int64_t S) {
  const int64_t n = static_cast<int64_t>(cost.size());
  MOE_CHECK(S >= 1 && S <= n) << S << " pipeline stages for " << n << " model pieces";
  std::vector<double> prefix(n + 1, 0.0);
  for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + cost[i];
  const double inf = 1e300;
  // best[s][i]: minimal max-stage cost of the first i pieces in s stages.
  std::vector<std::vector<double>> best(S + 1, std::vector<double>(n + 1, inf));
  std::vector<std::vector<int64_t>> cut(S + 1, std::vector<int64_t>(n + 1, 0));
  best[0][0] = 0;
  for (int64_t st = 1; st <= S; ++st)
    for (int64_t i = st; i <= n - (S - st); ++i)
      for (int64_t j = st - 1; j < i; ++j) {
        const double v = std::max(best[st - 1][j], prefix[i] - prefix[j]);
        if (v < best[st][i]) {
          best[st][i] = v;
          cut[st][i] = j;
        }
      }
  std::vector<std::pair<int64_t, int64_t>> ranges(S);
  int64_t end = n;
  for (int64_t st = S; st >= 1; --st) {
    ranges[st - 1] = {cut[st][end], end};
    end = cut[st][end];
  }
  return ranges;
}

}  // namespace

void PlanConfig::validate() const {
  MOE_CHECK(gpus > 0 && pp > 0 && ep > 0) << "--gpus, --pp and --ep must be positive";
  MOE_CHECK(gpus % pp == 0) << "--gpus (" << gpus << ") not divisible by --pp (" << pp << ")";
  MOE_CHECK(dp() % ep == 0) << "--ep (" << ep << ") does not divide the GPUs of one pipeline rank (" << dp()
                            << " = gpus/pp)";
  MOE_CHECK(model.n_routed_experts == 0 || model.n_routed_experts % ep == 0)
      << "--ep (" << ep << ") does not divide the routed experts (" << model.n_routed_experts << ")";
  MOE_CHECK(seq_len > 0 && micro_batch > 0 && global_batch > 0) << "--seq-len, --micro-batch, --global-batch must be positive";
  MOE_CHECK(global_batch % (dp() * micro_batch) == 0)
      << "--global-batch (" << global_batch << ") not divisible by DP (" << dp() << ") x --micro-batch ("
      << micro_batch << ")";
  MOE_CHECK(tokens > 0) << "--tokens must be positive";
  MOE_CHECK(resolved_comm_sms() >= 0 && resolved_comm_sms() < hardware.num_sms.value)
      << "--comm-sms (" << comm_sms << ") must be in [0, " << hardware.num_sms.value << ") or -1";
  MOE_CHECK(expert_imbalance >= 1.0) << "--expert-imbalance (" << expert_imbalance << ") must be >= 1";
  const int64_t layers = model.num_hidden_layers + (mtp ? model.num_nextn_predict_layers : 0);
  MOE_CHECK(num_stages_of(*this) <= layers)
      << "--pp (" << pp << "): " << num_stages_of(*this) << " stages for " << layers << " layers";
  const auto hw_ranks = static_cast<int64_t>(hardware.gpus_per_node.value);
  MOE_CHECK(hw_ranks > 0) << "hardware " << hardware.name << ": gpus_per_node must be positive";
}

PlanResult plan_step(const PlanConfig& c) {
  c.validate();
  const ModelConfig& m = c.model;
  const Hardware& hw = c.hardware;
  PlanResult r;
  r.config = c;
  r.dp = c.dp();
  r.microbatches = c.microbatches();
  r.num_stages = num_stages_of(c);
  r.calibration = make_calibration(hw, c.calibration);
  const int64_t S = r.num_stages;
  const int64_t T = c.tokens_per_microbatch();
  const Topology topo = Topology::from_hardware(hw, c.gpus);

  // ---- 1. compute of one micro-batch through the whole model ---------------
  cost::WorkOptions wopt;
  wopt.tokens = T;
  wopt.seq_len = c.seq_len;
  wopt.recompute_norm_and_mla_up = c.recompute;
  const double rows_per_group =
      m.n_routed_experts > 0
          ? static_cast<double>(T) * m.num_experts_per_tok * c.ep / static_cast<double>(m.n_routed_experts)
          : 0.0;
  // Pieces in stage order: [0] embedding, [1..L] decoder layers then MTP, [L+1] head.
  const auto pieces = piece_params(m, c.mtp);
  const int64_t L = static_cast<int64_t>(pieces.size()) - 2;
  std::vector<double> piece_f(L + 2, 0.0), piece_b(L + 2, 0.0), piece_w(L + 2, 0.0);
  std::vector<char> piece_moe(L + 2, 0);
  const auto work = cost::model_work(m, wopt, c.mtp);  // embedding, decoder layers, head, MTP
  for (size_t i = 0; i < work.size(); ++i) {
    const int64_t nl = m.num_hidden_layers;
    const int64_t idx = static_cast<int64_t>(i) <= nl ? static_cast<int64_t>(i)
                        : static_cast<int64_t>(i) == nl + 1 ? L + 1
                                                            : static_cast<int64_t>(i) - 1;
    for (const auto& op0 : work[i].ops) {
      const cost::OpWork op = cost::expert_parallel_share(op0, c.ep);
      const PassTimes t = op_time(op, hw, r.calibration, rows_per_group);
      const double scale = op.expert_parallel ? c.expert_imbalance : 1.0;
      piece_f[idx] += t.fwd_s * scale;
      piece_b[idx] += (t.dgrad_s + t.recompute_s) * scale;
      piece_w[idx] += t.wgrad_s * scale;
      if (op.expert_parallel) piece_moe[idx] = 1;
    }
  }
  int64_t moe_layers = 0;
  for (char is_moe : piece_moe) moe_layers += is_moe;
  ChunkCost& ch = r.chunk;

  // ---- 2. EP all-to-all per MoE layer and PP transfers ---------------------
  const int64_t gpn = static_cast<int64_t>(hw.gpus_per_node.value);
  if (moe_layers > 0 && c.ep > 1) {
    r.routing = cached_routing_stats(m, c.ep, gpn, c.seed, c.routing_tokens);
    const double H = static_cast<double>(m.hidden_size);
    const double dispatch_row = H * (1.0 + 4.0 / 128.0);  // FP8 + one FP32 scale per 128 (DeepEP)
    const double combine_row = 2.0 * H;                    // BF16
    auto a2a = [&](double row_bytes) {
      const A2ABytes b{Bytes(T * r.routing.remote_nodes_per_token * row_bytes),
                       Bytes(T * r.routing.nvlink_copies_per_token * row_bytes)};
      // The EP group is a block of consecutive GPUs; price from its first GPU.
      const Topology ep_topo(c.ep, gpn, topo.scale_up(), topo.scale_out());
      return two_hop_all_to_all_time(ep_topo, 0, b).value;
    };
    ch.a2a_dispatch_layer_s = a2a(dispatch_row);
    ch.a2a_combine_layer_s = a2a(combine_row);
    // Backward: gradients go the other way, FP8 before the down-projection, BF16 combine ([P] §3.3.3).
  } else {
    r.routing.ep = c.ep;
  }
  // Stages balanced on compute + all-to-all; the schedule simulator takes one
  // duration per op kind, so the slowest stage sets the pipeline's pace.
  const double a2a_layer = ch.a2a_dispatch_layer_s + ch.a2a_combine_layer_s;
  std::vector<double> piece_cost(L + 2);
  for (int64_t p = 0; p < L + 2; ++p)
    piece_cost[p] = piece_f[p] + piece_b[p] + piece_w[p] + (piece_moe[p] ? 2.0 * a2a_layer : 0.0);
  const auto ranges = balanced_stages(piece_cost, S);
  double slowest = -1;
  for (int64_t s = 0; s < S; ++s) {
    double f = 0, b = 0, w = 0, a = 0;
    for (int64_t p = ranges[s].first; p < ranges[s].second; ++p) {
      f += piece_f[p];
      b += piece_b[p];
      w += piece_w[p];
      a += piece_moe[p] ? a2a_layer : 0.0;
    }
    if (f + b + w + 2 * a > slowest) {
      slowest = f + b + w + 2 * a;
      ch.compute_f_s = f;
      ch.compute_b_s = b;
      ch.compute_w_s = w;
      ch.a2a_f_s = ch.a2a_b_s = a;
      r.slowest_stage = s;
    }
  }
  const int64_t block = c.dp();  // GPUs of one pipeline rank
  if (c.pp > 1)
    ch.p2p_s = topo.send_time(0, block, Bytes(static_cast<double>(T) * m.hidden_size * 2.0)).value;

  // ---- 3. chunk durations ------------------------------------------------
  schedule::Durations& d = ch.durations;
  d.f_s = ch.compute_f_s + ch.a2a_f_s;
  d.w_s = ch.compute_w_s;
  d.b_s = ch.compute_b_s + ch.compute_w_s + ch.a2a_b_s;
  const double sm_fraction = (hw.num_sms.value - static_cast<double>(c.resolved_comm_sms())) / hw.num_sms.value;
  const double compute_pair = ch.compute_f_s + ch.compute_b_s + ch.compute_w_s;
  d.fb_s = is_dualpipe_family(c.schedule) ? std::max(compute_pair / sm_fraction, ch.a2a_f_s + ch.a2a_b_s)
                                          : d.f_s + d.b_s;
  d.p2p_s = ch.p2p_s;

  // ---- 4. the pipeline step -------------------------------------------------
  const schedule::Schedule sched =
      schedule::make_schedule(c.schedule, static_cast<int>(c.pp), static_cast<int>(r.microbatches));
  schedule::SimResult sim = schedule::simulate(sched, d);
  int crit = 0;
  for (int k = 0; k < static_cast<int>(sim.ranks.size()); ++k)
    if (sim.ranks[k].busy_s > sim.ranks[crit].busy_s) crit = k;
  const auto& rf = sim.ranks[crit];
  using schedule::OpKind;
  auto n_of = [&](OpKind k) { return static_cast<double>(rf.num_ops_of[static_cast<int>(k)]); };
  const double compute_full_b = ch.compute_b_s + ch.compute_w_s;
  r.compute_s = n_of(OpKind::F) * ch.compute_f_s + n_of(OpKind::B) * compute_full_b +
                n_of(OpKind::BInput) * ch.compute_b_s + n_of(OpKind::W) * ch.compute_w_s +
                n_of(OpKind::FB) * compute_pair;
  r.exposed_comm_s = rf.busy_s - r.compute_s;
  r.bubble_s = sim.makespan_s - rf.busy_s;
  if (c.keep_events) {
    r.schedule = sched;
    r.simulated = sim;  // a copy: the figures below still read sim
  }

  // ---- 5. ZeRO-1 DP sync and the optimizer; 6. memory ----------------------
  for (const auto& p : pieces) r.total_params += p.non_expert + p.expert;
  std::vector<PieceParams> stage(S);
  for (int64_t s = 0; s < S; ++s)
    for (int64_t p = ranges[s].first; p < ranges[s].second; ++p) {
      stage[s].non_expert += pieces[p].non_expert;
      stage[s].expert += pieces[p].expert / static_cast<double>(c.ep);
      stage[s].act_bytes_per_token += pieces[p].act_bytes_per_token;
    }
  // Ranks holding each stage (DualPipe: two) -> ZeRO-1 shards over all of their GPUs.
  std::vector<std::vector<int>> stage_ranks(S);
  for (int dir = 0; dir < sched.num_directions; ++dir)
    for (int64_t s = 0; s < S; ++s) {
      auto& v = stage_ranks[s];
      const int rk = sched.stage_rank[dir][s];
      if (std::find(v.begin(), v.end(), rk) == v.end()) v.push_back(rk);
    }
  std::vector<std::vector<int64_t>> rank_stages(c.pp);
  for (int64_t s = 0; s < S; ++s)
    for (int rk : stage_ranks[s]) rank_stages[rk].push_back(s);

  const double mem_Bps = hw.hbm_GBps.value * 1e9 * r.calibration.memory_eff;
  double worst_dp = 0, worst_opt = 0;
  MemoryBreakdown worst;
  const int64_t expert_replicas = block / c.ep;  // EP groups per pipeline rank
  for (int64_t rk = 0; rk < c.pp; ++rk) {
    double ne = 0, ex = 0, ne_shard = 0, ex_shard = 0, act = 0;
    double dp_s = 0;
    for (int64_t s : rank_stages[rk]) {
      const double holders = static_cast<double>(stage_ranks[s].size());
      ne += stage[s].non_expert;
      ex += stage[s].expert;
      ne_shard += stage[s].non_expert / (holders * block);
      ex_shard += stage[s].expert / (holders * expert_replicas);
      act = std::max(act, stage[s].act_bytes_per_token);
      // DP groups: the same GPU slot in every block holding the stage.
      std::vector<int64_t> ne_group, ex_group;
      for (int holder : stage_ranks[s])
        for (int64_t i = 0; i < block; ++i) {
          ne_group.push_back(holder * block + i);
          if (i % c.ep == 0) ex_group.push_back(holder * block + i);
        }
      const double ne_b = stage[s].non_expert, ex_b = stage[s].expert;
      dp_s += topo.ring_reduce_scatter(ne_group, Bytes(ne_b * c.grad_reduce_bytes)).value +
              topo.ring_all_gather(ne_group, Bytes(ne_b * 2.0)).value;
      dp_s += topo.ring_reduce_scatter(ex_group, Bytes(ex_b * c.grad_reduce_bytes)).value +
              topo.ring_all_gather(ex_group, Bytes(ex_b * 2.0)).value;
    }
    // AdamW on the shard: read grad (4), master (4), m, v (2+2); write master, m, v and the BF16 weight.
    const double opt_s = (ne_shard + ex_shard) * 22.0 / mem_Bps;
    worst_dp = std::max(worst_dp, dp_s);
    worst_opt = std::max(worst_opt, opt_s);

    r.params_all_ranks += ne + ex * static_cast<double>(c.ep);
    MemoryBreakdown mb;
    mb.worst_rank = static_cast<int>(rk);
    mb.params = ne + ex;
    mb.weights_gb = 2.0 * (ne + ex) / 1e9;         // BF16 weights
    mb.grads_gb = 4.0 * (ne + ex) / 1e9;           // FP32 gradients ([P] §3.3)
    mb.optimizer_gb = 8.0 * (ne_shard + ex_shard) / 1e9;  // FP32 master + BF16 m, v, ZeRO-1 sharded
    mb.peak_inflight = sim.ranks[rk].peak_activations;
    mb.activations_gb = static_cast<double>(mb.peak_inflight) * act * static_cast<double>(T) / 1e9;
    if (moe_layers > 0) {
      const double rows = static_cast<double>(T) * m.num_experts_per_tok;
      const double H = static_cast<double>(m.hidden_size);
      mb.comm_buffers_gb = (rows * (H * (1.0 + 4.0 / 128.0) + 2.0 * H)) / 1e9 + c.deepep_buffer_gb;
    }
    mb.comm_buffers_gb += 2.0 * 2.0 * static_cast<double>(T) * m.hidden_size / 1e9;  // PP send/recv
    mb.capacity_gb = hw.hbm_gb.value;
    if (rk == 0 || mb.total_gb() > worst.total_gb()) worst = mb;
  }
  r.memory = worst;
  r.dp_sync_s = worst_dp;
  r.optimizer_s = worst_opt;

  // ---- figures -------------------------------------------------------------
  r.step_time_s = sim.makespan_s + r.dp_sync_s + r.optimizer_s;
  r.tokens_per_step = static_cast<double>(c.global_batch) * c.seq_len;
  r.tokens_per_s_per_gpu = r.tokens_per_step / (r.step_time_s * static_cast<double>(c.gpus));
  r.model_flops_per_token = cost::model_flops_per_token(m, c.seq_len, c.mtp);
  r.mfu = r.model_flops_per_token * r.tokens_per_s_per_gpu / (hw.peak_bf16_tflops.value * 1e12);
  const double seconds = c.tokens / (r.tokens_per_s_per_gpu * static_cast<double>(c.gpus));
  r.days = seconds / 86400.0;
  r.gpu_hours = seconds * static_cast<double>(c.gpus) / 3600.0;
  r.gpu_hours_per_trillion = 1e12 / r.tokens_per_s_per_gpu / 3600.0;
  r.cost_usd = r.gpu_hours * c.price_per_gpu_hour;
  return r;
}

PlanConfig deepseek_v3_paper_layout() {
  PlanConfig c;  // the defaults are the paper's layout
  c.model = model_preset("deepseek-v3");
  c.hardware = hardware_entry("h800");
  return c;
}

}  // namespace moelab::sim
