// A probe benchmark for the tests of `moelab bench` and `moelab compare`: a
// dependent integer loop of 1M steps per iteration, MOELAB_PROBE_SLOWDOWN
// times more when set (1.2 = the synthetic 20% slowdown the regression test
// must catch). The tests judge its cpu_time: the CPU time of a loop that
// touches no memory hardly moves when other processes load the machine,
// where wall time (and a sleep's wake-up) does.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>

namespace {

void BM_probe_spin(benchmark::State& state) {
  const char* factor_text = std::getenv("MOELAB_PROBE_SLOWDOWN");
  const double factor = factor_text ? std::atof(factor_text) : 1.0;
  const int64_t steps = static_cast<int64_t>(state.range(0) * factor);
  uint64_t x = 1;
  for (auto _ : state) {
    for (int64_t i = 0; i < steps; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;  // one LCG step, serially dependent
      benchmark::DoNotOptimize(x);
    }
  }
  state.counters["steps/s"] = benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_probe_spin)->ArgNames({"steps"})->Arg(1000000)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
