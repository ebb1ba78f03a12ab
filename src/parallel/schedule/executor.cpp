#include "parallel/schedule/executor.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <unordered_map>

#include "core/error.hpp"
#include "parallel/comm_progress.hpp"
#include "parallel/overlap_pair.hpp"
#include "parallel/schedule/p2p_order.hpp"
#include "parallel/schedule/validate.hpp"

namespace moelab::schedule {

namespace {

enum Payload : int { kActivation = kActivationPayload, kGradient = kGradientPayload };

// A send or receive in flight: the buffer must live (and stay put) until the
// transport says it completed.
struct InFlight {
  PipelineTransport::Handle ticket = -1;
  std::vector<float> buffer;
};

// The default transport: MPI point-to-point with tags, the requests handed to
// the progress engine (pipeline class).
class MpiTransport : public PipelineTransport {
 public:
  MpiTransport(MPI_Comm comm, parallel::CommProgress& progress) : comm_(comm), progress_(progress) {}
  Handle post_recv(float* data, int64_t n, int source, int tag) override {
    MPI_Request request = MPI_REQUEST_NULL;
    MOE_MPI_CHECK(MPI_Irecv(data, static_cast<int>(n), MPI_FLOAT, source, tag, comm_, &request));
    return progress_.track(request, parallel::CommClass::pipeline);
  }
  Handle send(const float* data, int64_t n, int dest, int tag) override {
    MPI_Request request = MPI_REQUEST_NULL;
    MOE_MPI_CHECK(MPI_Isend(data, static_cast<int>(n), MPI_FLOAT, dest, tag, comm_, &request));
    return progress_.track(request, parallel::CommClass::pipeline);
  }
  void wait(Handle h) override { progress_.wait(h); }
  bool done(Handle h) override { return progress_.done(h); }

 private:
  MPI_Comm comm_;
  parallel::CommProgress& progress_;
};

class RankRunner {
 public:
  RankRunner(const Schedule& s, Stages& stages, MPI_Comm comm, int rank, const ExecuteOptions& options)
      : s_(s),
        stages_(stages),
        comm_(comm),
        rank_(rank),
        overlap_(options.overlap),
        progress_(options.progress_thread && parallel::CommProgress::thread_supported()),
        mpi_transport_(comm, progress_),
        transport_(options.transport ? options.transport : &mpi_transport_),
        ordered_sends_(transport_->matches_in_order()) {
  }

  ExecuteResult run() {
    ExecuteResult out;
    out.overlapped = overlap_;
    out.progress_thread = progress_.threaded();
    parallel::CommScope scope(&progress_);
    MOE_MPI_CHECK(MPI_Barrier(comm_));
    const double t0 = MPI_Wtime();
    out.origin_s = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    const std::vector<Op>& program = s_.ops[rank_];
    for (size_t i = 0; i < program.size(); ++i) {
      const Op& op = program[i];
      reap_sends();
      // Receive what the op needs (blocking on the producer's Isend), then
      // post the next op's receives so they land while this one computes.
      const double wait_start = MPI_Wtime();
      std::vector<float> f_input, b_grad_output;
      const int b_mb = op.backward_microbatch(), b_stage = op.backward_stage();
      if (op.has_forward() && op.stage > 0) f_input = receive(op.microbatch, op.stage - 1, kActivation);
      if (b_mb >= 0 && b_stage + 1 < s_.num_stages) b_grad_output = receive(b_mb, b_stage + 1, kGradient);
      const double start = MPI_Wtime();
      out.wait_s += start - wait_start;
      if (i + 1 < program.size()) post_receives(program[i + 1]);

      // Compute, and send each result as soon as it exists (in an F&B pair,
      // the forward's activation goes out while the backward still computes).
      auto forward = [&] {
        std::vector<float> f_output;
        if (op.stage + 1 < s_.num_stages) f_output.assign(stages_.boundary_numel(op.microbatch), 0.f);
        stages_.forward(op.microbatch, op.stage, f_input, f_output);
        if (!f_output.empty()) send(op.microbatch, op.stage, kActivation, std::move(f_output));
      };
      auto backward = [&](bool defer_weight) {
        std::vector<float> b_grad_input;
        if (b_stage > 0) b_grad_input.assign(stages_.boundary_numel(b_mb), 0.f);
        stages_.backward_input(b_mb, b_stage, b_grad_output, b_grad_input, defer_weight);
        if (!b_grad_input.empty()) send(b_mb, b_stage, kGradient, std::move(b_grad_input));
      };
      switch (op.kind) {
        case OpKind::F: forward(); break;
        case OpKind::B: backward(false); break;
        case OpKind::BInput: backward(true); break;
        case OpKind::W: stages_.backward_weight(op.microbatch, op.stage); break;
        case OpKind::FB:
          if (overlap_) {
            // A transport matching in issue order gets the two sends after
            // both halves, the forward's first (p2p_send_order).
            defer_sends_ = ordered_sends_;
            out.fb_switches += parallel::OverlapPair::run(forward, [&] { backward(false); });
            defer_sends_ = false;
            flush_deferred_sends();
          } else {
            forward();
            backward(false);
          }
          break;
      }
      const double end = MPI_Wtime();
      out.compute_s += end - start;
      out.events.push_back(make_event(s_, rank_, op, start - t0, end - t0));
    }
    for (auto& p : sends_) transport_->wait(p->ticket);
    sends_.clear();
    MOE_CHECK(local_.empty() && posted_.empty())
        << "pipeline executor: rank " << rank_ << " ends with " << local_.size() << " unconsumed local hand-overs and "
        << posted_.size() << " unused receives";
    out.comm[0] = progress_.figures(parallel::CommClass::expert);
    out.comm[1] = progress_.figures(parallel::CommClass::pipeline);
    out.comm_total = progress_.total();
    progress_.reset();
    return out;
  }

 private:
  int tag(int mb, int stage, Payload payload) const { return p2p_tag(s_, mb, stage, payload); }

  // Posts the receives of an op's inputs that come from other ranks (once).
  void post_receives(const Op& op) {
    if (op.has_forward() && op.stage > 0) post(op.microbatch, op.stage - 1, kActivation);
    const int b_mb = op.backward_microbatch(), b_stage = op.backward_stage();
    if (b_mb >= 0 && b_stage + 1 < s_.num_stages) post(b_mb, b_stage + 1, kGradient);
  }

  void post(int mb, int from_stage, Payload payload) {
    const int source = s_.rank_of(mb, from_stage);
    const int t = tag(mb, from_stage, payload);
    if (source == rank_ || posted_.count(t)) return;
    auto p = std::make_unique<InFlight>();
    p->buffer.assign(stages_.boundary_numel(mb), 0.f);
    p->ticket = transport_->post_recv(p->buffer.data(), static_cast<int64_t>(p->buffer.size()), source, t);
    posted_[t] = std::move(p);
  }

  // Data produced by (mb, from_stage), an activation for from_stage + 1 or a
  // gradient for from_stage - 1: handed over in memory when that stage is on
  // this rank, else received (waiting for it).
  std::vector<float> receive(int mb, int from_stage, Payload payload) {
    const int t = tag(mb, from_stage, payload);
    if (s_.rank_of(mb, from_stage) == rank_) {
      auto it = local_.find(t);
      MOE_CHECK(it != local_.end()) << "pipeline executor: rank " << rank_ << " needs micro-batch " << mb
                                    << (payload == kActivation ? " activation" : " gradient") << " of stage "
                                    << from_stage << " before it was computed";
      std::vector<float> data = std::move(it->second);
      local_.erase(it);
      return data;
    }
    post(mb, from_stage, payload);
    auto it = posted_.find(t);
    transport_->wait(it->second->ticket);
    std::vector<float> data = std::move(it->second->buffer);
    posted_.erase(it);
    return data;
  }

  void send(int mb, int from_stage, Payload payload, std::vector<float>&& buffer) {
    const int to_stage = payload == kActivation ? from_stage + 1 : from_stage - 1;
    const int dest = s_.rank_of(mb, to_stage);
    const int t = tag(mb, from_stage, payload);
    if (dest == rank_) {
      local_[t] = std::move(buffer);
      return;
    }
    if (defer_sends_) {
      deferred_.push_back({payload, dest, t, std::move(buffer)});
      return;
    }
    issue_send(dest, t, std::move(buffer));
  }

  // Hands a send to the transport; its buffer lives in sends_ until done.
  void issue_send(int dest, int t, std::vector<float>&& buffer) {
    auto p = std::make_unique<InFlight>();
    p->buffer = std::move(buffer);
    p->ticket = transport_->send(p->buffer.data(), static_cast<int64_t>(p->buffer.size()), dest, t);
    sends_.push_back(std::move(p));
  }

  // Issues the sends an F&B op held back: activations (the forward's) first.
  void flush_deferred_sends() {
    std::stable_sort(deferred_.begin(), deferred_.end(),
                     [](const Deferred& a, const Deferred& b) { return a.payload < b.payload; });
    for (Deferred& d : deferred_) issue_send(d.dest, d.tag, std::move(d.buffer));
    deferred_.clear();
  }

  // Frees the buffers of completed sends.
  void reap_sends() {
    std::erase_if(sends_, [&](const std::unique_ptr<InFlight>& p) { return transport_->done(p->ticket); });
  }

  struct Deferred {
    Payload payload;
    int dest, tag;
    std::vector<float> buffer;
  };

  const Schedule& s_;
  Stages& stages_;
  MPI_Comm comm_;
  int rank_;
  bool overlap_;
  parallel::CommProgress progress_;
  MpiTransport mpi_transport_;
  PipelineTransport* transport_;
  bool ordered_sends_;
  bool defer_sends_ = false;
  std::vector<Deferred> deferred_;
  std::vector<std::unique_ptr<InFlight>> sends_;
  std::unordered_map<int, std::vector<float>> local_;  // same-rank hand-overs by tag
  std::unordered_map<int, std::unique_ptr<InFlight>> posted_;  // receives posted ahead, by tag
};

}  // namespace

ExecuteResult execute(const Schedule& s, Stages& stages, MPI_Comm comm, const ExecuteOptions& options) {
  int rank = 0, size = 0;
  MOE_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MOE_MPI_CHECK(MPI_Comm_size(comm, &size));
  MOE_CHECK(size == s.num_ranks) << "pipeline executor: schedule " << s.kind << " is for " << s.num_ranks
                                 << " ranks, the communicator has " << size;
  validate(s);
  int* tag_ub = nullptr;
  int found = 0;
  MOE_MPI_CHECK(MPI_Comm_get_attr(comm, MPI_TAG_UB, &tag_ub, &found));
  const int64_t max_tag = 2 * static_cast<int64_t>(s.num_microbatches) * s.num_stages;
  MOE_CHECK(!found || max_tag <= *tag_ub) << "pipeline executor: " << s.num_microbatches << " micro-batches x "
                                          << s.num_stages << " stages need tags up to " << max_tag
                                          << ", above MPI_TAG_UB " << *tag_ub;
  return RankRunner(s, stages, comm, rank, options).run();
}

namespace {

// How far this rank's time 0 lies after the earliest rank's. Each rank times
// its ops from its own exit of the start barrier, and ranks leave a barrier
// milliseconds apart when cores are oversubscribed, which shifted whole ranks
// against each other (receives seemed to end before their sends began, and
// per-rank end times were off by the skew). origin_s is read on the steady
// clock, one clock for the processes of a node (MPI_Wtime is not: Open MPI
// counts it from each process's MPI_Init); across nodes the origins stay apart.
double origin_shift_s(double origin_s, MPI_Comm comm) {
  int size = 0, node_size = 0;
  MOE_MPI_CHECK(MPI_Comm_size(comm, &size));
  MPI_Comm node = MPI_COMM_NULL;
  MOE_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  MOE_MPI_CHECK(MPI_Comm_size(node, &node_size));
  MOE_MPI_CHECK(MPI_Comm_free(&node));
  double earliest_s = origin_s;
  MOE_MPI_CHECK(MPI_Allreduce(&origin_s, &earliest_s, 1, MPI_DOUBLE, MPI_MIN, comm));
  return node_size == size ? origin_s - earliest_s : 0.0;
}

}  // namespace

SimResult gather_measured(const Schedule& s, const ExecuteResult& mine, MPI_Comm comm, int root) {
  int rank = 0, size = 0;
  MOE_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MOE_MPI_CHECK(MPI_Comm_size(comm, &size));
  constexpr int kInts = 10;
  const double shift_s = origin_shift_s(mine.origin_s, comm);
  const int n = static_cast<int>(mine.events.size());
  std::vector<int32_t> ints(static_cast<size_t>(n) * kInts);
  std::vector<double> times(static_cast<size_t>(n) * 2);
  for (int i = 0; i < n; ++i) {
    const Event& e = mine.events[i];
    const int32_t row[kInts] = {e.rank,    static_cast<int32_t>(e.kind), e.microbatch, e.stage,   e.chunk,
                                e.direction, e.b_microbatch, e.b_stage,   e.b_chunk, e.b_direction};
    std::copy(row, row + kInts, ints.begin() + static_cast<size_t>(i) * kInts);
    times[2 * i] = e.start_s + shift_s;
    times[2 * i + 1] = e.end_s + shift_s;
  }
  std::vector<int> counts(size), int_counts(size), int_displs(size), time_counts(size), time_displs(size);
  MOE_MPI_CHECK(MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, root, comm));
  int total = 0;
  for (int r = 0; r < size; ++r) {
    int_counts[r] = counts[r] * kInts;
    int_displs[r] = total * kInts;
    time_counts[r] = counts[r] * 2;
    time_displs[r] = total * 2;
    total += counts[r];
  }
  std::vector<int32_t> all_ints(rank == root ? static_cast<size_t>(total) * kInts : 0);
  std::vector<double> all_times(rank == root ? static_cast<size_t>(total) * 2 : 0);
  MOE_MPI_CHECK(MPI_Gatherv(ints.data(), n * kInts, MPI_INT32_T, all_ints.data(), int_counts.data(),
                            int_displs.data(), MPI_INT32_T, root, comm));
  MOE_MPI_CHECK(MPI_Gatherv(times.data(), n * 2, MPI_DOUBLE, all_times.data(), time_counts.data(),
                            time_displs.data(), MPI_DOUBLE, root, comm));
  SimResult out;
  if (rank != root) return out;
  out.ranks.resize(s.num_ranks);
  const std::vector<int64_t> peaks = peak_activations(s);
  for (int r = 0; r < s.num_ranks; ++r) {
    out.ranks[r].peak_activations = peaks[r];
    out.ranks[r].param_copies = s.chunks_on(r);
  }
  out.events.resize(total);
  for (int i = 0; i < total; ++i) {
    const int32_t* row = &all_ints[static_cast<size_t>(i) * kInts];
    Event& e = out.events[i];
    e.rank = row[0];
    e.kind = static_cast<OpKind>(row[1]);
    e.microbatch = row[2];
    e.stage = row[3];
    e.chunk = row[4];
    e.direction = row[5];
    e.b_microbatch = row[6];
    e.b_stage = row[7];
    e.b_chunk = row[8];
    e.b_direction = row[9];
    e.start_s = all_times[2 * i];
    e.end_s = all_times[2 * i + 1];
    RankFigures& f = out.ranks[e.rank];
    f.busy_s += e.end_s - e.start_s;
    f.end_s = std::max(f.end_s, e.end_s);
    ++f.num_ops;
    ++f.num_ops_of[static_cast<int>(e.kind)];
    out.makespan_s = std::max(out.makespan_s, e.end_s);
  }
  for (auto& f : out.ranks) f.idle_s = out.makespan_s - f.busy_s;
  return out;
}

}  // namespace moelab::schedule
