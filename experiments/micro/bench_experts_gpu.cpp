// The routed experts of one MoE layer on the GPU as `moelab train --device
// cuda` runs them (cuda::CudaExperts): forward, and forward + backward
// (dgrad, wgrad, d_topk_weight), wall-clock time per call including the
// host<->device copies the model's interface implies (x and dy up; y, dx,
// d_topk_weight and the weight gradients down); weights are uploaded on the
// first call of the object only (a training step uploads them once per
// forward). FLOP/s counts the grouped SwiGLU FFN's GEMMs (3 per expert
// forward, 6 backward). Where there is no GPU every case ends with
// SkipWithError("no GPU ..."), never a silent pass.
#include <deque>
#include <vector>

#include "backend/cuda/experts.hpp"
#include "bench_main.hpp"
#include "kernels/device.hpp"

using namespace moelab;

namespace {

// tokens, experts, hidden, inner, top_k, backward (0/1), bf16 (0/1)
void BM_gpu_experts(benchmark::State& state) {
  if (cuda::device_count() == 0) {
    state.SkipWithError(cuda::device_description().c_str());
    return;
  }
  const int64_t T = state.range(0), E = state.range(1), H = state.range(2), I = state.range(3), K = state.range(4);
  const bool backward = state.range(5) != 0;
  const GemmPrecision precision = state.range(6) != 0 ? GemmPrecision::bf16 : GemmPrecision::fp32;
  std::deque<Param<float>> params;
  std::vector<MlpParams<float>> experts(E);
  for (int64_t e = 0; e < E; ++e) {
    auto make = [&](Shape s, uint64_t seed) {
      Param<float>& p = params.emplace_back("expert", s);
      p.value.data = bench::random_floats(p.value.numel(), seed, 0.02);
      return &p;
    };
    experts[e] = {make({I, H}, 3 * e + 1), make({I, H}, 3 * e + 2), make({H, I}, 3 * e + 3)};
  }
  Tensor<float> x({T, H}), w({T, K}), dy({T, H}), y, dx, dw;
  x.data = bench::random_floats(T * H, 7);
  dy.data = bench::random_floats(T * H, 8);
  w.data.assign(T * K, 1.0f / K);
  Tensor<int32_t> idx({T, K});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) idx[t * K + k] = static_cast<int32_t>((t * K + k) % E);  // balanced
  cuda::CudaExperts layer(experts, precision);
  layer.forward(y, x, idx, w);  // uploads the weights
  for (auto _ : state) {
    layer.forward(y, x, idx, w);
    if (backward) layer.backward(dx, dw, dy);
  }
  MOE_CUDA_CHECK(cudaDeviceSynchronize());
  const double flops = grouped_mlp_flops(T * K, H, I) * (backward ? 3.0 : 1.0);
  state.counters["FLOP/s"] = bench::rate(flops);
  state.counters["tokens/s"] = bench::rate(static_cast<double>(T));
}

}  // namespace

// v3-small (16 experts, hidden 256, inner 128, top-6 here) and a DeepSeek-V3
// EP=32 rank's share (8 experts of hidden 7168, inner 2048; 4096 tokens x top-8
// spread over 256 experts leave ~1024 rows per rank: T=1024, k=1 over 8).
BENCHMARK(BM_gpu_experts)
    ->ArgNames({"tokens", "experts", "hidden", "inner", "topk", "bwd", "bf16"})
    ->Args({4096, 16, 256, 128, 6, 0, 0})
    ->Args({4096, 16, 256, 128, 6, 1, 0})
    ->Args({1024, 8, 7168, 2048, 1, 0, 0})
    ->Args({1024, 8, 7168, 2048, 1, 1, 0})
    ->Args({1024, 8, 7168, 2048, 1, 1, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

MOELAB_BENCHMARK_MAIN();
