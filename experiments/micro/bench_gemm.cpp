// sgemm and the BF16-input GEMM of the CPU backend on DeepSeek-V3 shapes:
// the machine's own GEMM ceiling every layer benchmark is measured against.
// Shapes are V3's (hidden 7168, expert inner 2048) with the token count
// scaled to this machine (M = 256 tokens); said so in the case name.
#include <benchmark/benchmark.h>

#include <vector>

#include "backend/cpu/gemm.hpp"
#include "core/rng.hpp"

using namespace moelab;

namespace {

std::vector<float> random_matrix(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// y [M, N] = x [M, K] . W [N, K]^T, the layers' linear layout.
void BM_gemm(benchmark::State& state, cpu::GemmPrecision precision) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  auto a = random_matrix(m * k, 1), b = random_matrix(n * k, 2);
  std::vector<float> c(m * n);
  for (auto _ : state) {
    cpu::gemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n, precision);
    benchmark::DoNotOptimize(c.data());
  }
  const cpu::GemmShape shape{m, n, k};
  state.counters["FLOP/s"] = benchmark::Counter(cpu::gemm_flops(shape), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bytes/s"] =
      benchmark::Counter(cpu::gemm_bytes(shape, 4), benchmark::Counter::kIsIterationInvariantRate);
}

void v3_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"tokens", "n", "k"});
  b->Args({256, 2048, 7168});  // expert up/gate projection, 256 tokens (V3: thousands)
  b->Args({256, 7168, 2048});  // expert down projection
  b->Args({256, 1536, 7168});  // MLA q_a_proj
  b->Args({4096, 128, 256});   // v3-small expert: 4096 tokens, inner 128, hidden 256
  b->Unit(benchmark::kMillisecond);
  // NOTE: OpenBLAS runs on its own threads; CPU time of the calling thread
  // alone would overstate FLOP/s, so rates are per wall-clock second.
  b->UseRealTime();
}

}  // namespace

BENCHMARK_CAPTURE(BM_gemm, fp32, cpu::GemmPrecision::fp32)->Apply(v3_shapes);
BENCHMARK_CAPTURE(BM_gemm, bf16_inputs, cpu::GemmPrecision::bf16)->Apply(v3_shapes);
BENCHMARK_MAIN();
