#include "parallel/ep_experts.hpp"

#include <climits>
#include <cstdint>
#include <cstdlib>

#include "core/error.hpp"

namespace moelab::parallel {

void add_traffic(TrafficStats& into, const TrafficStats& s) {
  into.dispatch.add(s.dispatch);
  into.combine.add(s.combine);
  into.tokens += s.tokens;
  into.token_node_pairs += s.token_node_pairs;
  into.token_rank_pairs += s.token_rank_pairs;
  into.nodes_per_token_max = std::max(into.nodes_per_token_max, s.nodes_per_token_max);
  into.rows_received += s.rows_received;
  into.expert_load += s.expert_load;
  into.dispatch_time_s += s.dispatch_time_s;
  into.combine_time_s += s.combine_time_s;
}

bool is_expert_param(const std::string& name, int64_t* expert_idx) {
  const std::string key = ".mlp.experts.";
  const size_t at = name.find(key);
  if (at == std::string::npos) return false;
  const char* p = name.c_str() + at + key.size();
  char* end = nullptr;
  const long long e = std::strtoll(p, &end, 10);
  if (end == p || *end != '.') return false;
  if (expert_idx) *expert_idx = e;
  return true;
}

void allreduce_grads(std::vector<Param<float>>& params, const Topology& topo) {
  // NOTE: every rank walks the same list in the same order, so the
  // collectives match; a non-holder of an expert skips it on every rank of
  // its dp_comm alike (all of them share its ep_rank).
  for (Param<float>& p : params) {
    if (!p.trainable || p.grad.numel() == 0) continue;
    MOE_CHECK(p.grad.numel() < INT32_MAX) << p.name << ": too large for one MPI_Allreduce";
    int64_t e = -1;
    if (is_expert_param(p.name, &e)) {
      if (!topo.is_local_expert(e)) continue;
      MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p.grad.ptr(), static_cast<int>(p.grad.numel()), MPI_FLOAT, MPI_SUM,
                                  topo.dp_comm()));
    } else {
      MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p.grad.ptr(), static_cast<int>(p.grad.numel()), MPI_FLOAT, MPI_SUM,
                                  topo.world()));
    }
  }
}

namespace {

class EpExperts : public RoutedExperts<float> {
 public:
  EpExperts(const Topology& topo, DispatchOptions options, const std::vector<MlpParams<float>>& experts,
            GemmPrecision precision, std::shared_ptr<TrafficStats> sink)
      : topo_(topo), dispatcher_(topo, options), precision_(precision), sink_(std::move(sink)) {
    MOE_CHECK(static_cast<int64_t>(experts.size()) == topo.num_experts)
        << "EP experts: the layer has " << experts.size() << " routed experts, the topology places "
        << topo.num_experts;
    for (int64_t e = 0; e < topo.experts_per_rank; ++e) local_.push_back(experts[topo.first_local_expert() + e]);
  }

  void forward(Tensor<float>& y, const Tensor<float>& x, const Tensor<int32_t>& topk_idx,
               const Tensor<float>& topk_weight) override {
    const int64_t H = x.dim(-1), tokens = x.numel() / H;
    const int K = static_cast<int>(topk_idx.numel() / std::max<int64_t>(tokens, 1));
    const Received& r = dispatcher_.dispatch(x.ptr(), topk_idx.ptr(), topk_weight.ptr(), tokens, H, K);
    work_ = local_assignments(r, topo_);
    const int64_t A = static_cast<int64_t>(work_.size());
    offsets_.assign(local_.size() + 1, 0);
    for (const Assignment& a : work_) ++offsets_[a.local_expert + 1];
    for (size_t e = 0; e < local_.size(); ++e) offsets_[e + 1] += offsets_[e];
    saved_.xp.resize({A, H});
    for (int64_t i = 0; i < A; ++i) std::copy_n(&r.x[work_[i].row * H], H, saved_.xp.ptr() + i * H);
    if (A > 0) grouped_mlp_forward(yp_, saved_, local_, offsets_, precision_);
    // partial[row] = sum over this rank's slots of w * y, slots in expert order.
    std::vector<float> partial(r.rows * H, 0.0f);
    for (int64_t i = 0; i < A; ++i) {
      const float w = r.topk_weight[work_[i].row * K + work_[i].slot];
      float* dst = &partial[work_[i].row * H];
      const float* src = yp_.ptr() + i * H;
      for (int64_t h = 0; h < H; ++h) dst[h] += w * src[h];
    }
    if (y.numel() != tokens * H) y.resize({tokens, H});
    dispatcher_.combine(partial.data(), y.ptr());
    flush_stats();
  }

  void backward(Tensor<float>& dx, Tensor<float>& d_topk_weight, const Tensor<float>& dy) override {
    const Received& r = dispatcher_.received();
    const int64_t H = r.hidden, K = r.top_k, tokens = dy.numel() / H;
    const int64_t A = static_cast<int64_t>(work_.size());
    std::vector<float> dy_rows(r.rows * H), dweight_rows(r.rows * K, 0.0f), dx_partial(r.rows * H, 0.0f);
    dispatcher_.dispatch_grad(dy.ptr(), dy_rows.data());
    Tensor<float> dyp({A, H}), dxp;
    for (int64_t i = 0; i < A; ++i) {
      const Assignment& a = work_[i];
      const float w = r.topk_weight[a.row * K + a.slot];
      const float* g = &dy_rows[a.row * H];
      const float* yk = yp_.ptr() + i * H;
      float dot = 0.0f;
      for (int64_t h = 0; h < H; ++h) {
        dyp[i * H + h] = w * g[h];
        dot += g[h] * yk[h];
      }
      dweight_rows[a.row * K + a.slot] = dot;
    }
    if (A > 0) grouped_mlp_backward(dxp, saved_, local_, offsets_, dyp, precision_);
    for (int64_t i = 0; i < A; ++i) {
      float* dst = &dx_partial[work_[i].row * H];
      for (int64_t h = 0; h < H; ++h) dst[h] += dxp[i * H + h];
    }
    if (dx.numel() != tokens * H) dx.resize({tokens, H});
    d_topk_weight.resize({tokens, K});
    dispatcher_.combine_grad(dx_partial.data(), dweight_rows.data(), dx.ptr(), d_topk_weight.ptr());
    flush_stats();
  }

 private:
  void flush_stats() {
    if (sink_) add_traffic(*sink_, dispatcher_.stats());
    dispatcher_.reset_stats();
  }

  Topology topo_;
  Dispatcher dispatcher_;
  GemmPrecision precision_;
  std::shared_ptr<TrafficStats> sink_;
  std::vector<MlpParams<float>> local_;
  std::vector<Assignment> work_;
  std::vector<int64_t> offsets_;
  GroupedMlpSaved<float> saved_;
  Tensor<float> yp_;  // [A, H] local expert outputs, kept for d_topk_weight
};

}  // namespace

ExpertsFactory<float> ep_experts_factory(const Topology& topo, DispatchOptions options,
                                         std::shared_ptr<TrafficStats> sink) {
  return [topo, options, sink](int64_t, const std::vector<MlpParams<float>>& experts, GemmPrecision precision) {
    return std::unique_ptr<RoutedExperts<float>>(new EpExperts(topo, options, experts, precision, sink));
  };
}

}  // namespace moelab::parallel
