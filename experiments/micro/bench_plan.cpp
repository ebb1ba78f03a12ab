// The capacity planner's own speed (issue: "one 2048-GPU DeepSeek-V3 step
// simulated in under a second; a sweep of 100 layouts in under a minute").
//   BM_plan_step     the paper layout (2048 H800, PP16 x EP64, DualPipe, 120
//                    micro-batches): work model, cost model, schedule
//                    generator + event simulator, DP sync, memory
//   BM_routing_stats the node-limited routing Monte Carlo a step draws once
//                    per (EP, node size) and caches
//   BM_plan_sweep    100 layouts: gpus {1024..16384} x pp {8,16} x ep {32,64}
//                    x schedule {1f1b, zb1p, dualpipe, dualpipev, gpipe}
#include <benchmark/benchmark.h>

#include <cstdio>

#include "core/error.hpp"
#include "model/config.hpp"
#include "sim/planner.hpp"

using namespace moelab;
using namespace moelab::sim;

namespace {

PlanConfig paper_layout() { return deepseek_v3_paper_layout(); }

void BM_plan_step(benchmark::State& state) {
  PlanConfig c = paper_layout();
  c.gpus = state.range(0);
  double tps = 0;
  for (auto _ : state) {
    const PlanResult r = plan_step(c);
    tps = r.tokens_per_s_per_gpu;
    benchmark::DoNotOptimize(tps);
  }
  state.counters["steps/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_routing_stats(benchmark::State& state) {
  const ModelConfig cfg = model_preset("deepseek-v3");
  for (auto _ : state) {
    RoutingStats st = node_limited_routing_stats(cfg, state.range(0), 8, 1, state.range(1));
    benchmark::DoNotOptimize(st.nodes_per_token);
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(state.range(1)),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

void BM_plan_sweep(benchmark::State& state) {
  int64_t layouts = 0, feasible = 0;
  for (auto _ : state) {
    layouts = feasible = 0;
    for (int64_t gpus : {1024, 2048, 4096, 8192, 16384})
      for (int64_t pp : {8, 16})
        for (int64_t ep : {32, 64})
          for (const char* schedule : {"1f1b", "zb1p", "dualpipe", "dualpipev", "gpipe"}) {
            PlanConfig c = paper_layout();
            c.gpus = gpus;
            c.pp = pp;
            c.ep = ep;
            c.schedule = schedule;
            c.global_batch = 15360 * std::max<int64_t>(1, gpus / 4096);
            ++layouts;
            try {
              feasible += plan_step(c).memory.fits();
            } catch (const Error&) {
            }
          }
  }
  if (layouts != 100) state.SkipWithError("expected 100 layouts");
  state.counters["layouts"] = static_cast<double>(layouts);
  state.counters["feasible"] = static_cast<double>(feasible);
  state.counters["layouts/s"] = benchmark::Counter(static_cast<double>(layouts),
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_plan_step)->ArgNames({"gpus"})->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_routing_stats)->ArgNames({"ep", "tokens"})->Args({64, 8192})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_plan_sweep)->ArgNames({"layouts"})->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK_MAIN();
