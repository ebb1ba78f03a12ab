// The MoE gate on DeepSeek-V3's shape (hidden 7168, 256 experts in 8 groups,
// top-4 groups, top-8 experts, sigmoid, bias): BM_topk_route is the routing
// alone (kernels/shared route_token per token), BM_router the gate GEMM +
// routing forward and the gating-weight backward. Tokens scaled to 1024 for
// the GEMM case on this machine.
#include "backend/cpu/topk.hpp"
#include <algorithm>
#include <cmath>

#include "bench_main.hpp"
#include "model/model.hpp"

using namespace moelab;

namespace {

void BM_topk_route(benchmark::State& state) {
  const ModelConfig cfg = model_preset("deepseek-v3");
  const int64_t tokens = state.range(0), E = cfg.n_routed_experts, K = cfg.num_experts_per_tok;
  auto scores = bench::random_floats(tokens * E, 1);
  for (auto& s : scores) s = 1.0f / (1.0f + std::exp(-s));
  auto bias = bench::random_floats(E, 2, 0.01);
  std::vector<int32_t> idx(tokens * K);
  std::vector<float> weight(tokens * K);
  const auto params = route_params(cfg);
  for (auto _ : state) {
    cpu::topk_route(idx.data(), weight.data(), scores.data(), bias.data(), tokens, params);
    benchmark::DoNotOptimize(idx.data());
  }
  state.counters["FLOP/s"] = bench::rate(cpu::topk_flops(tokens, E, K));
  state.counters["bytes/s"] = bench::rate(cpu::topk_bytes(tokens, E, K, 4));
  state.counters["tokens/s"] = bench::rate(static_cast<double>(tokens));
}

void BM_router(benchmark::State& state) {
  ModelConfig cfg = model_preset("deepseek-v3");
  cfg.num_hidden_layers = cfg.first_k_dense_replace + 1;  // one MoE layer is all we need
  cfg.num_nextn_predict_layers = 0;
  const int64_t tokens = state.range(0), H = cfg.hidden_size, E = cfg.n_routed_experts, K = cfg.num_experts_per_tok;
  RouterParams<float> gate;
  Param<float> weight("mlp.gate.weight", {E, H}), bias("mlp.gate.e_score_correction_bias", {E}, false);
  weight.value.data = bench::random_floats(E * H, 1, 0.006);
  bias.value.data = bench::random_floats(E, 2, 0.01);
  gate.weight = &weight;
  gate.bias = &bias;
  Tensor<float> x({tokens, H}, bench::random_floats(tokens * H, 3));
  Tensor<float> dw({tokens, K}, bench::random_floats(tokens * K, 4)), dx({tokens, H});
  RouterSaved<float> saved;
  for (auto _ : state) {
    router_forward(saved, gate, x, cfg);
    router_backward<float>(dx, saved, gate, x, dw, nullptr, cfg);
  }
  state.counters["FLOP/s"] = bench::rate(3 * 2.0 * tokens * H * E);  // gate GEMM fwd + dgrad + wgrad
  state.counters["tokens/s"] = bench::rate(static_cast<double>(tokens));
}

}  // namespace

BENCHMARK(BM_topk_route)->ArgNames({"tokens"})->Arg(4096)->Arg(16384)->UseRealTime();
BENCHMARK(BM_router)->ArgNames({"tokens"})->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

MOELAB_BENCHMARK_MAIN();
