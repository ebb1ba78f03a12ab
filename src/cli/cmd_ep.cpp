// moelab ep: expert-parallel dispatch -> experts -> combine over the MPI
// world, under a routing source, with traffic accounting (DeepSeek-V3
// §2.1.2, §3.2.2; issue 5). Skeleton (STYLE.md habit 12): options ->
// initialize (topology, routing source, expert weights) -> run steps ->
// verify (every token's combined output against a local reference of all
// experts) -> report (comm/ datasets [steps, ranks], nccl-tests tables,
// memcpy bandwidth of the same run) -> non-zero exit on failure.
//
// Letters: T tokens per rank, H hidden, I expert inner dim, E experts, K top-k.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

#include "backend/cpu/gemm.hpp"
#include "backend/device.hpp"
#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "core/timer.hpp"
#include "model/config.hpp"
#include "parallel/dispatch_combine.hpp"
#include "parallel/routing.hpp"
#include "parallel/topology.hpp"
#include "parallel/traffic.hpp"

#ifdef MOELAB_HAVE_NCCL
#include "backend/cuda/device_array.hpp"
#include "backend/cuda/nccl.hpp"
#endif

namespace moelab {

namespace {

using namespace parallel;

struct EpRunConfig {
  int64_t experts = 64, hidden = 256, inter = 128, tokens = 256;
  int top_k = 8;
  int64_t n_group = 1, topk_group = 1;  // from --model, checked against the nodes
  std::string compute = "swiglu";
  int ep = 0, gpus_per_node = 2, max_nodes = 0;
  DispatchOptions dispatch;
  RoutingSourceOptions routing;
  int steps = 5;
  bool verify = true, record_routing = false;
  int kill_rank = -1, kill_step = 1;
};

EpRunConfig read_config(const CommandOptions& o, const CommandContext& ctx) {
  EpRunConfig c;
  const std::string model = o.get<std::string>("model");
  c.experts = o.get<int64_t>("moe.experts");
  c.top_k = o.get<int>("moe.topk");
  c.hidden = o.get<int64_t>("moe.hidden");
  c.inter = o.get<int64_t>("moe.expert_inter");
  if (!model.empty()) {
    const ModelConfig m = load_model_config(model);
    c.experts = m.n_routed_experts;
    c.top_k = static_cast<int>(m.num_experts_per_tok);
    c.hidden = m.hidden_size;
    c.inter = m.moe_intermediate_size;
    c.n_group = m.n_group;
    c.topk_group = m.topk_group;
  }
  c.tokens = o.get<int64_t>("moe.tokens");
  c.compute = o.get<std::string>("moe.compute");
  c.ep = o.get<int>("parallel.ep");
  if (c.ep == 0) c.ep = ctx.world_size;
  c.gpus_per_node = o.get<int>("parallel.gpus_per_node");
  c.max_nodes = o.get<int>("parallel.max_nodes");
  c.dispatch.mode = parse_dispatch_mode(o.get<std::string>("parallel.dispatch"));
  c.dispatch.dispatch_format = parse_wire_format(o.get<std::string>("parallel.dispatch_format"));
  c.dispatch.combine_format = parse_wire_format(o.get<std::string>("parallel.combine_format"));
  c.routing.kind = parse_routing_kind(o.get<std::string>("routing.source"));
  c.routing.skew = o.get<double>("routing.skew");
  c.routing.zipf_alpha = o.get<double>("routing.zipf_alpha");
  c.routing.hot_expert = o.get<int64_t>("routing.hot_expert");
  c.routing.hot_rank = o.get<int>("routing.hot_rank");
  c.routing.rotate_every = o.get<int>("routing.rotate_every");
  c.routing.replay_file = o.get<std::string>("routing.replay_file");
  c.routing.replay_dataset = o.get<std::string>("routing.replay_dataset");
  c.routing.replay_layer = o.get<int64_t>("routing.replay_layer");
  c.routing.seed = static_cast<uint64_t>(o.get<int64_t>("run.seed"));
  c.steps = o.get<int>("run.steps");
  c.verify = o.get<bool>("run.verify");
  c.record_routing = o.get<bool>("run.record_routing");
  c.kill_rank = o.get<int>("debug.kill_rank");
  c.kill_step = o.get<int>("debug.kill_step");
  MOE_CHECK(c.tokens >= 1) << "moe.tokens must be >= 1, got " << c.tokens;
  MOE_CHECK(c.hidden >= 1 && c.inter >= 1) << "moe.hidden and moe.expert_inter must be >= 1";
  MOE_CHECK(c.top_k >= 1 && c.top_k <= c.experts) << "moe.topk (" << c.top_k << ") must be in [1, moe.experts = "
                                                  << c.experts << "]";
  MOE_CHECK(c.compute == "swiglu" || c.compute == "identity")
      << "moe.compute '" << c.compute << "': expected swiglu or identity";
  MOE_CHECK(c.steps >= 1) << "run.steps must be >= 1, got " << c.steps;
  MOE_CHECK(c.max_nodes >= 0) << "parallel.max_nodes must be >= 0 (0 = no node limit), got " << c.max_nodes;
  return c;
}

// One routed expert: SwiGLU w2(silu(w1 x) * w3 x), w1/w3 [I,H], w2 [H,I]
// (reference/deepseek-v3.md §2.4), weights drawn from the expert's index
// alone so every rank can rebuild any expert.
struct Expert {
  std::vector<float> w1, w3, w2;
};

Expert make_expert(int64_t expert_idx, int64_t H, int64_t I, uint64_t seed) {
  Expert e{std::vector<float>(I * H), std::vector<float>(I * H), std::vector<float>(H * I)};
  Rng rng(seed * 7919 + 0xe4e47ULL + static_cast<uint64_t>(expert_idx));
  const double s1 = 1.0 / std::sqrt(double(H)), s2 = 1.0 / std::sqrt(double(I));
  for (float& v : e.w1) v = static_cast<float>(rng.normal() * s1);
  for (float& v : e.w3) v = static_cast<float>(rng.normal() * s1);
  for (float& v : e.w2) v = static_cast<float>(rng.normal() * s2);
  return e;
}

// x [n,H] -> y [n,H].
void expert_forward(const Expert& e, const std::string& compute, const float* x, int64_t n, int64_t H, int64_t I,
                    float* y) {
  if (compute == "identity") {
    std::copy(x, x + n * H, y);
    return;
  }
  std::vector<float> a(n * I), b(n * I);
  cpu::gemm(false, true, n, I, H, 1.0f, x, H, e.w1.data(), H, 0.0f, a.data(), I);
  cpu::gemm(false, true, n, I, H, 1.0f, x, H, e.w3.data(), H, 0.0f, b.data(), I);
  for (int64_t i = 0; i < n * I; ++i) a[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
  cpu::gemm(false, true, n, H, I, 1.0f, a.data(), I, e.w2.data(), I, 0.0f, y, H);
}

// rows [R,H] with their assignments -> partial [R,H] = sum over local slots of w * expert(row).
void run_local_experts(const Received& r, const Topology& topo, const std::vector<Expert>& local,
                       const EpRunConfig& c, std::vector<float>& partial) {
  const int64_t H = r.hidden, I = c.inter;
  partial.assign(r.rows * H, 0.0f);
  const std::vector<Assignment> work = local_assignments(r, topo);
  size_t i = 0;
  std::vector<float> xin, yout;
  while (i < work.size()) {
    size_t j = i;
    while (j < work.size() && work[j].local_expert == work[i].local_expert) ++j;
    const int64_t n = static_cast<int64_t>(j - i);
    xin.resize(n * H);
    yout.resize(n * H);
    for (int64_t a = 0; a < n; ++a) std::copy_n(&r.x[work[i + a].row * H], H, &xin[a * H]);
    expert_forward(local[work[i].local_expert], c.compute, xin.data(), n, H, I, yout.data());
    for (int64_t a = 0; a < n; ++a) {
      const float w = r.topk_weight[work[i + a].row * r.top_k + work[i + a].slot];
      float* dst = &partial[work[i + a].row * H];
      for (int64_t h = 0; h < H; ++h) dst[h] += w * yout[a * H + h];
    }
    i = j;
  }
}

// nccl-tests: algbw = size / time; all-to-all busbw = algbw * (n-1)/n (each
// rank's data, but the part to itself, crosses the fabric).
struct BwRow {
  std::string name;
  double size_bytes, count;
  std::string type;
  double time_s;
};

void print_bw_table(std::ostream& out, const std::vector<BwRow>& rows, int n) {
  out << "#\n#      size         count      type  op          time   algbw   busbw\n"
      << "#       (B)    (elements)                        (us)  (GB/s)  (GB/s)\n";
  for (const auto& r : rows) {
    const double algbw = r.time_s > 0 ? r.size_bytes / r.time_s / 1e9 : 0.0;
    const double busbw = algbw * (n - 1) / std::max(1, n);
    char line[200];
    std::snprintf(line, sizeof line, "%12.0f  %12.0f  %8s  %-9s %9.1f  %6.2f  %6.2f\n", r.size_bytes, r.count,
                  r.type.c_str(), r.name.c_str(), r.time_s * 1e6, algbw, busbw);
    out << line;
  }
}

// memcpy bandwidth of this process (bytes copied per second), as the ceiling
// a shared-memory all-to-all can approach.
double memcpy_GBps(int64_t bytes, int iters) {
  std::vector<uint8_t> a(bytes, 1), b(bytes, 0);
  std::memcpy(b.data(), a.data(), bytes);  // touch
  Timer t;
  for (int i = 0; i < iters; ++i) {
    std::memcpy(b.data(), a.data(), bytes);
    a[i % bytes] = b[(i * 7) % bytes];
  }
  return double(bytes) * iters / t.seconds() / 1e9;
}

struct RunSummary {
  bool ok = true;
};

// The dispatch/combine of a run: the MPI Dispatcher on host rows, or with
// --device cuda the NCCL one (cuda::NcclDispatcher, same modes, wire formats
// and traffic accounting) on device rows, copied to and from the host around
// it (the experts stay on the CPU; the timings are the NCCL calls').
class EpExchange {
 public:
  EpExchange(const Topology& topo, const DispatchOptions& opt, Device device) : mpi_(topo, opt) {
#ifdef MOELAB_HAVE_NCCL
    if (device == Device::cuda) nccl_ = std::make_unique<Nccl>(topo, opt);
#else
    MOE_CHECK(device == Device::cpu) << "moelab ep --device cuda needs NCCL (this moelab was built without it)";
#endif
  }
  const Received& dispatch(const float* x, const int32_t* idx, const float* w, int64_t T, int64_t H, int K) {
#ifdef MOELAB_HAVE_NCCL
    if (nccl_) return nccl_->dispatch(x, idx, w, T, H, K);
#endif
    return mpi_.dispatch(x, idx, w, T, H, K);
  }
  void combine(const float* partial, float* y) {
#ifdef MOELAB_HAVE_NCCL
    if (nccl_) return nccl_->combine(partial, y);
#endif
    mpi_.combine(partial, y);
  }
  const TrafficStats& stats() const {
#ifdef MOELAB_HAVE_NCCL
    if (nccl_) return nccl_->dispatcher.stats();
#endif
    return mpi_.stats();
  }
  void reset_stats() {
#ifdef MOELAB_HAVE_NCCL
    if (nccl_) nccl_->dispatcher.reset_stats();
#endif
    mpi_.reset_stats();
  }

 private:
  Dispatcher mpi_;
#ifdef MOELAB_HAVE_NCCL
  struct Nccl {
    Nccl(const Topology& topo, const DispatchOptions& opt) : comm(topo.ep_comm()), dispatcher(topo, comm, opt) {
      MOE_CUDA_CHECK(cudaStreamCreate(&stream));
    }
    ~Nccl() { cudaStreamDestroy(stream); }
    const Received& dispatch(const float* x, const int32_t* idx, const float* w, int64_t T, int64_t H, int K) {
      const cuda::DeviceReceived& g = dispatcher.dispatch(d_x.upload(x, T * H), idx, w, T, H, K, stream);
      recv.rows = g.rows;
      recv.hidden = g.hidden;
      recv.top_k = g.top_k;
      recv.x.assign(g.rows * H, 0.0f);
      if (g.rows) MOE_CUDA_CHECK(cudaMemcpy(recv.x.data(), g.x, g.rows * H * sizeof(float), cudaMemcpyDeviceToHost));
      recv.src_rank = g.src_rank;
      recv.src_token = g.src_token;
      recv.topk_idx = g.topk_idx;
      recv.topk_weight = g.topk_weight;
      tokens = T;
      hidden = H;
      return recv;
    }
    void combine(const float* partial, float* y) {
      float* d_y = d_out.reserve(tokens * hidden);
      dispatcher.combine(d_partial.upload(partial, recv.rows * hidden), d_y, stream);
      d_out.download(y, tokens * hidden);
    }
    cuda::NcclComm comm;
    cuda::NcclDispatcher dispatcher;
    cudaStream_t stream = nullptr;
    cuda::DeviceArray<float> d_x, d_partial, d_out;
    Received recv;
    int64_t tokens = 0, hidden = 0;
  };
  std::unique_ptr<Nccl> nccl_;
#endif
};

bool run_point(const CommandOptions& opts, const CommandContext& ctx, ResultsFile* results,
               const std::string& run_name, std::vector<BwRow>& bw_rows) {
  const EpRunConfig c = read_config(opts, ctx);
  // Every rank must agree: the whole resolved configuration is hashed.
  std::ostringstream text;
  for (const auto& [k, v] : opts.resolved()) text << k << "=" << v << "\n";
  check_same_config(MPI_COMM_WORLD, text.str());

  Topology topo = Topology::create(MPI_COMM_WORLD, c.ep, c.gpus_per_node, c.experts);
  const int nodes = topo.num_nodes();
  const int M = c.max_nodes == 0 ? nodes : std::min(c.max_nodes, nodes);
  if (c.n_group > 1) check_node_limit_matches_model(c.n_group, c.topk_group, nodes, M);
  const int64_t T = c.tokens, H = c.hidden, E = c.experts;
  const int K = c.top_k;
  RoutingSource source(c.routing, E, K, topo.experts_per_rank);
  EpExchange dispatcher(topo, c.dispatch, parse_device(opts.get<std::string>("device")));

  // Identity experts need no weights: traffic studies at full DeepSeek-V3
  // shapes (--model deepseek-v3 --set moe.compute=identity) fit in memory.
  const bool weights = c.compute != "identity";
  std::vector<Expert> local(topo.experts_per_rank), all(c.verify ? E : 0);
  if (weights) {
    for (int64_t e = 0; e < topo.experts_per_rank; ++e)
      local[e] = make_expert(topo.first_local_expert() + e, H, c.inter, c.routing.seed);
    for (int64_t e = 0; e < static_cast<int64_t>(all.size()); ++e) all[e] = make_expert(e, H, c.inter, c.routing.seed);
  }

  std::unique_ptr<ResultsRun> run;
  if (results) {
    ConfigPairs config = opts.resolved();
    config.push_back({"ep", std::to_string(topo.ep)});
    config.push_back({"dp", std::to_string(topo.dp)});
    config.push_back({"nodes_per_ep_group", std::to_string(nodes)});
    config.push_back({"max_nodes_effective", std::to_string(M)});
    config.push_back({"dispatch_record_bytes", std::to_string(8 + 8 * K + wire_row_bytes(c.dispatch.dispatch_format, H))});
    config.push_back({"combine_record_bytes", std::to_string(wire_row_bytes(c.dispatch.combine_format, H))});
    run = std::make_unique<ResultsRun>(results->new_run(run_name, config));
  }

  const int64_t first_token = static_cast<int64_t>(topo.world_rank) * T;
  std::vector<float> scores(T * E), x(T * H), w(T * K), y(T * H), partial;
  std::vector<int32_t> idx(T * K);
  double max_err = 0.0, sum_dispatch = 0, sum_combine = 0, sum_imbalance = 0, max_imbalance = 0;
  double sum_inter_dispatch = 0, sum_inter_combine = 0, sum_tokens = 0, sum_disp_bytes = 0, sum_comb_bytes = 0;
  double sum_nodes = 0;
  int worst_nodes = 0;
  // |y - ref| <= tol * sum_k |w_k y_k| elementwise: FP32 partials differ by
  // reassociation and GEMM blocking only; BF16 partials are rounded up to
  // three times (expert rank, relay, source sum) at 2^-9 each.
  const double tol = c.dispatch.combine_format == WireFormat::fp32 ? 1e-4 : 3 * std::ldexp(1.0, -8);
  for (int step = 0; step < c.steps; ++step) {
    dispatcher.reset_stats();
    source.scores(step, first_token, T, scores.data());
    route_node_limited(scores.data(), nullptr, T, E, K, nodes, M, true, 1.0f, idx.data(), w.data());
    Rng xr(c.routing.seed * 31 + 0x7f4a7c15ULL * (step + 1) + topo.world_rank);
    for (float& v : x) v = static_cast<float>(xr.normal());

    // NOTE: the barriers keep one rank's earlier work (verification, the
    // slowest expert) out of the others' dispatch and combine times; expert
    // imbalance shows in expert_time_s and load_imbalance instead.
    MPI_Barrier(MPI_COMM_WORLD);
    const Received& r = dispatcher.dispatch(x.data(), idx.data(), w.data(), T, H, K);
    if (step == c.kill_step && topo.world_rank == c.kill_rank) std::raise(SIGKILL);  // fault injection (tests)
    Timer expert_timer;
    run_local_experts(r, topo, local, c, partial);
    const double expert_time_s = expert_timer.seconds();
    MPI_Barrier(MPI_COMM_WORLD);
    dispatcher.combine(partial.data(), y.data());

    if (c.verify) {
      // Reference: every token through its K experts locally, on the same
      // wire-rounded input. The combine format rounds each partial sum (at
      // the expert rank, and at the relay in two_hop), so the error is
      // bounded by a few units of its rounding times sum_k |w_k y_k|.
      std::vector<float> xq(x), ref(T * H, 0.0f), mag(T * H, 0.0f);
      for (int64_t t = 0; t < T; ++t) wire_round_trip(c.dispatch.dispatch_format, &xq[t * H], H);
      double worst = 0.0;
      for (int64_t e = 0; e < E; ++e) {  // the tokens of expert e as one batch
        std::vector<int64_t> slots;
        for (int64_t i = 0; i < T * K; ++i)
          if (idx[i] == e) slots.push_back(i);
        if (slots.empty()) continue;
        const int64_t n = static_cast<int64_t>(slots.size());
        std::vector<float> xin(n * H), yout(n * H);
        for (int64_t a = 0; a < n; ++a) std::copy_n(&xq[(slots[a] / K) * H], H, &xin[a * H]);
        expert_forward(all[e], c.compute, xin.data(), n, H, c.inter, yout.data());
        for (int64_t a = 0; a < n; ++a) {
          const int64_t t = slots[a] / K;
          for (int64_t h = 0; h < H; ++h) {
            ref[t * H + h] += w[slots[a]] * yout[a * H + h];
            mag[t * H + h] += std::fabs(w[slots[a]] * yout[a * H + h]);
          }
        }
      }
      for (int64_t i = 0; i < T * H; ++i)
        worst = std::max(worst, std::fabs(double(y[i]) - ref[i]) / (double(mag[i]) + 1e-20));
      max_err = std::max(max_err, worst);
    }

    // ---- gather this step's figures to rank 0 ----
    const auto figs = traffic_figures(dispatcher.stats(), K, expert_time_s);
    std::vector<double> mine;
    for (const auto& p : figs) mine.push_back(p.second);
    const int nf = static_cast<int>(mine.size()), n = topo.world_size;
    std::vector<double> all_figs(ctx.is_root() ? size_t(nf) * n : 0);
    MOE_MPI_CHECK(MPI_Gather(mine.data(), nf, MPI_DOUBLE, all_figs.data(), nf, MPI_DOUBLE, 0, MPI_COMM_WORLD));
    std::vector<int32_t> all_idx(ctx.is_root() && c.record_routing ? size_t(n) * T * K : 0);
    if (c.record_routing)
      MOE_MPI_CHECK(MPI_Gather(idx.data(), int(T * K), MPI_INT32_T, all_idx.data(), int(T * K), MPI_INT32_T, 0,
                               MPI_COMM_WORLD));
    if (!ctx.is_root()) continue;
    auto column = [&](const std::string& name) {
      std::vector<double> col(n);
      for (int f = 0; f < nf; ++f)
        if (figs[f].first == name)
          for (int q = 0; q < n; ++q) col[q] = all_figs[size_t(q) * nf + f];
      return col;
    };
    // Load imbalance: max/mean of expert load over the EP ranks of each DP
    // replica (the slowest rank sets an EP step's time); worst replica.
    const std::vector<double> load = column("expert_load");
    double imbalance = 0.0;
    for (int d = 0; d < topo.dp; ++d) {
      double mx = 0, sum = 0;
      for (int e = 0; e < topo.ep; ++e) {
        mx = std::max(mx, load[d * topo.ep + e]);
        sum += load[d * topo.ep + e];
      }
      imbalance = std::max(imbalance, sum > 0 ? mx / (sum / topo.ep) : 0.0);
    }
    auto total = [&](const std::string& name) {
      double s = 0;
      for (double v : column(name)) s += v;
      return s;
    };
    auto maxof = [&](const std::string& name) {
      double s = 0;
      for (double v : column(name)) s = std::max(s, v);
      return s;
    };
    const double tokens = total("tokens");
    sum_tokens += tokens;
    sum_inter_dispatch += total("dispatch_bytes_sent_inter");
    sum_inter_combine += total("combine_bytes_sent_inter");
    sum_disp_bytes += total("dispatch_bytes_sent_intra") + total("dispatch_bytes_sent_inter");
    sum_comb_bytes += total("combine_bytes_sent_intra") + total("combine_bytes_sent_inter");
    sum_dispatch += maxof("dispatch_time_s");
    sum_combine += maxof("combine_time_s");
    sum_imbalance += imbalance;
    max_imbalance = std::max(max_imbalance, imbalance);
    sum_nodes += total("nodes_per_token_mean") / n;
    worst_nodes = std::max(worst_nodes, static_cast<int>(maxof("nodes_per_token_max")));
    if (run) {
      for (int f = 0; f < nf; ++f) {
        const std::vector<double> col = column(figs[f].first);
        run->append_row<double>("comm/" + figs[f].first, {n}, col.data());
      }
      run->append("comm/step", step);
      run->append("comm/load_imbalance", imbalance);
      run->append("comm/inter_node_bytes_per_token", tokens > 0 ? total("dispatch_bytes_sent_inter") / tokens : 0.0);
      run->append("comm/combine_inter_node_bytes_per_token",
                  tokens > 0 ? total("combine_bytes_sent_inter") / tokens : 0.0);
      run->append("comm/nodes_per_token_max_all", maxof("nodes_per_token_max"));
      if (c.record_routing) run->append_row<int32_t>("routing/topk_idx", {int64_t(n) * T, K}, all_idx.data());
      run->maybe_flush();
    }
  }

  // ---- verify and report ----
  int local_bad = c.verify && !(max_err <= tol);
  int any_bad = 0;
  MOE_MPI_CHECK(MPI_Allreduce(&local_bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  double worst_err = 0.0;
  MOE_MPI_CHECK(MPI_Allreduce(&max_err, &worst_err, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  const bool node_limit_ok = worst_nodes <= M;
  if (ctx.is_root()) {
    const double steps = c.steps;
    char line[600];
    std::snprintf(line, sizeof line,
                  "%s: %s, %s dispatch %s/%s, M %d, routing %s\n"
                  "  inter-node bytes/token: dispatch %.1f, combine %.1f; nodes/token mean %.3f max %d (<= M: %s); "
                  "load imbalance max/mean %.3f (worst step %.3f)\n"
                  "  step time (slowest rank): dispatch %.3f ms, combine %.3f ms; verify: %s\n",
                  run_name.c_str(), topo.describe().c_str(), dispatch_mode_name(c.dispatch.mode).c_str(),
                  wire_format_name(c.dispatch.dispatch_format).c_str(),
                  wire_format_name(c.dispatch.combine_format).c_str(), M, routing_kind_name(c.routing.kind).c_str(),
                  sum_inter_dispatch / std::max(1.0, sum_tokens), sum_inter_combine / std::max(1.0, sum_tokens),
                  sum_nodes / steps, worst_nodes, node_limit_ok ? "yes" : "NO", sum_imbalance / steps, max_imbalance,
                  sum_dispatch / steps * 1e3, sum_combine / steps * 1e3,
                  c.verify ? (std::string(any_bad ? "FAILED" : "ok") + ", max |y - ref| / sum_k |w_k y_k| " +
                              std::to_string(worst_err) + " (tol " + std::to_string(tol) + ")")
                                 .c_str()
                           : "off");
    ctx.print() << line;
    // Dispatch/combine in the nccl-tests table: size = bytes a rank sends
    // per step (mean over ranks, both link classes), count = its tokens.
    const double nranks = topo.world_size;
    std::vector<BwRow> rows = {
        {"dispatch", sum_disp_bytes / steps / nranks, double(T), wire_format_name(c.dispatch.dispatch_format),
         sum_dispatch / steps},
        {"combine", sum_comb_bytes / steps / nranks, double(T), wire_format_name(c.dispatch.combine_format),
         sum_combine / steps}};
    print_bw_table(ctx.print(), rows, topo.ep);
    bw_rows.insert(bw_rows.end(), rows.begin(), rows.end());
  }
  if (run) {
    run->group().set_attr("verify_max_rel_err", worst_err);
    run->group().set_attr("nodes_per_token_max", static_cast<int64_t>(worst_nodes));
    if (any_bad) run->fail("verification failed: max error " + std::to_string(worst_err));
    else if (!node_limit_ok) run->fail("node limit exceeded");
    else run->complete();
  }
  return !any_bad && node_limit_ok;
}

std::vector<int64_t> parse_sizes(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MOE_CHECK(used == item.size() && v > 0) << "bench.a2a_sizes '" << text << "': expected positive byte counts";
    out.push_back(v);
  }
  return out;
}

// MPI_Alltoall over the world at each size (bytes sent per rank in total),
// plus memcpy of the largest size: the nccl-tests table and the ratio.
void alltoall_bench(const CommandContext& ctx, const std::vector<int64_t>& sizes, int iters, ResultsFile* results,
                    std::vector<BwRow>& rows) {
  const int n = ctx.world_size;
  h5::Group g;
  std::vector<double> size_col, time_col, alg_col, bus_col;
  double best_busbw = 0.0;
  for (int64_t size : sizes) {
    const int64_t per_peer = std::max<int64_t>(4, (size / n) / 4 * 4);
    std::vector<uint8_t> send(per_peer * n, 1), recv(per_peer * n, 0);
    MOE_MPI_CHECK(MPI_Alltoall(send.data(), int(per_peer), MPI_BYTE, recv.data(), int(per_peer), MPI_BYTE,
                               MPI_COMM_WORLD));  // warm-up
    MPI_Barrier(MPI_COMM_WORLD);
    Timer t;
    for (int i = 0; i < iters; ++i)
      MOE_MPI_CHECK(MPI_Alltoall(send.data(), int(per_peer), MPI_BYTE, recv.data(), int(per_peer), MPI_BYTE,
                                 MPI_COMM_WORLD));
    double time_s = t.seconds() / iters, slowest = 0.0;
    MPI_Allreduce(&time_s, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    const double bytes = double(per_peer) * n;
    rows.push_back({"alltoall", bytes, bytes / 4, "float", slowest});
    const double algbw = bytes / slowest / 1e9;
    best_busbw = std::max(best_busbw, algbw * (n - 1) / n);
    size_col.push_back(bytes);
    time_col.push_back(slowest);
    alg_col.push_back(algbw);
    bus_col.push_back(algbw * (n - 1) / n);
  }
  const double mem = memcpy_GBps(*std::max_element(sizes.begin(), sizes.end()), std::max(iters, 10));
  if (!ctx.is_root()) return;
  ctx.print() << "# MPI_Alltoall over " << n << " ranks\n";
  print_bw_table(ctx.print(), std::vector<BwRow>(rows.end() - size_col.size(), rows.end()), n);
  char line[300];
  std::snprintf(line, sizeof line,
                "# memcpy (one rank, %lld B): %.2f GB/s; best all-to-all busbw / memcpy = %.3f\n",
                static_cast<long long>(*std::max_element(sizes.begin(), sizes.end())), mem,
                mem > 0 ? best_busbw / mem : 0.0);
  ctx.print() << line;
  if (results) {
    ResultsRun run = results->new_run("alltoall_bench", {{"ranks", std::to_string(n)}});
    h5::Group b = run.group().group("bench/alltoall");
    const int64_t m = static_cast<int64_t>(size_col.size());
    b.write<double>("size_bytes", {m}, size_col.data());
    b.write<double>("time_s", {m}, time_col.data());
    b.write<double>("algbw_GBps", {m}, alg_col.data());
    b.write<double>("busbw_GBps", {m}, bus_col.data());
    b.set_attr("memcpy_GBps", mem);
    b.set_attr("busbw_over_memcpy", mem > 0 ? best_busbw / mem : 0.0);
    b.set_attr("bus_factor", "(n-1)/n");
    run.complete();
  }
}

}  // namespace

int cmd_ep(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts(
      "ep", "[--config FILE.ini] [--set key=value ...] [--sweep key:v1,v2] [--out OUT.h5]",
      "Expert-parallel MoE steps over the MPI world (DeepSeek-V3 §2.1.2, §3.2.2): each rank routes its\n"
      "moe.tokens tokens (routing.source, node-limited to parallel.max_nodes nodes), dispatches them\n"
      "(direct: one all-to-all; two_hop: to the same in-node index on each target node, then forwarded\n"
      "inside the node), runs its E/EP SwiGLU experts, and combines. The world is DP x EP;\n"
      "parallel.gpus_per_node consecutive ranks form a virtual node. Every step every token's output\n"
      "is checked against all K experts computed locally (run.verify). Writes, per step and rank,\n"
      "/runs/<run>/comm/* [steps, ranks] (tokens and bytes sent/received intra/inter node, nodes per\n"
      "token, experts per token per node, expert load, dispatch/combine/expert time) and per step\n"
      "comm/load_imbalance (max/mean expert load over EP ranks) and comm/inter_node_bytes_per_token;\n"
      "then an MPI_Alltoall sweep in the nccl-tests table with memcpy bandwidth of the same run.\n"
      "scripts/plot.py OUT.h5 draws the comm figures (scripts/plots/comm.py).");
  opts.add()("model", po::value<std::string>()->default_value(""),
             "preset or config.json: takes moe.experts, moe.topk, moe.hidden, moe.expert_inter from it, and its "
             "n_group/topk_group must equal the EP group's nodes and M")  //
      ("moe.experts", po::value<int64_t>()->default_value(64), "routed experts E (Megatron num_experts)")  //
      ("moe.topk", po::value<int>()->default_value(8), "experts per token K (Megatron moe_router_topk)")  //
      ("moe.hidden", po::value<int64_t>()->default_value(256), "hidden size H (V3: 7168; scaled down for 2 cores)")  //
      ("moe.expert_inter", po::value<int64_t>()->default_value(128), "expert inner size I (V3: 2048)")  //
      ("moe.tokens", po::value<int64_t>()->default_value(256), "tokens per rank per step T")  //
      ("moe.compute", po::value<std::string>()->default_value("swiglu"), "expert compute: swiglu or identity")  //
      ("parallel.ep", po::value<int>()->default_value(0), "EP degree (0 = world size); DP = world / EP")  //
      ("parallel.gpus_per_node", po::value<int>()->default_value(2), "ranks per virtual node (V3: 8)")  //
      ("parallel.max_nodes", po::value<int>()->default_value(0),
       "node limit M: nodes per token at most (0 = no limit; V3: 4; Megatron moe_router_group_topk with "
       "moe_router_num_groups = nodes)")  //
      ("parallel.dispatch", po::value<std::string>()->default_value("direct"), "direct or two_hop")  //
      ("parallel.dispatch_format", po::value<std::string>()->default_value("fp8"),
       "dispatch wire format: fp32, bf16 or fp8 (E4M3, 1x128 tiles, FP32 scales; V3)")  //
      ("parallel.combine_format", po::value<std::string>()->default_value("bf16"), "combine wire format: fp32 or bf16")  //
      ("routing.source", po::value<std::string>()->default_value("uniform"),
       "uniform, hot_expert, hot_rank, zipf, rotating or replay")  //
      ("routing.skew", po::value<double>()->default_value(8.0), "popularity factor of the hot expert/rank")  //
      ("routing.zipf_alpha", po::value<double>()->default_value(1.0), "Zipf exponent")  //
      ("routing.hot_expert", po::value<int64_t>()->default_value(0), "hot_expert: the hot expert")  //
      ("routing.hot_rank", po::value<int>()->default_value(0), "hot_rank: the hot EP rank")  //
      ("routing.rotate_every", po::value<int>()->default_value(1), "rotating: steps before the hotspot moves")  //
      ("routing.replay_file", po::value<std::string>()->default_value(""), "replay: HDF5 file")  //
      ("routing.replay_dataset", po::value<std::string>()->default_value(""),
       "replay: a topk_idx [steps, tokens, K] dataset (e.g. /runs/R/routing/topk_idx from run.record_routing) or a "
       "training run's load/expert_tokens [steps, layers, E]")  //
      ("routing.replay_layer", po::value<int64_t>()->default_value(0), "replay of expert_tokens: the MoE layer")  //
      ("run.steps", po::value<int>()->default_value(5), "steps")  //
      ("run.seed", po::value<int64_t>()->default_value(0), "seed of routing, inputs and expert weights")  //
      ("run.verify", po::value<bool>()->default_value(true), "check every output against a local reference")  //
      ("run.record_routing", po::value<bool>()->default_value(false),
       "write routing/topk_idx [steps, world*T, K] for replay")  //
      ("bench.a2a_sizes", po::value<std::string>()->default_value("65536,1048576,8388608"),
       "MPI_Alltoall sizes (bytes per rank), comma-separated")  //
      ("bench.iters", po::value<int>()->default_value(5), "iterations per all-to-all size")  //
      ("debug.kill_rank", po::value<int>()->default_value(-1), "fault injection: this rank SIGKILLs itself")  //
      ("debug.kill_step", po::value<int>()->default_value(1), "fault injection: at this step, after dispatch")  //
      ("out", po::value<std::string>()->default_value(""), "results file (rank 0 writes)")  //
      ("force", po::bool_switch(), "overwrite --out if it exists")  //
      ("device", po::value<std::string>()->default_value("cpu"),
       "cpu, or cuda: dispatch/combine over NCCL between the ranks' GPUs (one GPU per rank; same modes, wire "
       "formats and comm/ accounting; the experts stay on the CPU)");
  if (!opts.parse(args, ctx)) return 0;
  const Device device = parse_device(opts.get<std::string>("device"));
  require_device(device);
#ifdef MOELAB_HAVE_NCCL
  if (device == Device::cuda) cuda::select_local_device(MPI_COMM_WORLD);  // one rank per GPU
#endif
  std::shared_ptr<ResultsFile> results;
  const std::string out = opts.get<std::string>("out");
  if (ctx.is_root() && !out.empty())
    results = ResultsFile::create(out, opts.get<bool>("force"), ctx.command_line, ctx.world_size);
  const std::vector<ConfigPairs> points = opts.sweep_points();
  bool ok = true;
  std::vector<BwRow> rows;
  for (size_t i = 0; i < points.size(); ++i) {
    if (points.size() > 1 || !points[i].empty()) opts.apply_point(points[i], ctx);
    const std::string name = points[i].empty() ? "ep" : point_label(points[i]);
    ok = run_point(opts, ctx, results.get(), name, rows) && ok;
  }
  alltoall_bench(ctx, parse_sizes(opts.get<std::string>("bench.a2a_sizes")), opts.get<int>("bench.iters"),
                 results.get(), rows);
  if (results) {
    results->flush();
    ctx.print() << "wrote " << results->path() << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace moelab
