#include "backend/cuda/nccl.hpp"

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "parallel/wire.hpp"

namespace moelab::cuda {

namespace {

void mpi_check(int rc, const char* what) { MOE_CHECK(rc == MPI_SUCCESS) << what << " failed (MPI error " << rc << ")"; }

// Device memory that only grows (cudaMalloc, no managed memory).
struct DeviceArray {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~DeviceArray() {
    if (ptr) cudaFree(ptr);
  }
  void* reserve(size_t n) {
    if (n > bytes) {
      if (ptr) MOE_CUDA_CHECK(cudaFree(ptr));
      ptr = nullptr;
      MOE_CUDA_CHECK(cudaMalloc(&ptr, n));
      bytes = n;
    }
    return ptr;
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

template <typename T>
T* upload(DeviceArray& a, const std::vector<T>& host, cudaStream_t stream) {
  T* d = static_cast<T*>(a.reserve(std::max<size_t>(1, host.size()) * sizeof(T)));
  if (!host.empty()) MOE_CUDA_CHECK(cudaMemcpyAsync(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
  return d;
}

std::vector<int64_t> times(const std::vector<int>& rows, int64_t rec) {
  std::vector<int64_t> out(rows.size());
  for (size_t p = 0; p < rows.size(); ++p) out[p] = int64_t(rows[p]) * rec;
  return out;
}

}  // namespace

int select_local_device(MPI_Comm comm) {
  MPI_Comm local;
  mpi_check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(local, &local_rank);
  MPI_Comm_size(local, &local_size);
  MPI_Comm_free(&local);
  const int gpus = device_count();
  MOE_CHECK(gpus >= local_size) << "this host runs " << local_size << " ranks but has " << gpus
                                << " GPU(s): NCCL needs one GPU per rank (" << device_description() << ")";
  MOE_CUDA_CHECK(cudaSetDevice(local_rank));
  return local_rank;
}

bool every_rank_has_gpu(MPI_Comm comm) {
  MPI_Comm local;
  mpi_check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
  int local_size = 1;
  MPI_Comm_size(local, &local_size);
  MPI_Comm_free(&local);
  int ok = device_count() >= local_size ? 1 : 0, all = 0;
  mpi_check(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
  return all == 1;
}

NcclComm::NcclComm(MPI_Comm comm) : mpi_(comm) {
  MPI_Comm_rank(comm, &rank_);
  MPI_Comm_size(comm, &size_);
  ncclUniqueId id;
  if (rank_ == 0) MOE_NCCL_CHECK(ncclGetUniqueId(&id));
  mpi_check(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm), "MPI_Bcast of the NCCL unique id");
  MOE_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
}

NcclComm::~NcclComm() {
  if (comm_) ncclCommDestroy(comm_);
}

void NcclComm::all_to_allv(const void* send, const std::vector<int64_t>& send_bytes, void* recv,
                           const std::vector<int64_t>& recv_bytes, cudaStream_t stream) const {
  MOE_CHECK(int(send_bytes.size()) == size_ && int(recv_bytes.size()) == size_)
      << "all_to_allv: " << send_bytes.size() << "/" << recv_bytes.size() << " counts for " << size_ << " ranks";
  const char* s = static_cast<const char*>(send);
  char* r = static_cast<char*>(recv);
  int64_t so = 0, ro = 0;
  MOE_NCCL_CHECK(ncclGroupStart());
  for (int p = 0; p < size_; ++p) {
    if (send_bytes[p] > 0) MOE_NCCL_CHECK(ncclSend(s + so, size_t(send_bytes[p]), ncclChar, p, comm_, stream));
    if (recv_bytes[p] > 0) MOE_NCCL_CHECK(ncclRecv(r + ro, size_t(recv_bytes[p]), ncclChar, p, comm_, stream));
    so += send_bytes[p];
    ro += recv_bytes[p];
  }
  MOE_NCCL_CHECK(ncclGroupEnd());
}

void NcclComm::send(const void* buf, int64_t bytes, int peer, cudaStream_t stream) const {
  MOE_NCCL_CHECK(ncclSend(buf, size_t(bytes), ncclChar, peer, comm_, stream));
}

void NcclComm::recv(void* buf, int64_t bytes, int peer, cudaStream_t stream) const {
  MOE_NCCL_CHECK(ncclRecv(buf, size_t(bytes), ncclChar, peer, comm_, stream));
}

void NcclComm::send_recv(const void* send_buf, int64_t send_bytes, int to, void* recv_buf, int64_t recv_bytes,
                         int from, cudaStream_t stream) const {
  MOE_NCCL_CHECK(ncclGroupStart());
  if (send_bytes > 0) MOE_NCCL_CHECK(ncclSend(send_buf, size_t(send_bytes), ncclChar, to, comm_, stream));
  if (recv_bytes > 0) MOE_NCCL_CHECK(ncclRecv(recv_buf, size_t(recv_bytes), ncclChar, from, comm_, stream));
  MOE_NCCL_CHECK(ncclGroupEnd());
}

void NcclComm::all_reduce_sum(float* buf, int64_t count, cudaStream_t stream) const {
  MOE_NCCL_CHECK(ncclAllReduce(buf, buf, size_t(count), ncclFloat, ncclSum, comm_, stream));
}

// ---- the plan ----

NcclDispatchPlan NcclDispatchPlan::build(const parallel::Topology& topo, const int32_t* topk_idx, int64_t num_tokens,
                                         int top_k) {
  NcclDispatchPlan plan;
  const auto lists = parallel::direct_send_lists(topo, topk_idx, num_tokens, top_k);
  plan.send_rows.assign(topo.ep, 0);
  plan.recv_rows.assign(topo.ep, 0);
  for (int p = 0; p < topo.ep; ++p) {
    plan.send_rows[p] = static_cast<int>(lists[p].size());
    for (int64_t t : lists[p]) plan.send_src.push_back(static_cast<int32_t>(t));
  }
  mpi_check(MPI_Alltoall(plan.send_rows.data(), 1, MPI_INT, plan.recv_rows.data(), 1, MPI_INT, topo.ep_comm()),
            "MPI_Alltoall of the row counts");
  plan.total_send = static_cast<int64_t>(plan.send_src.size());
  for (int c : plan.recv_rows) plan.total_recv += c;
  return plan;
}

void NcclDispatchPlan::account(const parallel::Topology& topo, const int32_t* topk_idx, int64_t num_tokens, int top_k,
                               int64_t hidden, bool with_combine, parallel::TrafficStats& stats) const {
  std::vector<char> rank_hit(topo.ep), node_hit(topo.num_nodes());
  for (int64_t t = 0; t < num_tokens; ++t) {
    std::fill(rank_hit.begin(), rank_hit.end(), 0);
    std::fill(node_hit.begin(), node_hit.end(), 0);
    for (int k = 0; k < top_k; ++k) {
      rank_hit[topo.rank_of_expert(topk_idx[t * top_k + k])] = 1;
      node_hit[topo.node_of_expert(topk_idx[t * top_k + k])] = 1;
    }
    int nodes = 0;
    for (char h : node_hit) nodes += h;
    for (char h : rank_hit) stats.token_rank_pairs += h;
    stats.token_node_pairs += nodes;
    stats.nodes_per_token_max = std::max(stats.nodes_per_token_max, nodes);
  }
  stats.tokens += num_tokens;
  stats.rows_received += total_recv;
  const int64_t pay = parallel::wire_row_bytes(parallel::WireFormat::fp32, hidden);
  parallel::count_link_traffic(topo, send_rows, recv_rows, parallel::dispatch_header_bytes(top_k) + pay,
                               stats.dispatch);
  if (with_combine) parallel::count_link_traffic(topo, recv_rows, send_rows, pay, stats.combine);
}

void NcclDispatchPlan::account_backward(const parallel::Topology& topo, int top_k, int64_t hidden,
                                        parallel::TrafficStats& stats) const {
  const int64_t pay = parallel::wire_row_bytes(parallel::WireFormat::fp32, hidden);
  parallel::count_link_traffic(topo, send_rows, recv_rows, pay, stats.dispatch);
  parallel::count_link_traffic(topo, recv_rows, send_rows, pay + 4 * int64_t(top_k), stats.combine);
}

// ---- the dispatcher ----

struct NcclDispatcher::Impl {
  parallel::Topology topo;
  const NcclComm* comm = nullptr;
  parallel::TrafficStats stats;
  NcclDispatchPlan plan;
  int64_t tokens = 0, hidden = 0;
  int top_k = 0;
  bool planned = false;
  DeviceReceived recv;
  // Device scratch: send rows, received rows, headers both ways, combine.
  DeviceArray send_rows, recv_rows, send_head, recv_head, index, offsets, back;
  // Combine: the send slots of each token, ascending (CSR).
  std::vector<int32_t> slots;
  std::vector<int64_t> slot_offsets;
  // Backward scratch: combine_grad's packed [rows, H + K] both ways and its [T, H + K] sum.
  DeviceArray grad_send, grad_back, grad_sum;
};

NcclDispatcher::NcclDispatcher(const parallel::Topology& topo, const NcclComm& comm) : impl_(std::make_unique<Impl>()) {
  MOE_CHECK(comm.size() == topo.ep) << "NcclDispatcher: the communicator has " << comm.size()
                                    << " ranks, the EP group " << topo.ep;
  impl_->topo = topo;
  impl_->comm = &comm;
}
NcclDispatcher::~NcclDispatcher() = default;

const parallel::TrafficStats& NcclDispatcher::stats() const { return impl_->stats; }
void NcclDispatcher::reset_stats() { impl_->stats = parallel::TrafficStats{}; }

const DeviceReceived& NcclDispatcher::dispatch(const float* x, const int32_t* topk_idx, const float* topk_weight,
                                               int64_t num_tokens, int64_t hidden, int top_k, cudaStream_t stream) {
  Impl& m = *impl_;
  const parallel::Topology& topo = m.topo;
  const int K = top_k;
  m.tokens = num_tokens;
  m.hidden = hidden;
  m.top_k = K;
  m.plan = NcclDispatchPlan::build(topo, topk_idx, num_tokens, K);
  m.planned = true;
  const NcclDispatchPlan& plan = m.plan;
  const int64_t S = plan.total_send, R = plan.total_recv, H = hidden;

  // Payload: gather the send rows on the device, then one grouped all-to-allv.
  const int32_t* d_src = upload(m.index, plan.send_src, stream);
  float* d_send = static_cast<float*>(m.send_rows.reserve(std::max<int64_t>(1, S * H) * sizeof(float)));
  permute_rows(d_send, x, d_src, S, H, stream);
  m.recv.x = static_cast<float*>(m.recv_rows.reserve(std::max<int64_t>(1, R * H) * sizeof(float)));
  m.comm->all_to_allv(d_send, times(plan.send_rows, 4 * H), m.recv.x, times(plan.recv_rows, 4 * H), stream);

  // Header words (src rank, token, K ids, K weight bits), same order.
  const int64_t words = 2 + 2 * int64_t(K);
  std::vector<int32_t> head(S * words);
  for (int64_t i = 0; i < S; ++i) {
    const int64_t t = plan.send_src[i];
    int32_t* h = &head[i * words];
    h[0] = topo.ep_rank;
    h[1] = static_cast<int32_t>(t);
    std::memcpy(h + 2, topk_idx + t * K, 4 * K);
    std::memcpy(h + 2 + K, topk_weight + t * K, 4 * K);
  }
  const int32_t* d_head = upload(m.send_head, head, stream);
  int32_t* d_rhead = static_cast<int32_t*>(m.recv_head.reserve(std::max<int64_t>(1, R * words) * 4));
  m.comm->all_to_allv(d_head, times(plan.send_rows, 4 * words), d_rhead, times(plan.recv_rows, 4 * words), stream);
  std::vector<int32_t> rhead(R * words);
  if (R) MOE_CUDA_CHECK(cudaMemcpyAsync(rhead.data(), d_rhead, R * words * 4, cudaMemcpyDeviceToHost, stream));
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));

  DeviceReceived& out = m.recv;
  out.rows = R;
  out.hidden = H;
  out.top_k = K;
  out.src_rank.assign(R, 0);
  out.src_token.assign(R, 0);
  out.topk_idx.assign(R * K, 0);
  out.topk_weight.assign(R * K, 0.0f);
  for (int64_t r = 0; r < R; ++r) {
    const int32_t* h = &rhead[r * words];
    out.src_rank[r] = h[0];
    out.src_token[r] = h[1];
    std::memcpy(&out.topk_idx[r * K], h + 2, 4 * K);
    std::memcpy(&out.topk_weight[r * K], h + 2 + K, 4 * K);
    for (int k = 0; k < K; ++k) m.stats.expert_load += topo.is_local_expert(out.topk_idx[r * K + k]);
  }
  plan.account(topo, topk_idx, num_tokens, K, H, false, m.stats);

  // The combine's summation index: per token its send slots, ascending.
  m.slot_offsets.assign(num_tokens + 1, 0);
  for (int32_t t : plan.send_src) ++m.slot_offsets[t + 1];
  for (int64_t t = 0; t < num_tokens; ++t) m.slot_offsets[t + 1] += m.slot_offsets[t];
  m.slots.assign(S, 0);
  std::vector<int64_t> fill(m.slot_offsets.begin(), m.slot_offsets.end() - 1);
  for (int64_t i = 0; i < S; ++i) m.slots[fill[plan.send_src[i]]++] = static_cast<int32_t>(i);
  return out;
}

void NcclDispatcher::combine(const float* partial, float* y, cudaStream_t stream) {
  Impl& m = *impl_;
  MOE_CHECK(m.planned) << "combine called before dispatch";
  const NcclDispatchPlan& plan = m.plan;
  const int64_t H = m.hidden;
  float* d_back = static_cast<float*>(m.back.reserve(std::max<int64_t>(1, plan.total_send * H) * sizeof(float)));
  m.comm->all_to_allv(partial, times(plan.recv_rows, 4 * H), d_back, times(plan.send_rows, 4 * H), stream);
  const int32_t* d_slots = upload(m.index, m.slots, stream);
  const int64_t* d_off = upload(m.offsets, m.slot_offsets, stream);
  segment_sum_rows(y, d_back, d_slots, d_off, m.tokens, H, stream);
  parallel::count_link_traffic(m.topo, plan.recv_rows, plan.send_rows,
                               parallel::wire_row_bytes(parallel::WireFormat::fp32, H), m.stats.combine);
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void NcclDispatcher::dispatch_grad(const float* dy, float* dy_rows, cudaStream_t stream) {
  Impl& m = *impl_;
  MOE_CHECK(m.planned) << "dispatch_grad called before dispatch";
  const NcclDispatchPlan& plan = m.plan;
  const int64_t S = plan.total_send, H = m.hidden;
  const int32_t* d_src = upload(m.index, plan.send_src, stream);
  float* d_send = static_cast<float*>(m.send_rows.reserve(std::max<int64_t>(1, S * H) * sizeof(float)));
  permute_rows(d_send, dy, d_src, S, H, stream);
  m.comm->all_to_allv(d_send, times(plan.send_rows, 4 * H), dy_rows, times(plan.recv_rows, 4 * H), stream);
  parallel::count_link_traffic(m.topo, plan.send_rows, plan.recv_rows,
                               parallel::wire_row_bytes(parallel::WireFormat::fp32, H), m.stats.dispatch);
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void NcclDispatcher::combine_grad(const float* dx_partial, const float* dweight_rows, float* dx, float* d_topk_weight,
                                  cudaStream_t stream) {
  Impl& m = *impl_;
  MOE_CHECK(m.planned) << "combine_grad called before dispatch";
  const NcclDispatchPlan& plan = m.plan;
  const int64_t H = m.hidden, K = m.top_k, W = H + K, R = plan.total_recv, S = plan.total_send, T = m.tokens;
  // One record per received row: its H values then its K weight gradients (the MPI record's layout).
  float* send = static_cast<float*>(m.grad_send.reserve(std::max<int64_t>(1, R * W) * sizeof(float)));
  if (R > 0) {
    MOE_CUDA_CHECK(cudaMemcpy2DAsync(send, W * 4, dx_partial, H * 4, H * 4, R, cudaMemcpyDeviceToDevice, stream));
    MOE_CUDA_CHECK(cudaMemcpy2DAsync(send + H, W * 4, dweight_rows, K * 4, K * 4, R, cudaMemcpyDeviceToDevice, stream));
  }
  float* back = static_cast<float*>(m.grad_back.reserve(std::max<int64_t>(1, S * W) * sizeof(float)));
  m.comm->all_to_allv(send, times(plan.recv_rows, 4 * W), back, times(plan.send_rows, 4 * W), stream);
  const int32_t* d_slots = upload(m.index, m.slots, stream);
  const int64_t* d_off = upload(m.offsets, m.slot_offsets, stream);
  float* sum = static_cast<float*>(m.grad_sum.reserve(std::max<int64_t>(1, T * W) * sizeof(float)));
  segment_sum_rows(sum, back, d_slots, d_off, T, W, stream);
  if (T > 0) {
    MOE_CUDA_CHECK(cudaMemcpy2DAsync(dx, H * 4, sum, W * 4, H * 4, T, cudaMemcpyDeviceToDevice, stream));
    MOE_CUDA_CHECK(cudaMemcpy2DAsync(d_topk_weight, K * 4, sum + H, W * 4, K * 4, T, cudaMemcpyDeviceToDevice, stream));
  }
  parallel::count_link_traffic(m.topo, plan.recv_rows, plan.send_rows,
                               parallel::wire_row_bytes(parallel::WireFormat::fp32, H) + 4 * K, m.stats.combine);
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace moelab::cuda
