#include "parallel/topology.hpp"

#include <sstream>

#include "core/error.hpp"

namespace moelab::parallel {

struct Topology::Comms {
  MPI_Comm world = MPI_COMM_NULL, ep = MPI_COMM_NULL, dp = MPI_COMM_NULL;
  ~Comms() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (ep != MPI_COMM_NULL) MPI_Comm_free(&ep);
    if (dp != MPI_COMM_NULL) MPI_Comm_free(&dp);
  }
};

Topology Topology::create(MPI_Comm world, int ep, int gpus_per_node, int64_t num_experts) {
  Topology t;
  MPI_Comm_rank(world, &t.world_rank);
  MPI_Comm_size(world, &t.world_size);
  MOE_CHECK(ep >= 1) << "parallel.ep must be >= 1, got " << ep;
  MOE_CHECK(gpus_per_node >= 1) << "parallel.gpus_per_node must be >= 1, got " << gpus_per_node;
  MOE_CHECK(t.world_size % ep == 0) << "MPI world size (" << t.world_size << ") is not a multiple of parallel.ep ("
                                    << ep << "): the world is laid out as DP x EP";
  MOE_CHECK(ep % gpus_per_node == 0 || gpus_per_node % ep == 0)
      << "parallel.ep (" << ep << ") and parallel.gpus_per_node (" << gpus_per_node
      << ") must nest (one divides the other) so that EP groups are made of whole nodes or sit inside one";
  MOE_CHECK(num_experts >= ep && num_experts % ep == 0)
      << "routed experts (" << num_experts << ") not divisible by EP degree (" << ep << ")";
  t.ep = ep;
  t.dp = t.world_size / ep;
  t.ep_rank = t.world_rank % ep;
  t.dp_rank = t.world_rank / ep;
  t.gpus_per_node = gpus_per_node;
  t.num_experts = num_experts;
  t.experts_per_rank = num_experts / ep;
  t.comms_ = std::make_shared<Comms>();
  t.comms_->world = world;
  MOE_MPI_CHECK(MPI_Comm_split(world, t.dp_rank, t.ep_rank, &t.comms_->ep));
  MOE_MPI_CHECK(MPI_Comm_split(world, t.ep_rank, t.dp_rank, &t.comms_->dp));
  return t;
}

MPI_Comm Topology::world() const { return comms_ ? comms_->world : MPI_COMM_WORLD; }
MPI_Comm Topology::ep_comm() const { return comms_ ? comms_->ep : MPI_COMM_SELF; }
MPI_Comm Topology::dp_comm() const { return comms_ ? comms_->dp : MPI_COMM_SELF; }

std::string Topology::describe() const {
  std::ostringstream s;
  s << "EP " << ep << " x DP " << dp << ", " << num_nodes() << " node" << (num_nodes() > 1 ? "s" : "") << " x "
    << ranks_per_node() << " rank" << (ranks_per_node() > 1 ? "s" : "") << " per EP group, " << experts_per_rank
    << " expert" << (experts_per_rank > 1 ? "s" : "") << "/rank";
  return s.str();
}

uint64_t config_hash(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

void check_same_config(MPI_Comm comm, const std::string& config_text) {
  const uint64_t mine = config_hash(config_text);
  uint64_t root = mine;
  MOE_MPI_CHECK(MPI_Bcast(&root, 1, MPI_UINT64_T, 0, comm));
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const int differs = root != mine ? rank : -1;
  int first = -1;
  // The lowest differing rank (or -1): MPI_MAX over -1 / rank would give the
  // highest; negate to get the lowest.
  int neg = differs >= 0 ? -differs : INT32_MIN;
  int max_neg = 0;
  MOE_MPI_CHECK(MPI_Allreduce(&neg, &max_neg, 1, MPI_INT, MPI_MAX, comm));
  first = max_neg == INT32_MIN ? -1 : -max_neg;
  MOE_CHECK(first < 0) << "configuration mismatch: rank " << first
                       << " runs a different configuration than rank 0 (config hash differs); every rank must be "
                          "started with the same options and files";
}

}  // namespace moelab::parallel
