// Expert-parallel dispatch and combine over MPI (DeepSeek-V3 §3.2.2; the
// DeepEP "normal" kernels' data flow, on the CPU with MPI_Alltoallv).
//
// Letters: T tokens on this rank, H hidden, K experts per token, R rows
// received by this rank (one per (source token, this rank)), E experts.
//
// Forward:
//   dispatch  x [T,H], topk_idx [T,K], topk_weight [T,K] on every EP rank
//             -> Received rows [R,H] with their (source rank, token, topk) on
//             every rank hosting at least one of the token's experts. A token
//             is sent ONCE per destination rank, not once per expert.
//   (experts) the caller runs its local experts on the rows and forms, per
//             row, partial [R,H] = sum over this rank's slots k of w_k * y_k.
//   combine   partial [R,H] -> y [T,H] = sum over destination ranks.
// Backward (the reverse of each step):
//   dispatch_grad  dy [T,H] -> dy rows [R,H] on the same ranks, same order
//   combine_grad   dx partial [R,H] and d_weight rows [R,K] (non-zero only at
//                  this rank's slots) -> dx [T,H], d_topk_weight [T,K]
//
// Modes:
//   direct   one all-to-all among the EP ranks.
//   two_hop  the token goes once to each target node, to the rank with the
//            sender's in-node index (the "relay"; inter-node, IB in V3), which
//            forwards it to the ranks of its node hosting the token's experts
//            (intra-node, NVLink). Combine reverses: the relay sums its node's
//            partials and sends one row back per (token, node). Inter-node
//            bytes are therefore counted once per (token, node).
//
// Wire formats (wire.hpp): dispatch rows in fp32, bf16 or fp8 (1x128 tiles +
// FP32 scales), combine and gradient rows in fp32 or bf16. A dispatch record
// is a header (src rank, token index, K expert ids, K weights: 8 + 8K bytes)
// then the payload; combine records are the payload only (+ K FP32 weight
// gradients in combine_grad). The byte counts are the records' sizes.
//
// Summation order is fixed (destinations in ascending rank order; two_hop:
// ranks of a node at the relay, then nodes in ascending order), so a run is
// bit-reproducible; changing EP or mode changes results only by reassociation
// (and by the wire formats' rounding).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parallel/topology.hpp"
#include "parallel/wire.hpp"

namespace moelab::parallel {

enum class DispatchMode { direct, two_hop };
std::string dispatch_mode_name(DispatchMode m);
DispatchMode parse_dispatch_mode(const std::string& name);

struct DispatchOptions {
  DispatchMode mode = DispatchMode::direct;
  WireFormat dispatch_format = WireFormat::bf16;  // forward activations
  WireFormat combine_format = WireFormat::bf16;   // combine and both gradients
};

// Traffic of one rank, summed over the calls since reset (link classes by
// the virtual nodes of Topology; a rank's rows to itself cross no link and
// count in neither class).
struct LinkCounters {
  int64_t tokens_sent_intra = 0, tokens_sent_inter = 0;
  int64_t bytes_sent_intra = 0, bytes_sent_inter = 0;
  int64_t tokens_recv_intra = 0, tokens_recv_inter = 0;
  int64_t bytes_recv_intra = 0, bytes_recv_inter = 0;
  void add(const LinkCounters& o);
};

struct TrafficStats {
  LinkCounters dispatch;  // dispatch and dispatch_grad
  LinkCounters combine;   // combine and combine_grad
  int64_t tokens = 0;                // source tokens dispatched
  int64_t token_node_pairs = 0;      // sum over tokens of distinct target nodes
  int64_t token_rank_pairs = 0;      // sum over tokens of distinct target ranks
  int nodes_per_token_max = 0;
  int64_t rows_received = 0;         // rows this rank's experts saw
  int64_t expert_load = 0;           // (token, expert) assignments to this rank's experts
  double dispatch_time_s = 0.0, combine_time_s = 0.0;
  double nodes_per_token_mean() const { return tokens ? double(token_node_pairs) / tokens : 0.0; }
};

// What dispatch delivers to one rank: rows [R,H] (decoded to FP32) and, per
// row, its source and the token's full routing.
struct Received {
  int64_t rows = 0, hidden = 0;
  int top_k = 0;
  std::vector<float> x;             // [R, H]
  std::vector<int32_t> src_rank;    // [R] EP rank of the source
  std::vector<int32_t> src_token;   // [R] token index on the source
  std::vector<int32_t> topk_idx;    // [R, K] global expert ids
  std::vector<float> topk_weight;   // [R, K]
};

// One (row, slot) of a received row that a local expert must compute.
struct Assignment {
  int64_t row;
  int slot;
  int32_t local_expert;
};
// The local assignments of `recv`, grouped by local expert (ascending), rows
// ascending within an expert.
std::vector<Assignment> local_assignments(const Received& recv, const Topology& topo);

class Dispatcher {
 public:
  Dispatcher(const Topology& topo, DispatchOptions options);
  ~Dispatcher();
  Dispatcher(Dispatcher&&) noexcept;
  Dispatcher& operator=(Dispatcher&&) noexcept;

  // Collective over the EP group. Keeps the routing plan for combine and the
  // backward calls until the next dispatch.
  const Received& dispatch(const float* x, const int32_t* topk_idx, const float* topk_weight, int64_t num_tokens,
                           int64_t hidden, int top_k);
  const Received& received() const;
  // partial [R,H] -> y [T,H] (=).
  void combine(const float* partial, float* y);
  // dy [T,H] -> dy_rows [R,H] (=), same rows as the last dispatch.
  void dispatch_grad(const float* dy, float* dy_rows);
  // dx_partial [R,H], dweight_rows [R,K] -> dx [T,H] (=), d_topk_weight [T,K] (=).
  void combine_grad(const float* dx_partial, const float* dweight_rows, float* dx, float* d_topk_weight);

  // Record size of one dispatched row (header + payload) and one combine row.
  int64_t dispatch_record_bytes() const;
  int64_t combine_record_bytes() const;

  const TrafficStats& stats() const;
  void reset_stats();
  const Topology& topology() const;
  const DispatchOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- the plan and accounting, shared with other transports (NCCL) ----
// Bytes of a dispatch record's header (src rank, token, K ids, K weights).
int64_t dispatch_header_bytes(int top_k);
// A dispatch record's header: src rank, src token, K expert ids, K weights.
void write_dispatch_header(uint8_t* out, int32_t src_rank, int32_t src_token, const int32_t* topk_idx,
                           const float* topk_weight, int top_k);
void read_dispatch_header(const uint8_t* in, int top_k, int32_t* src_rank, int32_t* src_token, int32_t* topk_idx,
                          float* topk_weight);
// Direct mode's routing of one dispatch: per EP rank, the local tokens sent
// to it (ascending; a token once per destination rank) - the lists the MPI
// Dispatcher sends in that order.
std::vector<std::vector<int64_t>> direct_send_lists(const Topology& topo, const int32_t* topk_idx, int64_t num_tokens,
                                                    int top_k);
// The first exchange of one dispatch in `mode`: per EP rank, the local tokens
// sent to it, ascending (direct: a token once per destination rank; two_hop:
// once per target node, to the relay of that node with this rank's in-node
// index). Adds the token figures (tokens, token_rank_pairs, token_node_pairs,
// nodes_per_token_max) to *stats when given. The MPI Dispatcher's plan.
std::vector<std::vector<int64_t>> dispatch_send_lists(const Topology& topo, DispatchMode mode, const int32_t* topk_idx,
                                                      int64_t num_tokens, int top_k, TrafficStats* stats = nullptr);
// two_hop's second exchange at a relay: per EP rank, the relayed rows it
// forwards there (ascending; a row once per rank of this node hosting one of
// its token's experts). records [rows, rec] are dispatch records (their
// header's expert ids are read; dispatch_header_bytes(top_k) <= rec).
std::vector<std::vector<int64_t>> relay_send_lists(const Topology& topo, const uint8_t* records, int64_t rec,
                                                   int64_t rows, int top_k);
// Accounts one exchange of sent[p] / got[p] records of `rec` bytes to / from
// each EP rank p in c (the rank itself crosses no link): what the Dispatcher
// counts per all-to-all.
void count_link_traffic(const Topology& topo, const std::vector<int>& sent, const std::vector<int>& got, int64_t rec,
                        LinkCounters& c);

}  // namespace moelab::parallel
