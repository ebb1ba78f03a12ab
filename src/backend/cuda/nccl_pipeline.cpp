#include "backend/cuda/nccl_pipeline.hpp"

#include <map>
#include <unordered_map>
#include <vector>

#include "backend/cuda/device_array.hpp"
#include "backend/cuda/nccl.hpp"
#include "core/error.hpp"
#include "parallel/schedule/p2p_order.hpp"

namespace moelab::cuda {

namespace {

// One direction between two ranks: its own communicator (src is NCCL rank 0,
// dst rank 1) and stream.
struct Pair {
  int src = -1, dst = -1;
  MPI_Comm mpi = MPI_COMM_NULL;
  std::unique_ptr<NcclComm> nccl;
  cudaStream_t stream = nullptr;
};

struct Transfer {
  bool recv = false;
  float* host = nullptr;  // receive: where the executor wants the data
  int64_t n = 0;
  DeviceArray<float> device;
  cudaEvent_t event = nullptr;
  ~Transfer() {
    if (event) cudaEventDestroy(event);
  }
};

}  // namespace

struct NcclPipelineTransport::Impl {
  const schedule::Stages* stages;
  const schedule::Schedule schedule;
  int rank = 0;
  schedule::InOrderPosting posting;
  std::vector<Pair> pairs;  // the pairs this rank is in
  std::map<std::pair<int, int>, size_t> pair_of;
  cudaStream_t copy = nullptr;  // host <-> device copies (no NCCL work on it)
  std::unordered_map<Handle, std::unique_ptr<Transfer>> transfers;
  std::unordered_map<int, Handle> recv_of_tag;  // receives posted ahead, by tag
  Handle next_handle = 0;
  int64_t messages = 0, bytes = 0;

  Impl(const schedule::Schedule& s, const schedule::Stages& st, int r)
      : stages(&st), schedule(s), rank(r), posting(s, r) {}

  Pair& pair(int src, int dst) {
    auto it = pair_of.find({src, dst});
    MOE_CHECK(it != pair_of.end()) << "NCCL pipeline transport: the schedule has no messages from rank " << src
                                   << " to rank " << dst;
    return pairs[it->second];
  }

  Handle start(bool recv, float* host, int64_t n, const Pair& p) {
    auto t = std::make_unique<Transfer>();
    t->recv = recv;
    t->host = host;
    t->n = n;
    float* d = t->device.reserve(n);
    MOE_CUDA_CHECK(cudaEventCreateWithFlags(&t->event, cudaEventDisableTiming));
    const int peer = 1 - p.nccl->rank();
    if (recv) {
      MOE_NCCL_CHECK(ncclRecv(d, size_t(n), ncclFloat, peer, p.nccl->get(), p.stream));
    } else {
      MOE_CUDA_CHECK(cudaMemcpyAsync(d, host, n * sizeof(float), cudaMemcpyHostToDevice, copy));
      MOE_CUDA_CHECK(cudaStreamSynchronize(copy));
      MOE_NCCL_CHECK(ncclSend(d, size_t(n), ncclFloat, peer, p.nccl->get(), p.stream));
    }
    MOE_CUDA_CHECK(cudaEventRecord(t->event, p.stream));
    const Handle h = next_handle++;
    transfers[h] = std::move(t);
    return h;
  }

  // The transfer completed: a receive's data goes to the executor's buffer.
  void finish(Handle h) {
    Transfer& t = *transfers.at(h);
    if (t.recv) {
      MOE_CHECK(t.host != nullptr) << "NCCL pipeline transport: a receive completed before it was asked for";
      MOE_CUDA_CHECK(cudaMemcpyAsync(t.host, t.device.get(), t.n * sizeof(float), cudaMemcpyDeviceToHost, copy));
      MOE_CUDA_CHECK(cudaStreamSynchronize(copy));
    }
    transfers.erase(h);
  }
};

NcclPipelineTransport::NcclPipelineTransport(const schedule::Schedule& s, const schedule::Stages& stages,
                                             MPI_Comm comm)
    : impl_(std::make_unique<Impl>(s, stages, [comm] {
        int r = 0;
        MPI_Comm_rank(comm, &r);
        return r;
      }())) {
  Impl& m = *impl_;
  MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&m.copy, cudaStreamNonBlocking));
  // Every rank walks the same pairs in the same order (a sorted map of the
  // schedule), so the collective splits and the two-rank NCCL
  // initialisations cannot cross.
  for (const auto& entry : m.posting.order()) {
    const auto [src, dst] = entry.first;
    const bool member = m.rank == src || m.rank == dst;
    MPI_Comm sub = MPI_COMM_NULL;
    MOE_CHECK(MPI_Comm_split(comm, member ? 0 : MPI_UNDEFINED, m.rank == src ? 0 : 1, &sub) == MPI_SUCCESS)
        << "MPI_Comm_split for the NCCL pipeline pair " << src << " -> " << dst;
    if (!member) continue;
    Pair p;
    p.src = src;
    p.dst = dst;
    p.mpi = sub;
    p.nccl = std::make_unique<NcclComm>(sub);
    MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&p.stream, cudaStreamNonBlocking));
    // One float each way now, while both ranks are here: NCCL connects a
    // pair on its first send/recv, which must not happen later in the
    // middle of the schedule while one side waits for a third rank.
    DeviceArray<float> probe;
    float* d = probe.reserve(1);
    if (m.rank == src)
      MOE_NCCL_CHECK(ncclSend(d, 1, ncclFloat, 1, p.nccl->get(), p.stream));
    else
      MOE_NCCL_CHECK(ncclRecv(d, 1, ncclFloat, 0, p.nccl->get(), p.stream));
    MOE_CUDA_CHECK(cudaStreamSynchronize(p.stream));
    m.pair_of[entry.first] = m.pairs.size();
    m.pairs.push_back(std::move(p));
  }
}

NcclPipelineTransport::~NcclPipelineTransport() {
  Impl& m = *impl_;
  for (Pair& p : m.pairs) cudaStreamSynchronize(p.stream);
  m.transfers.clear();
  for (Pair& p : m.pairs) {
    p.nccl.reset();
    if (p.stream) cudaStreamDestroy(p.stream);
    if (p.mpi != MPI_COMM_NULL) MPI_Comm_free(&p.mpi);
  }
  if (m.copy) cudaStreamDestroy(m.copy);
}

void NcclPipelineTransport::begin_step(const schedule::Stages& stages) {
  Impl& m = *impl_;
  MOE_CHECK(m.transfers.empty() && m.recv_of_tag.empty())
      << "NCCL pipeline transport: begin_step with " << m.transfers.size() << " transfers of the last step in flight";
  m.stages = &stages;
  m.posting = schedule::InOrderPosting(m.schedule, m.rank);
}

NcclPipelineTransport::Handle NcclPipelineTransport::post_recv(float* data, int64_t n, int source, int tag) {
  Impl& m = *impl_;
  // Post this pair's receives in the sender's order up to this message.
  for (const schedule::P2pMessage& msg : m.posting.to_post(source, tag))
    m.recv_of_tag[msg.tag] = m.start(true, nullptr, m.stages->boundary_numel(msg.microbatch), m.pair(source, m.rank));
  auto it = m.recv_of_tag.find(tag);
  MOE_CHECK(it != m.recv_of_tag.end()) << "NCCL pipeline transport: message tag " << tag << " received twice";
  const Handle h = it->second;
  m.recv_of_tag.erase(it);
  Transfer& t = *m.transfers.at(h);
  MOE_CHECK(t.n == n) << "NCCL pipeline transport: message tag " << tag << " has " << t.n << " elements, " << n
                      << " expected";
  t.host = data;
  return h;
}

NcclPipelineTransport::Handle NcclPipelineTransport::send(const float* data, int64_t n, int dest, int tag) {
  Impl& m = *impl_;
  m.posting.check_send(dest, tag);
  ++m.messages;
  m.bytes += n * int64_t(sizeof(float));
  return m.start(false, const_cast<float*>(data), n, m.pair(m.rank, dest));
}

void NcclPipelineTransport::wait(Handle h) {
  Impl& m = *impl_;
  MOE_CUDA_CHECK(cudaEventSynchronize(m.transfers.at(h)->event));
  m.finish(h);
}

bool NcclPipelineTransport::done(Handle h) {
  Impl& m = *impl_;
  const cudaError_t rc = cudaEventQuery(m.transfers.at(h)->event);
  if (rc == cudaErrorNotReady) return false;
  MOE_CUDA_CHECK(rc);
  m.finish(h);
  return true;
}

int64_t NcclPipelineTransport::messages_sent() const { return impl_->messages; }
int64_t NcclPipelineTransport::bytes_sent() const { return impl_->bytes; }

}  // namespace moelab::cuda
