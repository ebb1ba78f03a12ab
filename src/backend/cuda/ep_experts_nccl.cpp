#include "backend/cuda/ep_experts_nccl.hpp"

#include "backend/cuda/device_array.hpp"
#include "backend/cuda/grouped_mlp.hpp"
#include "backend/cuda/nccl.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "kernels/kernels.hpp"
#include "parallel/ep_experts.hpp"

namespace moelab::cuda {

struct NcclEp {
  explicit NcclEp(const parallel::Topology& topo) : comm(topo.ep_comm()) {
    MOE_CUDA_CHECK(cudaStreamCreate(&stream));  // blocking: ordered with the default-stream kernels
  }
  ~NcclEp() { cudaStreamDestroy(stream); }
  NcclEp(const NcclEp&) = delete;
  NcclEp& operator=(const NcclEp&) = delete;
  NcclComm comm;
  cudaStream_t stream = nullptr;
};

std::shared_ptr<NcclEp> nccl_ep_setup(const parallel::Topology& topo) { return std::make_shared<NcclEp>(topo); }

namespace {

class NcclEpExperts : public RoutedExperts<float> {
 public:
  NcclEpExperts(const parallel::Topology& topo, std::shared_ptr<NcclEp> ep, const std::vector<MlpParams<float>>& experts,
                GemmPrecision precision, std::shared_ptr<parallel::TrafficStats> sink,
                parallel::DispatchOptions options)
      : topo_(topo), ep_(std::move(ep)), dispatcher_(topo, ep_->comm, options),
        mlp_(local_of(topo, experts), precision),
        sink_(std::move(sink)) {}

  void forward(Tensor<float>& y, const Tensor<float>& x, const Tensor<int32_t>& topk_idx,
               const Tensor<float>& topk_weight) override {
    const int64_t H = x.dim(-1), T = x.numel() / H;
    const int K = static_cast<int>(topk_idx.numel() / std::max<int64_t>(T, 1));
    Timer timer;
    const DeviceReceived& r = dispatcher_.dispatch(x_.upload(x.ptr(), T * H), topk_idx.ptr(), topk_weight.ptr(), T, H,
                                                   K, ep_->stream);
    dispatch_s_ += timer.seconds();
    R_ = r.rows;
    K_ = K;
    H_ = H;
    // This rank's (row, slot) assignments, grouped by local expert.
    parallel::Received view;
    view.rows = r.rows;
    view.top_k = K;
    view.topk_idx = r.topk_idx;
    const std::vector<parallel::Assignment> work = parallel::local_assignments(view, topo_);
    A_ = static_cast<int64_t>(work.size());
    std::vector<int64_t> offsets(topo_.experts_per_rank + 1, 0);
    for (const auto& a : work) ++offsets[a.local_expert + 1];
    for (int64_t e = 0; e < topo_.experts_per_rank; ++e) offsets[e + 1] += offsets[e];
    // Slots of the received rows: assignment index (weight w) or the zero row A (weight 0).
    std::vector<int32_t> row_of_assignment(A_), slot_row(R_ * K, static_cast<int32_t>(A_));
    std::vector<float> slot_weight(R_ * K, 0.0f);
    for (int64_t i = 0; i < A_; ++i) {
      const int64_t s = work[i].row * K + work[i].slot;
      row_of_assignment[i] = static_cast<int32_t>(work[i].row);
      slot_row[s] = static_cast<int32_t>(i);
      slot_weight[s] = r.topk_weight[s];
    }
    slot_row_.upload(slot_row.data(), R_ * K);
    slot_weight_.upload(slot_weight.data(), R_ * K);
    float* xp = xp_.reserve(A_ * H);
    permute_rows(xp, r.x, row_of_assignment_.upload(row_of_assignment.data(), A_), A_, H, nullptr);
    float* yp = yp_.reserve((A_ + 1) * H);
    MOE_CUDA_CHECK(cudaMemset(yp + A_ * H, 0, H * sizeof(float)));
    mlp_.forward(yp, xp, offsets);
    float* partial = partial_.reserve(R_ * H);
    unpermute_rows(partial, yp, slot_weight_.get(), slot_row_.get(), R_, K, H, nullptr);
    timer.reset();
    dispatcher_.combine(partial, y_.reserve(T * H), ep_->stream);
    combine_s_ += timer.seconds();
    y.resize({T, H});
    y_.download(y.ptr(), T * H);
    flush_stats();
  }

  void backward(Tensor<float>& dx, Tensor<float>& d_topk_weight, const Tensor<float>& dy) override {
    const int64_t H = H_, T = dy.numel() / H, K = K_;
    Timer timer;
    float* dy_rows = dy_rows_.reserve(R_ * H);
    dispatcher_.dispatch_grad(y_.upload(dy.ptr(), T * H), dy_rows, ep_->stream);
    dispatch_s_ += timer.seconds();
    // dyp [A (+1 scratch row for the other ranks' slots), H]; d_weight per received row's slot.
    float* dyp = dyp_.reserve((A_ + 1) * H);
    float* dweight_rows = dweight_rows_.reserve(R_ * K);
    unpermute_backward(dyp, dweight_rows, dy_rows, yp_.get(), slot_weight_.get(), slot_row_.get(), R_, K, H, nullptr);
    float* dxp = dxp_.reserve((A_ + 1) * H);
    MOE_CUDA_CHECK(cudaMemset(dxp + A_ * H, 0, H * sizeof(float)));
    mlp_.backward(dxp, dyp);
    float* dx_partial = partial_.reserve(R_ * H);
    unpermute_rows(dx_partial, dxp, nullptr, slot_row_.get(), R_, K, H, nullptr);
    timer.reset();
    float* d_dx = y_.reserve(T * H);  // dy was consumed by dispatch_grad
    dispatcher_.combine_grad(dx_partial, dweight_rows, d_dx, d_topk_weight_.reserve(T * K), ep_->stream);
    combine_s_ += timer.seconds();
    dx.resize({T, H});
    y_.download(dx.ptr(), T * H);
    d_topk_weight.resize({T, K});
    d_topk_weight_.download(d_topk_weight.ptr(), T * K);
    flush_stats();
  }

 private:
  static std::vector<MlpParams<float>> local_of(const parallel::Topology& topo,
                                                const std::vector<MlpParams<float>>& experts) {
    MOE_CHECK(static_cast<int64_t>(experts.size()) == topo.num_experts)
        << "EP experts: the layer has " << experts.size() << " routed experts, the topology places "
        << topo.num_experts;
    return {experts.begin() + topo.first_local_expert(),
            experts.begin() + topo.first_local_expert() + topo.experts_per_rank};
  }
  void flush_stats() {
    parallel::TrafficStats s = dispatcher_.stats();
    s.dispatch_time_s += dispatch_s_;
    s.combine_time_s += combine_s_;
    if (sink_) parallel::add_traffic(*sink_, s);
    dispatcher_.reset_stats();
    dispatch_s_ = combine_s_ = 0;
  }

  parallel::Topology topo_;
  std::shared_ptr<NcclEp> ep_;
  NcclDispatcher dispatcher_;
  DeviceGroupedMlp mlp_;
  std::shared_ptr<parallel::TrafficStats> sink_;
  int64_t R_ = 0, A_ = 0, H_ = 0;
  int K_ = 0;
  double dispatch_s_ = 0, combine_s_ = 0;
  DeviceArray<float> x_, xp_, yp_, partial_, y_, slot_weight_, dy_rows_, dyp_, dxp_, dweight_rows_, d_topk_weight_;
  DeviceArray<int32_t> slot_row_, row_of_assignment_;
};

}  // namespace

ExpertsFactory<float> nccl_ep_experts_factory(const parallel::Topology& topo, std::shared_ptr<NcclEp> ep,
                                              std::shared_ptr<parallel::TrafficStats> sink,
                                              parallel::DispatchOptions options) {
  MOE_CHECK(ep) << "nccl_ep_experts_factory: no NCCL setup (nccl_ep_setup)";
  MOE_CHECK(options.combine_format != parallel::WireFormat::fp8)
      << "combine wire format fp8 is not supported (DeepSeek-V3 combines in BF16): use bf16 or fp32";
  return [topo, ep, sink, options](int64_t, const std::vector<MlpParams<float>>& experts, GemmPrecision precision) {
    return std::unique_ptr<RoutedExperts<float>>(new NcclEpExperts(topo, ep, experts, precision, sink, options));
  };
}

}  // namespace moelab::cuda
