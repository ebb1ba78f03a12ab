// SwiGLU activation forward and backward on the fused [gate | up] layout,
// DeepSeek-V3 expert inner size 2048, rows = tokens routed to one expert group.
#include "backend/cpu/swiglu.hpp"
#include "bench_main.hpp"

using namespace moelab;

namespace {

void BM_swiglu(benchmark::State& state, bool backward) {
  const int64_t rows = state.range(0), n = state.range(1);
  auto gu = bench::random_floats(rows * 2 * n, 1);
  auto dh = bench::random_floats(rows * n, 2);
  std::vector<float> h(rows * n), dgu(rows * 2 * n);
  for (auto _ : state) {
    if (backward)
      cpu::swiglu_backward(dgu.data(), dgu.data() + n, dh.data(), gu.data(), gu.data() + n, rows, n, 2 * n);
    else
      cpu::swiglu_forward(h.data(), gu.data(), gu.data() + n, rows, n, 2 * n);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = bench::rate(backward ? cpu::swiglu_backward_flops(rows, n) : cpu::swiglu_flops(rows, n));
  state.counters["bytes/s"] =
      bench::rate(backward ? cpu::swiglu_backward_bytes(rows, n, 4) : cpu::swiglu_bytes(rows, n, 4));
}

}  // namespace

BENCHMARK_CAPTURE(BM_swiglu, forward, false)->ArgNames({"rows", "inner"})->Args({4096, 2048})->UseRealTime();
BENCHMARK_CAPTURE(BM_swiglu, backward, true)->ArgNames({"rows", "inner"})->Args({4096, 2048})->UseRealTime();

MOELAB_BENCHMARK_MAIN();
