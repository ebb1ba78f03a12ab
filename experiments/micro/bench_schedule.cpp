// Pipeline schedule simulator speed (issue 6: "a DualPipe schedule for PP=16
// and 256 micro-batches simulated in well under a second"). Three cases per
// schedule kind: generate (the per-rank programs), validate (structure,
// completeness, order, deadlock replay) and simulate (validate + timed replay
// + per-rank figures, what `moelab schedule` runs). Counter ops_per_s: ops of
// the schedule (all ranks) over the time of one iteration.
#include <benchmark/benchmark.h>

#include "parallel/schedule/generators.hpp"
#include "parallel/schedule/simulate.hpp"
#include "parallel/schedule/validate.hpp"

using namespace moelab::schedule;

namespace {

const char* kKinds[] = {"1f1b", "zb1p", "dualpipe", "dualpipev"};

void set_counters(benchmark::State& state, const Schedule& s) {
  state.counters["ops"] = static_cast<double>(s.total_ops());
  state.counters["ops_per_s"] =
      benchmark::Counter(static_cast<double>(s.total_ops()), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_schedule_generate(benchmark::State& state) {
  const char* kind = kKinds[state.range(0)];
  Schedule s;
  for (auto _ : state) {
    s = make_schedule(kind, static_cast<int>(state.range(1)), static_cast<int>(state.range(2)));
    benchmark::DoNotOptimize(s.ops.data());
  }
  state.SetLabel(kind);
  set_counters(state, s);
}

void BM_schedule_validate(benchmark::State& state) {
  const char* kind = kKinds[state.range(0)];
  const Schedule s = make_schedule(kind, static_cast<int>(state.range(1)), static_cast<int>(state.range(2)));
  for (auto _ : state) {
    auto problems = find_problems(s);
    if (!problems.empty()) state.SkipWithError(problems[0].c_str());
    benchmark::DoNotOptimize(problems);
  }
  state.SetLabel(kind);
  set_counters(state, s);
}

void BM_schedule_simulate(benchmark::State& state) {
  const char* kind = kKinds[state.range(0)];
  const Schedule s = make_schedule(kind, static_cast<int>(state.range(1)), static_cast<int>(state.range(2)));
  const Durations d{1, 2, 1, 3, 0.1};
  for (auto _ : state) {
    SimResult r = simulate(s, d);
    benchmark::DoNotOptimize(r.events.data());
  }
  state.SetLabel(kind);
  set_counters(state, s);
  state.counters["makespan"] = simulate(s, d).makespan_s;  // F 1, B 2, W 1, F&B 3, p2p 0.1
}

// kind: 0 1f1b, 1 zb1p, 2 dualpipe, 3 dualpipev.
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"kind", "pp", "microbatches"});
  b->Args({2, 16, 256});  // the figure: DualPipe, PP 16, 256 micro-batches
  b->Args({0, 16, 256});
  b->Args({1, 16, 256});
  b->Args({3, 16, 256});
  b->Args({2, 8, 20});  // DeepSeek-V3 Figure 5
  b->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_schedule_generate)->Apply(shapes);
BENCHMARK(BM_schedule_validate)->Apply(shapes);
BENCHMARK(BM_schedule_simulate)->Apply(shapes);
BENCHMARK_MAIN();
