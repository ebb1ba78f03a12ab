#include "parallel/dispatch_combine.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "parallel/comm_progress.hpp"

namespace moelab::parallel {

std::string dispatch_mode_name(DispatchMode m) { return m == DispatchMode::direct ? "direct" : "two_hop"; }

DispatchMode parse_dispatch_mode(const std::string& name) {
  if (name == "direct") return DispatchMode::direct;
  if (name == "two_hop" || name == "two-hop") return DispatchMode::two_hop;
  MOE_FAIL() << "dispatch mode '" << name << "': expected direct or two_hop";
  return DispatchMode::direct;
}

void LinkCounters::add(const LinkCounters& o) {
  tokens_sent_intra += o.tokens_sent_intra;
  tokens_sent_inter += o.tokens_sent_inter;
  bytes_sent_intra += o.bytes_sent_intra;
  bytes_sent_inter += o.bytes_sent_inter;
  tokens_recv_intra += o.tokens_recv_intra;
  tokens_recv_inter += o.tokens_recv_inter;
  bytes_recv_intra += o.bytes_recv_intra;
  bytes_recv_inter += o.bytes_recv_inter;
}

std::vector<Assignment> local_assignments(const Received& recv, const Topology& topo) {
  std::vector<std::vector<Assignment>> by_expert(topo.experts_per_rank);
  const int64_t first = topo.first_local_expert();
  for (int64_t r = 0; r < recv.rows; ++r)
    for (int k = 0; k < recv.top_k; ++k) {
      const int32_t e = recv.topk_idx[r * recv.top_k + k];
      if (topo.is_local_expert(e)) by_expert[e - first].push_back({r, k, static_cast<int32_t>(e - first)});
    }
  std::vector<Assignment> out;
  for (auto& list : by_expert) out.insert(out.end(), list.begin(), list.end());
  return out;
}

int64_t dispatch_header_bytes(int top_k) { return 8 + 8 * int64_t(top_k); }

void count_link_traffic(const Topology& topo, const std::vector<int>& sent, const std::vector<int>& got, int64_t rec,
                        LinkCounters& c) {
  for (int p = 0; p < topo.ep; ++p) {
    if (p == topo.ep_rank) continue;
    const bool inter = topo.node_of(p) != topo.my_node();
    (inter ? c.tokens_sent_inter : c.tokens_sent_intra) += sent[p];
    (inter ? c.bytes_sent_inter : c.bytes_sent_intra) += int64_t(sent[p]) * rec;
    (inter ? c.tokens_recv_inter : c.tokens_recv_intra) += got[p];
    (inter ? c.bytes_recv_inter : c.bytes_recv_intra) += int64_t(got[p]) * rec;
  }
}

std::vector<std::vector<int64_t>> direct_send_lists(const Topology& topo, const int32_t* topk_idx, int64_t num_tokens,
                                                    int top_k) {
  std::vector<std::vector<int64_t>> lists(topo.ep);
  std::vector<char> hit(topo.ep);
  for (int64_t t = 0; t < num_tokens; ++t) {
    std::fill(hit.begin(), hit.end(), 0);
    for (int k = 0; k < top_k; ++k) {
      const int32_t e = topk_idx[t * top_k + k];
      MOE_CHECK(e >= 0 && e < topo.num_experts)
          << "token " << t << " slot " << k << " routes to expert " << e << ", outside [0, " << topo.num_experts << ")";
      hit[topo.rank_of_expert(e)] = 1;
    }
    for (int d = 0; d < topo.ep; ++d)
      if (hit[d]) lists[d].push_back(t);
  }
  return lists;
}

namespace {

// One all-to-all among the EP ranks with a fixed routing of rows: send slot
// i carries the sender's local row send_src[i] to the peer it is grouped
// under. forward() moves records along it, reverse() back against it. The
// all-to-alls are non-blocking, waited with wait_request, so that in an
// overlapped F&B step the other half computes while they are in flight.
struct Exchange {
  const Topology* topo = nullptr;
  std::vector<int> send_rows, recv_rows;  // per peer (EP rank)
  std::vector<int64_t> send_src;          // [S] local row of each send slot, peers ascending
  int64_t total_send = 0, total_recv = 0;

  void build(const Topology& t, const std::vector<std::vector<int64_t>>& lists) {
    topo = &t;
    const int n = t.ep;
    send_rows.assign(n, 0);
    recv_rows.assign(n, 0);
    send_src.clear();
    for (int p = 0; p < n; ++p) {
      MOE_CHECK(lists[p].size() < INT_MAX) << "too many rows for one MPI message";
      send_rows[p] = static_cast<int>(lists[p].size());
      send_src.insert(send_src.end(), lists[p].begin(), lists[p].end());
    }
    MPI_Request request = MPI_REQUEST_NULL;
    MOE_MPI_CHECK(MPI_Ialltoall(send_rows.data(), 1, MPI_INT, recv_rows.data(), 1, MPI_INT, t.ep_comm(), &request));
    wait_request(&request, CommClass::expert);
    total_send = static_cast<int64_t>(send_src.size());
    total_recv = 0;
    for (int c : recv_rows) total_recv += c;
  }

  void count(const std::vector<int>& sent, const std::vector<int>& got, int64_t rec, LinkCounters& c) const {
    count_link_traffic(*topo, sent, got, rec, c);
  }

  void alltoallv(const std::vector<int>& sent, const std::vector<int>& got, const uint8_t* send, uint8_t* recv,
                 int64_t rec) const {
    const int n = topo->ep;
    std::vector<int> sc(n), sd(n), rc(n), rd(n);
    int64_t so = 0, ro = 0;
    for (int p = 0; p < n; ++p) {
      MOE_CHECK(int64_t(sent[p]) * rec < INT_MAX && int64_t(got[p]) * rec < INT_MAX && so < INT_MAX && ro < INT_MAX)
          << "all-to-all message over 2 GiB (rows " << sent[p] << "/" << got[p] << " of " << rec << " bytes)";
      sc[p] = static_cast<int>(sent[p] * rec);
      rc[p] = static_cast<int>(got[p] * rec);
      sd[p] = static_cast<int>(so);
      rd[p] = static_cast<int>(ro);
      so += sc[p];
      ro += rc[p];
    }
    MPI_Request request = MPI_REQUEST_NULL;
    MOE_MPI_CHECK(MPI_Ialltoallv(send, sc.data(), sd.data(), MPI_BYTE, recv, rc.data(), rd.data(), MPI_BYTE,
                                 topo->ep_comm(), &request));
    wait_request(&request, CommClass::expert);
  }

  // src [rows, rec] indexed by send_src -> recv [total_recv, rec].
  void forward(const uint8_t* src, int64_t rec, std::vector<uint8_t>& recv, LinkCounters& c) const {
    std::vector<uint8_t> send(total_send * rec);
    for (int64_t i = 0; i < total_send; ++i) std::memcpy(&send[i * rec], src + send_src[i] * rec, rec);
    recv.assign(total_recv * rec, 0);
    alltoallv(send_rows, recv_rows, send.data(), recv.data(), rec);
    count(send_rows, recv_rows, rec, c);
  }

  // values [total_recv, rec] (one per received row) -> back [total_send, rec] (one per send slot).
  void reverse(const uint8_t* values, int64_t rec, std::vector<uint8_t>& back, LinkCounters& c) const {
    back.assign(total_send * rec, 0);
    alltoallv(recv_rows, send_rows, values, back.data(), rec);
    count(recv_rows, send_rows, rec, c);
  }
};

// Dispatch record header: src_rank, src_token, topk_idx[K], topk_weight[K].
int64_t header_bytes(int k) { return dispatch_header_bytes(k); }

}  // namespace

struct Dispatcher::Impl {
  Topology topo;
  DispatchOptions opt;
  TrafficStats stats;
  int64_t tokens = 0, hidden = 0;
  int top_k = 0;
  bool planned = false;
  Exchange ex1;  // direct: source -> expert rank; two_hop: source -> relay
  Exchange ex2;  // two_hop: relay -> expert rank
  Received recv;

  bool two_hop() const { return opt.mode == DispatchMode::two_hop; }
  int64_t payload_bytes(WireFormat f) const { return wire_row_bytes(f, hidden); }

  // Moves source records [T, rec] to the final ranks: [R, rec].
  void forward_records(const std::vector<uint8_t>& src, int64_t rec, std::vector<uint8_t>& out, LinkCounters& c) {
    if (!two_hop()) {
      ex1.forward(src.data(), rec, out, c);
      return;
    }
    std::vector<uint8_t> relay;
    ex1.forward(src.data(), rec, relay, c);
    ex2.forward(relay.data(), rec, out, c);
  }

  // values [R, H] and extras [R, X] -> out [T, H], out_extra [T, X] summed
  // over destinations (extras in FP32, values in `fmt`).
  void reverse_sum(const float* values, const float* extras, int x_cols, WireFormat fmt, float* out,
                   float* out_extra, LinkCounters& c) {
    const int64_t H = hidden, pay = payload_bytes(fmt), rec = pay + 4 * int64_t(x_cols);
    auto encode_rows = [&](const float* v, const float* e, int64_t rows, std::vector<uint8_t>& buf) {
      buf.assign(rows * rec, 0);
      for (int64_t r = 0; r < rows; ++r) {
        wire_encode(fmt, v + r * H, H, &buf[r * rec]);
        if (x_cols) std::memcpy(&buf[r * rec + pay], e + r * x_cols, 4 * x_cols);
      }
    };
    // back [S, rec] with send_src -> acc [rows, H] (+=), acc_extra [rows, X] (+=), in slot order.
    std::vector<float> tmp(H), tmp_x(x_cols);
    auto accumulate = [&](const Exchange& ex, const std::vector<uint8_t>& back, float* acc, float* acc_x) {
      for (int64_t i = 0; i < ex.total_send; ++i) {
        const int64_t row = ex.send_src[i];
        wire_decode(fmt, &back[i * rec], H, tmp.data());
        float* dst = acc + row * H;
        for (int64_t h = 0; h < H; ++h) dst[h] += tmp[h];
        if (x_cols) {
          std::memcpy(tmp_x.data(), &back[i * rec + pay], 4 * x_cols);
          for (int j = 0; j < x_cols; ++j) acc_x[row * x_cols + j] += tmp_x[j];
        }
      }
    };
    std::vector<uint8_t> buf, back;
    std::fill(out, out + tokens * H, 0.0f);
    if (x_cols) std::fill(out_extra, out_extra + tokens * x_cols, 0.0f);
    if (!two_hop()) {
      encode_rows(values, extras, ex1.total_recv, buf);
      ex1.reverse(buf.data(), rec, back, c);
      accumulate(ex1, back, out, out_extra);
      return;
    }
    // Hop 2 back: expert ranks -> relay, which sums its node's partials.
    encode_rows(values, extras, ex2.total_recv, buf);
    ex2.reverse(buf.data(), rec, back, c);
    const int64_t relay_rows = ex1.total_recv;
    std::vector<float> node_sum(relay_rows * H, 0.0f), node_sum_x(relay_rows * x_cols, 0.0f);
    accumulate(ex2, back, node_sum.data(), node_sum_x.data());
    // Hop 1 back: relay -> source, one row per (token, node).
    encode_rows(node_sum.data(), node_sum_x.data(), relay_rows, buf);
    ex1.reverse(buf.data(), rec, back, c);
    accumulate(ex1, back, out, out_extra);
  }
};

Dispatcher::Dispatcher(const Topology& topo, DispatchOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->topo = topo;
  impl_->opt = options;
  MOE_CHECK(options.combine_format != WireFormat::fp8)
      << "combine wire format fp8 is not supported (DeepSeek-V3 combines in BF16): use bf16 or fp32";
}
Dispatcher::~Dispatcher() = default;
Dispatcher::Dispatcher(Dispatcher&&) noexcept = default;
Dispatcher& Dispatcher::operator=(Dispatcher&&) noexcept = default;

const Received& Dispatcher::received() const { return impl_->recv; }
const TrafficStats& Dispatcher::stats() const { return impl_->stats; }
void Dispatcher::reset_stats() { impl_->stats = TrafficStats{}; }
const Topology& Dispatcher::topology() const { return impl_->topo; }
const DispatchOptions& Dispatcher::options() const { return impl_->opt; }
int64_t Dispatcher::dispatch_record_bytes() const {
  return header_bytes(impl_->top_k) + wire_row_bytes(impl_->opt.dispatch_format, impl_->hidden);
}
int64_t Dispatcher::combine_record_bytes() const { return wire_row_bytes(impl_->opt.combine_format, impl_->hidden); }

const Received& Dispatcher::dispatch(const float* x, const int32_t* topk_idx, const float* topk_weight,
                                     int64_t num_tokens, int64_t hidden, int top_k) {
  Impl& m = *impl_;
  const Topology& topo = m.topo;
  Timer timer;
  m.tokens = num_tokens;
  m.hidden = hidden;
  m.top_k = top_k;
  m.planned = true;
  const int K = top_k;
  const int64_t head = header_bytes(K), pay = m.payload_bytes(m.opt.dispatch_format), rec = head + pay;

  // ---- plan: distinct destination ranks and nodes of every token ----
  std::vector<std::vector<int64_t>> lists(topo.ep);
  std::vector<char> rank_hit(topo.ep), node_hit(topo.num_nodes());
  for (int64_t t = 0; t < num_tokens; ++t) {
    std::fill(rank_hit.begin(), rank_hit.end(), 0);
    std::fill(node_hit.begin(), node_hit.end(), 0);
    for (int k = 0; k < K; ++k) {
      const int32_t e = topk_idx[t * K + k];
      MOE_CHECK(e >= 0 && e < topo.num_experts)
          << "token " << t << " slot " << k << " routes to expert " << e << ", outside [0, " << topo.num_experts << ")";
      rank_hit[topo.rank_of_expert(e)] = 1;
      node_hit[topo.node_of_expert(e)] = 1;
    }
    int nodes = 0;
    for (int n = 0; n < topo.num_nodes(); ++n) {
      if (!node_hit[n]) continue;
      ++nodes;
      if (m.two_hop()) lists[topo.rank_at(n, topo.local_index(topo.ep_rank))].push_back(t);
    }
    for (int d = 0; d < topo.ep; ++d) {
      if (!rank_hit[d]) continue;
      ++m.stats.token_rank_pairs;
      if (!m.two_hop()) lists[d].push_back(t);
    }
    m.stats.token_node_pairs += nodes;
    m.stats.nodes_per_token_max = std::max(m.stats.nodes_per_token_max, nodes);
  }
  m.stats.tokens += num_tokens;
  m.ex1.build(topo, lists);

  // ---- encode every token once: header + payload ----
  std::vector<uint8_t> records(num_tokens * rec);
  for (int64_t t = 0; t < num_tokens; ++t) {
    uint8_t* r = &records[t * rec];
    const int32_t src[2] = {topo.ep_rank, static_cast<int32_t>(t)};
    std::memcpy(r, src, 8);
    std::memcpy(r + 8, topk_idx + t * K, 4 * K);
    std::memcpy(r + 8 + 4 * K, topk_weight + t * K, 4 * K);
    wire_encode(m.opt.dispatch_format, x + t * hidden, hidden, r + head);
  }

  std::vector<uint8_t> final_records;
  if (!m.two_hop()) {
    m.ex1.forward(records.data(), rec, final_records, m.stats.dispatch);
  } else {
    std::vector<uint8_t> relay;
    m.ex1.forward(records.data(), rec, relay, m.stats.dispatch);
    // The relay forwards each row to the ranks of its node hosting the token's experts.
    std::vector<std::vector<int64_t>> lists2(topo.ep);
    std::vector<int32_t> ids(K);
    for (int64_t r = 0; r < m.ex1.total_recv; ++r) {
      std::memcpy(ids.data(), &relay[r * rec + 8], 4 * K);
      std::fill(rank_hit.begin(), rank_hit.end(), 0);
      for (int k = 0; k < K; ++k)
        if (topo.node_of_expert(ids[k]) == topo.my_node()) rank_hit[topo.rank_of_expert(ids[k])] = 1;
      for (int d = 0; d < topo.ep; ++d)
        if (rank_hit[d]) lists2[d].push_back(r);
    }
    m.ex2.build(topo, lists2);
    m.ex2.forward(relay.data(), rec, final_records, m.stats.dispatch);
  }

  // ---- decode what arrived ----
  Received& out = m.recv;
  const int64_t R = m.two_hop() ? m.ex2.total_recv : m.ex1.total_recv;
  out.rows = R;
  out.hidden = hidden;
  out.top_k = K;
  out.x.assign(R * hidden, 0.0f);
  out.src_rank.assign(R, 0);
  out.src_token.assign(R, 0);
  out.topk_idx.assign(R * K, 0);
  out.topk_weight.assign(R * K, 0.0f);
  for (int64_t r = 0; r < R; ++r) {
    const uint8_t* p = &final_records[r * rec];
    int32_t src[2];
    std::memcpy(src, p, 8);
    out.src_rank[r] = src[0];
    out.src_token[r] = src[1];
    std::memcpy(&out.topk_idx[r * K], p + 8, 4 * K);
    std::memcpy(&out.topk_weight[r * K], p + 8 + 4 * K, 4 * K);
    wire_decode(m.opt.dispatch_format, p + head, hidden, &out.x[r * hidden]);
    for (int k = 0; k < K; ++k) m.stats.expert_load += topo.is_local_expert(out.topk_idx[r * K + k]);
  }
  m.stats.rows_received += R;
  m.stats.dispatch_time_s += timer.seconds();
  return out;
}

void Dispatcher::combine(const float* partial, float* y) {
  Impl& m = *impl_;
  MOE_CHECK(m.planned) << "combine called before dispatch";
  Timer timer;
  m.reverse_sum(partial, nullptr, 0, m.opt.combine_format, y, nullptr, m.stats.combine);
  m.stats.combine_time_s += timer.seconds();
}

void Dispatcher::dispatch_grad(const float* dy, float* dy_rows) {
  Impl& m = *impl_;
  MOE_CHECK(m.planned) << "dispatch_grad called before dispatch";
  Timer timer;
  const WireFormat fmt = m.opt.combine_format;
  const int64_t H = m.hidden, rec = wire_row_bytes(fmt, H);
  std::vector<uint8_t> records(m.tokens * rec), out;
  for (int64_t t = 0; t < m.tokens; ++t) wire_encode(fmt, dy + t * H, H, &records[t * rec]);
  m.forward_records(records, rec, out, m.stats.dispatch);
  for (int64_t r = 0; r < m.recv.rows; ++r) wire_decode(fmt, &out[r * rec], H, dy_rows + r * H);
  m.stats.dispatch_time_s += timer.seconds();
}

void Dispatcher::combine_grad(const float* dx_partial, const float* dweight_rows, float* dx, float* d_topk_weight) {
  Impl& m = *impl_;
  MOE_CHECK(m.planned) << "combine_grad called before dispatch";
  Timer timer;
  m.reverse_sum(dx_partial, dweight_rows, m.top_k, m.opt.combine_format, dx, d_topk_weight, m.stats.combine);
  m.stats.combine_time_s += timer.seconds();
}

}  // namespace moelab::parallel
