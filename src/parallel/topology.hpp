// Ranks and topology of expert parallelism (DeepSeek-V3 §3.2.2; DESIGN.md
// "parallel/"). The MPI world is laid out as DP x EP with the EP ranks of one
// DP replica contiguous:
//
//   world_rank = dp_rank * ep + ep_rank
//
// A virtual cluster groups `gpus_per_node` consecutive world ranks into one
// node, so an EP group of ep >= gpus_per_node ranks spans ep / gpus_per_node
// whole nodes and a smaller one sits inside one node. Routed experts are
// placed contiguously: EP rank r holds experts [r*E/EP, (r+1)*E/EP), so a
// node holds a contiguous range too (the groups of group-limited routing).
// Attention and dense parts are replicated and data-parallel over all ranks.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

namespace moelab::parallel {

class Topology {
 public:
  // Splits `world` into EP and DP communicators. Throws moelab::Error when the
  // world size is not a multiple of ep, when ep and gpus_per_node do not nest
  // (one must divide the other), or when num_experts is not divisible by ep.
  static Topology create(MPI_Comm world, int ep, int gpus_per_node, int64_t num_experts);

  MPI_Comm world() const;
  MPI_Comm ep_comm() const;  // the EP ranks of this DP replica, ordered by ep_rank
  MPI_Comm dp_comm() const;  // the ranks with this ep_rank in every replica

  int world_rank = 0, world_size = 1;
  int ep = 1, dp = 1;
  int ep_rank = 0, dp_rank = 0;
  int gpus_per_node = 8;
  int64_t num_experts = 0, experts_per_rank = 0;

  // ---- the EP group as a cluster of nodes (indices are EP ranks) ----
  int ranks_per_node() const { return ep < gpus_per_node ? ep : gpus_per_node; }
  int num_nodes() const { return ep / ranks_per_node(); }
  int node_of(int ep_rank_) const { return ep_rank_ / ranks_per_node(); }
  int local_index(int ep_rank_) const { return ep_rank_ % ranks_per_node(); }
  int rank_at(int node, int local) const { return node * ranks_per_node() + local; }
  int my_node() const { return node_of(ep_rank); }

  // ---- expert placement ----
  int rank_of_expert(int64_t expert_idx) const { return static_cast<int>(expert_idx / experts_per_rank); }
  int node_of_expert(int64_t expert_idx) const { return node_of(rank_of_expert(expert_idx)); }
  int64_t first_local_expert() const { return ep_rank * experts_per_rank; }
  bool is_local_expert(int64_t expert_idx) const { return rank_of_expert(expert_idx) == ep_rank; }
  int64_t experts_per_node() const { return experts_per_rank * ranks_per_node(); }

  std::string describe() const;  // "EP 4 x DP 2, 2 nodes x 2 ranks, 4 experts/rank"

 private:
  struct Comms;
  std::shared_ptr<Comms> comms_;
};

// FNV-1a, 64 bits: the configuration hash.
uint64_t config_hash(const std::string& text);

// Every rank of `comm` must run the same configuration: rank 0's hash of
// `config_text` is broadcast and compared; if any rank differs, every rank
// throws moelab::Error naming the first differing rank (collective: all ranks
// must call it).
void check_same_config(MPI_Comm comm, const std::string& config_text);

}  // namespace moelab::parallel
