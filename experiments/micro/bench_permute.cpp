// Permute tokens by expert and the weighted combine (unpermute) with its
// backward. DeepSeek-V3 routing (256 experts, top-8) at hidden 7168 with 256
// tokens (2048 permuted rows, 59 MB; the machine's memory bounds the token
// count), and v3-small (16 experts, top-4, hidden 256) at 4096 tokens.
#include "backend/cpu/permute.hpp"
#include <algorithm>
#include <cmath>

#include "bench_main.hpp"

using namespace moelab;

namespace {

struct Routing {
  std::vector<int32_t> topk_idx;
  Routing(int64_t tokens, int64_t top_k, int64_t experts) {
    Rng rng(5);
    for (int64_t t = 0; t < tokens; ++t) {
      std::vector<int32_t> chosen;
      while (static_cast<int64_t>(chosen.size()) < top_k) {
        const auto e = static_cast<int32_t>(rng.below(experts));
        if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
      }
      topk_idx.insert(topk_idx.end(), chosen.begin(), chosen.end());
    }
  }
};

void BM_permute(benchmark::State& state) {
  const int64_t tokens = state.range(0), experts = state.range(1), top_k = state.range(2), n = state.range(3);
  const Routing routing(tokens, top_k, experts);
  auto x = bench::random_floats(tokens * n, 1);
  std::vector<float> xp(tokens * top_k * n);
  cpu::PermuteIndex index;
  for (auto _ : state) {
    cpu::make_permute_index(index, routing.topk_idx.data(), tokens, top_k, experts);
    cpu::permute_rows(xp.data(), x.data(), index, n);
    benchmark::ClobberMemory();
  }
  state.counters["bytes/s"] = bench::rate(cpu::permute_bytes(tokens, top_k, n, 4));
}

void BM_unpermute(benchmark::State& state, bool backward) {
  const int64_t tokens = state.range(0), experts = state.range(1), top_k = state.range(2), n = state.range(3);
  const Routing routing(tokens, top_k, experts);
  cpu::PermuteIndex index;
  cpu::make_permute_index(index, routing.topk_idx.data(), tokens, top_k, experts);
  auto yp = bench::random_floats(tokens * top_k * n, 1), w = bench::random_floats(tokens * top_k, 2),
       dy = bench::random_floats(tokens * n, 3);
  std::vector<float> y(tokens * n), dyp(tokens * top_k * n), dw(tokens * top_k);
  for (auto _ : state) {
    if (backward)
      cpu::unpermute_backward(dyp.data(), dw.data(), dy.data(), yp.data(), w.data(), index, n);
    else
      cpu::unpermute_rows(y.data(), yp.data(), w.data(), index, n);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = bench::rate(cpu::unpermute_flops(tokens, top_k, n) * (backward ? 1.5 : 1.0));
  state.counters["bytes/s"] = bench::rate(cpu::unpermute_bytes(tokens, top_k, n, 4) * (backward ? 1.5 : 1.0));
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"tokens", "experts", "topk", "hidden"});
  b->Args({256, 256, 8, 7168});  // DeepSeek-V3 routing and hidden size
  b->Args({4096, 16, 4, 256});   // v3-small
  b->UseRealTime();
}

}  // namespace

BENCHMARK(BM_permute)->Apply(shapes);
BENCHMARK_CAPTURE(BM_unpermute, combine, false)->Apply(shapes);
BENCHMARK_CAPTURE(BM_unpermute, combine_backward, true)->Apply(shapes);

MOELAB_BENCHMARK_MAIN();
