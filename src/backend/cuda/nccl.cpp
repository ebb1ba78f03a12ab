#include "backend/cuda/nccl.hpp"

#include <algorithm>
#include <cstring>

#include "backend/cuda/device_array.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "parallel/wire.hpp"

namespace moelab::cuda {

namespace {

void mpi_check(int rc, const char* what) { MOE_CHECK(rc == MPI_SUCCESS) << what << " failed (MPI error " << rc << ")"; }

template <typename T>
T* upload_async(DeviceArray<T>& a, const std::vector<T>& host, cudaStream_t stream) {
  T* d = a.reserve(static_cast<int64_t>(host.size()));
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

NcclExchange NcclExchange::build(const parallel::Topology& topo, const std::vector<std::vector<int64_t>>& lists,
                                 int64_t rows) {
  NcclExchange ex;
  ex.send_rows.assign(topo.ep, 0);
  ex.recv_rows.assign(topo.ep, 0);
  for (int p = 0; p < topo.ep; ++p) {
    ex.send_rows[p] = static_cast<int>(lists[p].size());
    for (int64_t t : lists[p]) ex.send_src.push_back(static_cast<int32_t>(t));
  }
  mpi_check(MPI_Alltoall(ex.send_rows.data(), 1, MPI_INT, ex.recv_rows.data(), 1, MPI_INT, topo.ep_comm()),
            "MPI_Alltoall of the row counts");
  ex.total_send = static_cast<int64_t>(ex.send_src.size());
  for (int c : ex.recv_rows) ex.total_recv += c;
  ex.offsets.assign(rows + 1, 0);
  for (int32_t t : ex.send_src) ++ex.offsets[t + 1];
  for (int64_t t = 0; t < rows; ++t) ex.offsets[t + 1] += ex.offsets[t];
  ex.slots.assign(ex.total_send, 0);
  std::vector<int64_t> fill(ex.offsets.begin(), ex.offsets.end() - 1);
  for (int64_t i = 0; i < ex.total_send; ++i) ex.slots[fill[ex.send_src[i]]++] = static_cast<int32_t>(i);
  return ex;
}

void NcclExchange::count_forward(const parallel::Topology& topo, int64_t rec, parallel::LinkCounters& c) const {
  parallel::count_link_traffic(topo, send_rows, recv_rows, rec, c);
}

void NcclExchange::count_reverse(const parallel::Topology& topo, int64_t rec, parallel::LinkCounters& c) const {
  parallel::count_link_traffic(topo, recv_rows, send_rows, rec, c);
}

NcclDispatchPlan NcclDispatchPlan::begin(const parallel::Topology& topo, parallel::DispatchMode mode,
                                         const int32_t* topk_idx, int64_t num_tokens, int top_k,
                                         parallel::TrafficStats* stats) {
  NcclDispatchPlan plan;
  plan.mode = mode;
  plan.hop1 =
      NcclExchange::build(topo, parallel::dispatch_send_lists(topo, mode, topk_idx, num_tokens, top_k, stats), num_tokens);
  return plan;
}

void NcclDispatchPlan::relay(const parallel::Topology& topo, const uint8_t* headers, int64_t stride, int top_k) {
  MOE_CHECK(two_hop()) << "NcclDispatchPlan::relay in direct mode";
  hop2 = NcclExchange::build(topo, parallel::relay_send_lists(topo, headers, stride, hop1.total_recv, top_k),
                             hop1.total_recv);
}

void NcclDispatchPlan::count_forward(const parallel::Topology& topo, int64_t rec, parallel::LinkCounters& c) const {
  hop1.count_forward(topo, rec, c);
  if (two_hop()) hop2.count_forward(topo, rec, c);
}

void NcclDispatchPlan::count_reverse(const parallel::Topology& topo, int64_t rec, parallel::LinkCounters& c) const {
  if (two_hop()) hop2.count_reverse(topo, rec, c);
  hop1.count_reverse(topo, rec, c);
}

// ---- the dispatcher ----

namespace {

// An exchange's index arrays on the device.
struct DeviceHop {
  DeviceArray<int32_t> src, slots;
  DeviceArray<int64_t> offsets;
  void upload(const NcclExchange& ex, cudaStream_t stream) {
    upload_async(src, ex.send_src, stream);
    upload_async(slots, ex.slots, stream);
    upload_async(offsets, ex.offsets, stream);
  }
};

}  // namespace

struct NcclDispatcher::Impl {
  parallel::Topology topo;
  const NcclComm* comm = nullptr;
  parallel::DispatchOptions opt;
  parallel::TrafficStats stats;
  NcclDispatchPlan plan;
  int64_t tokens = 0, hidden = 0;
  int top_k = 0;
  bool planned = false;
  DeviceReceived recv;
  DeviceHop hop1, hop2;
  // Device scratch: records before, between and after the hops; rows back.
  DeviceArray<uint8_t> records, send, relayed, arrived, back1, back2;
  DeviceArray<float> rows, node_sum;
  std::vector<uint8_t> host_head;  // headers on their way to / from the device

  // src [rows, rec] (indexed by the exchange's send_src) -> out [total_recv, rec].
  uint8_t* forward(const NcclExchange& ex, const DeviceHop& d, const uint8_t* src, int64_t rec,
                   DeviceArray<uint8_t>& out, cudaStream_t stream) {
    uint8_t* s = send.reserve(ex.total_send * rec);
    gather_records(s, src, d.src.get(), ex.total_send, rec, stream);
    uint8_t* o = out.reserve(ex.total_recv * rec);
    comm->all_to_allv(s, times(ex.send_rows, rec), o, times(ex.recv_rows, rec), stream);
    return o;
  }

  // Records [T, rec] -> [R, rec] on the final ranks (through the relay in two_hop).
  uint8_t* forward_all(const uint8_t* src, int64_t rec, cudaStream_t stream) {
    if (!plan.two_hop()) return forward(plan.hop1, hop1, src, rec, arrived, stream);
    const uint8_t* mid = forward(plan.hop1, hop1, src, rec, relayed, stream);
    return forward(plan.hop2, hop2, mid, rec, arrived, stream);
  }

  // values [R, H] and extras [R, X] (FP32) -> out [T, H], out_x [T, X] (=),
  // summed over destinations in the MPI path's order with its wire rounding.
  void reverse_sum(const float* values, const float* extras, int64_t x_cols, parallel::WireFormat fmt, float* out,
                   float* out_x, parallel::LinkCounters& c, cudaStream_t stream) {
    const int64_t H = hidden, pay = parallel::wire_row_bytes(fmt, H), rec = pay + 4 * x_cols;
    auto encode = [&](const float* v, const float* e, int64_t n) {
      uint8_t* b = records.reserve(n * rec);
      wire_encode_rows(b, rec, v, n, H, fmt, stream);
      if (x_cols && n)
        MOE_CUDA_CHECK(cudaMemcpy2DAsync(b + pay, rec, e, 4 * x_cols, 4 * x_cols, n, cudaMemcpyDeviceToDevice, stream));
      return b;
    };
    auto reverse = [&](const NcclExchange& ex, const DeviceHop& d, const uint8_t* b, DeviceArray<uint8_t>& back,
                       float* acc, float* acc_x, int64_t acc_rows) {
      uint8_t* k = back.reserve(ex.total_send * rec);
      comm->all_to_allv(b, times(ex.recv_rows, rec), k, times(ex.send_rows, rec), stream);
      ex.count_reverse(topo, rec, c);
      wire_segment_sum(acc, k, rec, fmt, d.slots.get(), d.offsets.get(), acc_rows, H, stream);
      if (x_cols)
        wire_segment_sum(acc_x, k + pay, rec, parallel::WireFormat::fp32, d.slots.get(), d.offsets.get(), acc_rows,
                         x_cols, stream);
    };
    if (!plan.two_hop()) {
      reverse(plan.hop1, hop1, encode(values, extras, plan.hop1.total_recv), back1, out, out_x, tokens);
      return;
    }
    // Hop 2 back: expert ranks -> relay, which sums its node's partials;
    // hop 1 back: relay -> source, one row per (token, node).
    const int64_t relay_rows = plan.hop1.total_recv, W = H + x_cols;
    float* sum = node_sum.reserve(relay_rows * W);
    reverse(plan.hop2, hop2, encode(values, extras, plan.hop2.total_recv), back2, sum, sum + relay_rows * H,
            relay_rows);
    reverse(plan.hop1, hop1, encode(sum, sum + relay_rows * H, relay_rows), back1, out, out_x, tokens);
  }
};

NcclDispatcher::NcclDispatcher(const parallel::Topology& topo, const NcclComm& comm, parallel::DispatchOptions options)
    : impl_(std::make_unique<Impl>()) {
  MOE_CHECK(comm.size() == topo.ep) << "NcclDispatcher: the communicator has " << comm.size()
                                    << " ranks, the EP group " << topo.ep;
  MOE_CHECK(options.combine_format != parallel::WireFormat::fp8)
      << "combine wire format fp8 is not supported (DeepSeek-V3 combines in BF16): use bf16 or fp32";
  impl_->topo = topo;
  impl_->comm = &comm;
  impl_->opt = options;
}
NcclDispatcher::~NcclDispatcher() = default;

const parallel::TrafficStats& NcclDispatcher::stats() const { return impl_->stats; }
void NcclDispatcher::reset_stats() { impl_->stats = parallel::TrafficStats{}; }

const DeviceReceived& NcclDispatcher::dispatch(const float* x, const int32_t* topk_idx, const float* topk_weight,
                                               int64_t num_tokens, int64_t hidden, int top_k, cudaStream_t stream) {
  Impl& m = *impl_;
  Timer timer;
  const parallel::Topology& topo = m.topo;
  const int K = top_k;
  const int64_t H = hidden, T = num_tokens, head = parallel::dispatch_header_bytes(K),
                rec = head + parallel::wire_row_bytes(m.opt.dispatch_format, H);
  m.tokens = T;
  m.hidden = H;
  m.top_k = K;
  m.plan = NcclDispatchPlan::begin(topo, m.opt.mode, topk_idx, T, K, &m.stats);
  m.planned = true;
  m.hop1.upload(m.plan.hop1, stream);

  // Records: headers from the host, payload encoded on the device.
  m.host_head.assign(T * head, 0);
  for (int64_t t = 0; t < T; ++t)
    parallel::write_dispatch_header(&m.host_head[t * head], topo.ep_rank, static_cast<int32_t>(t), topk_idx + t * K,
                                    topk_weight + t * K, K);
  uint8_t* records = m.records.reserve(T * rec);
  if (T)
    MOE_CUDA_CHECK(cudaMemcpy2DAsync(records, rec, m.host_head.data(), head, head, T, cudaMemcpyHostToDevice, stream));
  wire_encode_rows(records + head, rec, x, T, H, m.opt.dispatch_format, stream);

  const uint8_t* arrived = nullptr;
  if (!m.plan.two_hop()) {
    arrived = m.forward(m.plan.hop1, m.hop1, records, rec, m.arrived, stream);
  } else {
    const uint8_t* mid = m.forward(m.plan.hop1, m.hop1, records, rec, m.relayed, stream);
    // The relay reads the expert ids of what it received to forward it.
    const int64_t R1 = m.plan.hop1.total_recv;
    m.host_head.assign(R1 * head, 0);
    if (R1)
      MOE_CUDA_CHECK(cudaMemcpy2DAsync(m.host_head.data(), head, mid, rec, head, R1, cudaMemcpyDeviceToHost, stream));
    MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
    m.plan.relay(topo, m.host_head.data(), head, K);
    m.hop2.upload(m.plan.hop2, stream);
    arrived = m.forward(m.plan.hop2, m.hop2, mid, rec, m.arrived, stream);
  }
  m.plan.count_forward(topo, rec, m.stats.dispatch);

  const int64_t R = m.plan.rows_received();
  DeviceReceived& out = m.recv;
  out.rows = R;
  out.hidden = H;
  out.top_k = K;
  out.x = m.rows.reserve(R * H);
  wire_decode_rows(out.x, arrived + head, rec, R, H, m.opt.dispatch_format, stream);
  m.host_head.assign(R * head, 0);
  if (R) MOE_CUDA_CHECK(cudaMemcpy2DAsync(m.host_head.data(), head, arrived, rec, head, R, cudaMemcpyDeviceToHost, stream));
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
  out.src_rank.assign(R, 0);
  out.src_token.assign(R, 0);
  out.topk_idx.assign(R * K, 0);
  out.topk_weight.assign(R * K, 0.0f);
  for (int64_t r = 0; r < R; ++r) {
    parallel::read_dispatch_header(&m.host_head[r * head], K, &out.src_rank[r], &out.src_token[r],
                                   &out.topk_idx[r * K], &out.topk_weight[r * K]);
    for (int k = 0; k < K; ++k) m.stats.expert_load += topo.is_local_expert(out.topk_idx[r * K + k]);
  }
  m.stats.rows_received += R;
  m.stats.dispatch_time_s += timer.seconds();
  return out;
}

void NcclDispatcher::combine(const float* partial, float* y, cudaStream_t stream) {
  Impl& m = *impl_;
  MOE_CHECK(m.planned) << "combine called before dispatch";
  Timer timer;
  m.reverse_sum(partial, nullptr, 0, m.opt.combine_format, y, nullptr, m.stats.combine, stream);
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
  m.stats.combine_time_s += timer.seconds();
}

void NcclDispatcher::dispatch_grad(const float* dy, float* dy_rows, cudaStream_t stream) {
  Impl& m = *impl_;
  MOE_CHECK(m.planned) << "dispatch_grad called before dispatch";
  Timer timer;
  const parallel::WireFormat fmt = m.opt.combine_format;
  const int64_t H = m.hidden, rec = parallel::wire_row_bytes(fmt, H);
  uint8_t* records = m.records.reserve(m.tokens * rec);
  wire_encode_rows(records, rec, dy, m.tokens, H, fmt, stream);
  const uint8_t* arrived = m.forward_all(records, rec, stream);
  m.plan.count_forward(m.topo, rec, m.stats.dispatch);
  wire_decode_rows(dy_rows, arrived, rec, m.plan.rows_received(), H, fmt, stream);
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
  m.stats.dispatch_time_s += timer.seconds();
}

void NcclDispatcher::combine_grad(const float* dx_partial, const float* dweight_rows, float* dx, float* d_topk_weight,
                                  cudaStream_t stream) {
  Impl& m = *impl_;
  MOE_CHECK(m.planned) << "combine_grad called before dispatch";
  Timer timer;
  m.reverse_sum(dx_partial, dweight_rows, m.top_k, m.opt.combine_format, dx, d_topk_weight, m.stats.combine, stream);
  MOE_CUDA_CHECK(cudaStreamSynchronize(stream));
  m.stats.combine_time_s += timer.seconds();
}

}  // namespace moelab::cuda
