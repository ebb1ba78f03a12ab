#include "parallel/traffic.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace moelab::parallel {

std::vector<std::pair<std::string, double>> traffic_figures(const TrafficStats& s, int64_t top_k,
                                                            double expert_time_s) {
  auto link = [](const std::string& p, const LinkCounters& c) {
    return std::vector<std::pair<std::string, double>>{
        {p + "_tokens_sent_intra", double(c.tokens_sent_intra)}, {p + "_tokens_sent_inter", double(c.tokens_sent_inter)},
        {p + "_bytes_sent_intra", double(c.bytes_sent_intra)},   {p + "_bytes_sent_inter", double(c.bytes_sent_inter)},
        {p + "_tokens_recv_intra", double(c.tokens_recv_intra)}, {p + "_tokens_recv_inter", double(c.tokens_recv_inter)},
        {p + "_bytes_recv_intra", double(c.bytes_recv_intra)},   {p + "_bytes_recv_inter", double(c.bytes_recv_inter)}};
  };
  std::vector<std::pair<std::string, double>> f = link("dispatch", s.dispatch);
  for (auto& p : link("combine", s.combine)) f.push_back(p);
  f.push_back({"tokens", double(s.tokens)});
  f.push_back({"nodes_per_token_mean", s.nodes_per_token_mean()});
  f.push_back({"nodes_per_token_max", double(s.nodes_per_token_max)});
  f.push_back({"experts_per_token_per_node",
               s.token_node_pairs ? double(s.tokens) * double(top_k) / double(s.token_node_pairs) : 0.0});
  f.push_back({"ranks_per_token_mean", s.tokens ? double(s.token_rank_pairs) / double(s.tokens) : 0.0});
  f.push_back({"rows_received", double(s.rows_received)});
  f.push_back({"expert_load", double(s.expert_load)});
  f.push_back({"dispatch_time_s", s.dispatch_time_s});
  f.push_back({"combine_time_s", s.combine_time_s});
  f.push_back({"expert_time_s", expert_time_s});
  return f;
}

double append_comm_step(const Topology& topo, const TrafficStats& s, int64_t top_k, double expert_time_s,
                        ResultsRun* run) {
  const auto figs = traffic_figures(s, top_k, expert_time_s);
  std::vector<double> mine;
  for (const auto& p : figs) mine.push_back(p.second);
  const int nf = static_cast<int>(mine.size()), n = topo.world_size;
  const bool root = topo.world_rank == 0;
  std::vector<double> all(root ? size_t(nf) * n : 0);
  MOE_MPI_CHECK(MPI_Gather(mine.data(), nf, MPI_DOUBLE, all.data(), nf, MPI_DOUBLE, 0, topo.world()));
  if (!root) return 0.0;
  int load_at = 0;
  while (figs[load_at].first != "expert_load") ++load_at;
  double imbalance = 0.0;
  for (int d = 0; d < topo.dp; ++d) {
    double mx = 0, sum = 0;
    for (int e = 0; e < topo.ep; ++e) {
      const double v = all[size_t(d * topo.ep + e) * nf + load_at];
      mx = std::max(mx, v);
      sum += v;
    }
    imbalance = std::max(imbalance, sum > 0 ? mx / (sum / topo.ep) : 0.0);
  }
  if (run) {
    std::vector<double> col(n);
    for (int f = 0; f < nf; ++f) {
      for (int q = 0; q < n; ++q) col[q] = all[size_t(q) * nf + f];
      run->append_row<double>("comm/" + figs[f].first, {n}, col.data());
    }
    run->append("comm/load_imbalance", imbalance);
  }
  return imbalance;
}

}  // namespace moelab::parallel
