// RMSNorm forward and backward at DeepSeek-V3's hidden size 7168.
#include "backend/cpu/rmsnorm.hpp"
#include "bench_main.hpp"

using namespace moelab;

namespace {

void BM_rmsnorm(benchmark::State& state, bool backward) {
  const int64_t rows = state.range(0), dim = state.range(1);
  auto x = bench::random_floats(rows * dim, 1), w = bench::random_floats(dim, 2), dy = bench::random_floats(rows * dim, 3);
  std::vector<float> y(rows * dim), inv(rows), dw(dim);
  cpu::rmsnorm_forward(y.data(), inv.data(), x.data(), w.data(), rows, dim, 1e-6);
  for (auto _ : state) {
    if (backward)
      cpu::rmsnorm_backward(y.data(), dw.data(), dy.data(), x.data(), w.data(), inv.data(), rows, dim);
    else
      cpu::rmsnorm_forward(y.data(), inv.data(), x.data(), w.data(), rows, dim, 1e-6);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] =
      bench::rate(backward ? cpu::rmsnorm_backward_flops(rows, dim) : cpu::rmsnorm_flops(rows, dim));
  state.counters["bytes/s"] =
      bench::rate(backward ? cpu::rmsnorm_backward_bytes(rows, dim, 4) : cpu::rmsnorm_bytes(rows, dim, 4));
}

}  // namespace

BENCHMARK_CAPTURE(BM_rmsnorm, forward, false)->ArgNames({"rows", "hidden"})->Args({4096, 7168})->UseRealTime();
BENCHMARK_CAPTURE(BM_rmsnorm, backward, true)->ArgNames({"rows", "hidden"})->Args({4096, 7168})->UseRealTime();

MOELAB_BENCHMARK_MAIN();
