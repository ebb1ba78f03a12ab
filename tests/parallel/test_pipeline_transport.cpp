// The pipeline executor over a transport that matches sends and receives in
// issue order (no tags), under mpirun -np 2 and 4, for every schedule kind
// that fits, one step of the chain model (chain_stages.hpp):
//  - OrderedTransport (CPU): MPI messages that all carry one tag, so MPI's
//    non-overtaking rule matches them in order as NCCL does, with receives
//    posted by InOrderPosting (the NCCL transport's bookkeeping): loss and
//    every weight gradient equal the default MPI transport's bit for bit.
//  - NcclPipeline (one GPU per rank, else "skipped: no GPU"): the same with
//    NcclPipelineTransport (ncclSend/ncclRecv, device buffers).
#include <gtest/gtest.h>
#include <mpi.h>

#include <functional>
#include <map>
#include <memory>

#include "parallel/schedule/chain_stages.hpp"
#include "parallel/schedule/executor.hpp"
#include "parallel/schedule/generators.hpp"
#include "parallel/mpi_world.hpp"
#include "parallel/schedule/p2p_order.hpp"

#ifdef MOELAB_HAVE_NCCL
#include "backend/cuda/nccl.hpp"
#include "backend/cuda/nccl_pipeline.hpp"
#endif

namespace moelab::schedule {
namespace {

using test::world_rank;
using test::world_size;

// In-order matching over MPI: every message of the transport has tag 0 on a
// communicator of its own.
class OrderedMpiTransport : public PipelineTransport {
 public:
  OrderedMpiTransport(const Schedule& s, const Stages& stages, MPI_Comm comm)
      : posting_(s, world_rank()), stages_(stages) {
    MPI_Comm_dup(comm, &comm_);
  }
  ~OrderedMpiTransport() override { MPI_Comm_free(&comm_); }
  Handle post_recv(float* data, int64_t n, int source, int tag) override {
    for (const P2pMessage& m : posting_.to_post(source, tag)) {
      Slot& slot = slots_[next_];
      slot.buffer.assign(stages_.boundary_numel(m.microbatch), 0.f);
      MPI_Irecv(slot.buffer.data(), static_cast<int>(slot.buffer.size()), MPI_FLOAT, source, 0, comm_, &slot.request);
      recv_of_tag_[m.tag] = next_++;
    }
    const Handle h = recv_of_tag_.at(tag);
    recv_of_tag_.erase(tag);
    EXPECT_EQ(int64_t(slots_.at(h).buffer.size()), n);
    slots_.at(h).host = data;
    return h;
  }
  Handle send(const float* data, int64_t n, int dest, int tag) override {
    posting_.check_send(dest, tag);
    Slot& slot = slots_[next_];
    MPI_Isend(data, static_cast<int>(n), MPI_FLOAT, dest, 0, comm_, &slot.request);
    return next_++;
  }
  void wait(Handle h) override {
    MPI_Wait(&slots_.at(h).request, MPI_STATUS_IGNORE);
    finish(h);
  }
  bool done(Handle h) override {
    int flag = 0;
    MPI_Test(&slots_.at(h).request, &flag, MPI_STATUS_IGNORE);
    if (flag) finish(h);
    return flag != 0;
  }
  bool matches_in_order() const override { return true; }

 private:
  struct Slot {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<float> buffer;  // receives: where the message lands
    float* host = nullptr;
  };
  void finish(Handle h) {
    Slot& slot = slots_.at(h);
    if (slot.host) std::copy(slot.buffer.begin(), slot.buffer.end(), slot.host);
    slots_.erase(h);
  }
  InOrderPosting posting_;
  const Stages& stages_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::map<Handle, Slot> slots_;
  std::map<int, Handle> recv_of_tag_;
  Handle next_ = 0;
};

struct Step {
  double loss = 0;
  std::map<int, std::vector<float>> grads;  // this rank's stages
};

using MakeTransport = std::function<std::unique_ptr<PipelineTransport>(const Schedule&, const Stages&)>;

Step run_step(const Schedule& s, const ChainModel& m, const MakeTransport& make) {
  ChainStages stages(m, held_stages(s, world_rank()));
  std::unique_ptr<PipelineTransport> transport = make ? make(s, stages) : nullptr;
  ExecuteOptions options;
  options.transport = transport.get();
  execute(s, stages, MPI_COMM_WORLD, options);
  return {stages.loss(), stages.grads()};
}

// check(s, m, want) for every schedule kind on this world with mb_per_rank
// micro-batches per rank; want: the step over the default MPI transport.
void for_each_schedule(int mb_per_rank,
                       const std::function<void(const Schedule&, const ChainModel&, const Step&)>& check) {
  const int ranks = world_size();
  for (const std::string& kind : schedule_kinds()) {
    if (kind == "dualpipe" && ranks % 2) continue;
    const Schedule s = make_schedule(kind, ranks, mb_per_rank * ranks);
    SCOPED_TRACE(kind + " on " + std::to_string(ranks) + " ranks");
    ChainModel m;
    m.num_stages = s.num_stages;
    m.num_microbatches = s.num_microbatches;
    check(s, m, run_step(s, m, nullptr));
  }
}

void expect_same_step_as_mpi(const MakeTransport& make) {
  for_each_schedule(4, [&](const Schedule& s, const ChainModel& m, const Step& want) {
    const Step got = run_step(s, m, make);
    EXPECT_EQ(got.loss, want.loss);
    ASSERT_EQ(got.grads.size(), want.grads.size());
    for (const auto& [stage, g] : want.grads) EXPECT_EQ(got.grads.at(stage), g) << "stage " << stage;
  });
}

TEST(OrderedTransport, ChainStepEqualsMpiTransport) {
  expect_same_step_as_mpi([](const Schedule& s, const Stages& stages) {
    return std::make_unique<OrderedMpiTransport>(s, stages, MPI_COMM_WORLD);
  });
}

TEST(NcclPipeline, ChainStepEqualsMpiTransport) {
#ifdef MOELAB_HAVE_NCCL
  if (!cuda::every_rank_has_gpu(MPI_COMM_WORLD)) GTEST_SKIP() << "skipped: no GPU (needs one per rank)";
  cuda::select_local_device(MPI_COMM_WORLD);
  expect_same_step_as_mpi([](const Schedule& s, const Stages& stages) {
    return std::make_unique<cuda::NcclPipelineTransport>(s, stages, MPI_COMM_WORLD);
  });
#else
  GTEST_SKIP() << "skipped: no GPU (built without NCCL)";
#endif
}

// One NcclPipelineTransport for several steps of the same schedule (what
// `moelab train --device cuda` with parallel.pp > 1 does): begin_step with
// each step's stages, and every step equals the MPI transport's bit for bit.
TEST(NcclPipeline, OneTransportForSeveralSteps) {
#ifdef MOELAB_HAVE_NCCL
  if (!cuda::every_rank_has_gpu(MPI_COMM_WORLD)) GTEST_SKIP() << "skipped: no GPU (needs one per rank)";
  cuda::select_local_device(MPI_COMM_WORLD);
  for_each_schedule(2, [](const Schedule& s, const ChainModel& m, const Step& want) {
    std::unique_ptr<cuda::NcclPipelineTransport> transport;
    for (int step = 0; step < 3; ++step) {
      ChainStages stages(m, held_stages(s, world_rank()));
      if (!transport)
        transport = std::make_unique<cuda::NcclPipelineTransport>(s, stages, MPI_COMM_WORLD);
      else
        transport->begin_step(stages);
      ExecuteOptions options;
      options.transport = transport.get();
      execute(s, stages, MPI_COMM_WORLD, options);
      EXPECT_EQ(stages.loss(), want.loss) << "step " << step;
      EXPECT_EQ(stages.grads(), want.grads) << "step " << step;
    }
  });
#else
  GTEST_SKIP() << "skipped: no GPU (built without NCCL)";
#endif
}

}  // namespace
}  // namespace moelab::schedule
