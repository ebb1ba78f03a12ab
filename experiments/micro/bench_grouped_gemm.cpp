// Grouped GEMM over experts (one sgemm per expert): the expert up/gate
// projection. DeepSeek-V3 shapes for the 4 experts one EP64 rank holds
// (hidden 7168 -> inner 2048) at 128 rows each, and v3-small's 16 experts at
// 16384 permuted rows (4096 tokens x top-4). `sgemm_one` is one sgemm of all
// rows against one weight: the grouping's overhead is the gap between them.
#include "backend/cpu/grouped_gemm.hpp"
#include "bench_main.hpp"

using namespace moelab;

namespace {

void BM_grouped_gemm(benchmark::State& state) {
  const int64_t experts = state.range(0), rows_per_expert = state.range(1), n = state.range(2), k = state.range(3);
  const int64_t rows = experts * rows_per_expert;
  std::vector<int64_t> offsets(experts + 1);
  for (int64_t e = 0; e <= experts; ++e) offsets[e] = e * rows_per_expert;
  auto a = bench::random_floats(rows * k, 1);
  std::vector<std::vector<float>> w(experts);
  std::vector<const float*> wp(experts);
  for (int64_t e = 0; e < experts; ++e) w[e] = bench::random_floats(n * k, 10 + e), wp[e] = w[e].data();
  std::vector<float> c(rows * n);
  for (auto _ : state) {
    cpu::grouped_gemm(true, offsets.data(), experts, n, k, a.data(), k, wp.data(), 0.0f, c.data(), n);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = bench::rate(cpu::grouped_gemm_flops(rows, n, k));
  state.counters["bytes/s"] = bench::rate(cpu::grouped_gemm_bytes(rows, experts, n, k, 4));
}

void BM_sgemm_one(benchmark::State& state) {
  const int64_t rows = state.range(0) * state.range(1), n = state.range(2), k = state.range(3);
  auto a = bench::random_floats(rows * k, 1), w = bench::random_floats(n * k, 2);
  std::vector<float> c(rows * n);
  for (auto _ : state) {
    cpu::gemm(false, true, rows, n, k, 1.0f, a.data(), k, w.data(), k, 0.0f, c.data(), n);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = bench::rate(cpu::gemm_flops({rows, n, k}));
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"experts", "rows_per_expert", "n", "k"});
  b->Args({4, 128, 2048, 7168});  // DeepSeek-V3 expert up projection, one EP64 rank's 4 experts
  b->Args({16, 1024, 128, 256});  // v3-small expert gate/up projection
  b->Args({16, 1024, 256, 128});  // v3-small expert down projection
  b->Unit(benchmark::kMillisecond);
  b->UseRealTime();
}

}  // namespace

BENCHMARK(BM_grouped_gemm)->Apply(shapes);
BENCHMARK(BM_sgemm_one)->Apply(shapes);

MOELAB_BENCHMARK_MAIN();
