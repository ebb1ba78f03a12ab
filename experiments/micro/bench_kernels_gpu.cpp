// GPU micro-benchmarks of kernels/: cuBLAS GEMM (FP32, BF16) on DeepSeek-V3
// expert shapes, FP8 quantization (1x128, 128x128) and RMSNorm. Manual time
// from CUDA events; the L2 cache is flushed (a 256 MiB memset) before every
// timed launch so each one reads its operands from HBM. Where there is no GPU
// every case ends with SkipWithError("no GPU ..."), never a silent pass.
#include <benchmark/benchmark.h>

#include <vector>

#include "backend/cpu/gemm.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

using namespace moelab;

namespace {

bool skip_without_gpu(benchmark::State& state) {
  if (cuda::device_count() > 0) return false;
  state.SkipWithError(cuda::device_description().c_str());
  return true;
}

class GpuTimer {
 public:
  GpuTimer() {
    MOE_CUDA_CHECK(cudaEventCreate(&start_));
    MOE_CUDA_CHECK(cudaEventCreate(&stop_));
    MOE_CUDA_CHECK(cudaMalloc(&flush_, kFlushBytes));
  }
  ~GpuTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
    cudaFree(flush_);
  }
  // Seconds taken by launch(), after flushing L2.
  template <typename F>
  double time(F&& launch) {
    MOE_CUDA_CHECK(cudaMemset(flush_, 0, kFlushBytes));
    MOE_CUDA_CHECK(cudaEventRecord(start_));
    launch();
    MOE_CUDA_CHECK(cudaEventRecord(stop_));
    MOE_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms * 1e-3;
  }

 private:
  static constexpr size_t kFlushBytes = size_t(256) << 20;
  cudaEvent_t start_, stop_;
  void* flush_ = nullptr;
};

float* device_zeros(size_t n) {
  float* p = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
  MOE_CUDA_CHECK(cudaMemset(p, 0, n * sizeof(float)));
  return p;
}

void BM_gpu_gemm(benchmark::State& state, bool bf16) {
  if (skip_without_gpu(state)) return;
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  float *x = device_zeros(m * k), *w = device_zeros(n * k), *y = device_zeros(m * n);
  GpuTimer timer;
  for (auto _ : state)
    state.SetIterationTime(timer.time([&] {
      bf16 ? cuda::gemm_xwt_bf16(y, x, w, m, n, k, nullptr) : cuda::gemm_xwt_f32(y, x, w, m, n, k, nullptr);
    }));
  const cpu::GemmShape shape{m, n, k};
  state.counters["FLOP/s"] = benchmark::Counter(cpu::gemm_flops(shape), benchmark::Counter::kIsIterationInvariantRate);
  cudaFree(x), cudaFree(w), cudaFree(y);
}

void BM_gpu_fp8_quantize(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t rows = state.range(0), cols = state.range(1);
  const int tile_rows = static_cast<int>(state.range(2));
  float* x = device_zeros(rows * cols);
  float* scales = device_zeros(rows * cols / 128 + 1);
  uint8_t* codes = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&codes, rows * cols));
  GpuTimer timer;
  for (auto _ : state)
    state.SetIterationTime(timer.time([&] {
      cuda::fp8_quantize(codes, scales, x, rows, cols, tile_rows, 128, shared::kE4M3, false, nullptr);
    }));
  state.counters["bytes/s"] = benchmark::Counter(5.0 * rows * cols, benchmark::Counter::kIsIterationInvariantRate);
  cudaFree(x), cudaFree(scales), cudaFree(codes);
}

void BM_gpu_rmsnorm(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t rows = state.range(0), n = state.range(1);
  float *x = device_zeros(rows * n), *w = device_zeros(n), *y = device_zeros(rows * n);
  GpuTimer timer;
  for (auto _ : state)
    state.SetIterationTime(timer.time([&] { cuda::rmsnorm_forward(y, x, w, rows, static_cast<int>(n), 1e-6f, nullptr); }));
  state.counters["bytes/s"] = benchmark::Counter(8.0 * rows * n, benchmark::Counter::kIsIterationInvariantRate);
  cudaFree(x), cudaFree(w), cudaFree(y);
}

void BM_gpu_router(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t tokens = state.range(0);
  const shared::RouteParams params{256, 8, 4, 8, shared::kRouteNoauxTc, true, 2.5};
  float *scores = device_zeros(tokens * 256), *bias = device_zeros(256), *weight = device_zeros(tokens * 8);
  int32_t* idx = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&idx, tokens * 8 * sizeof(int32_t)));
  GpuTimer timer;
  for (auto _ : state)
    state.SetIterationTime(timer.time([&] { cuda::route_tokens(idx, weight, scores, bias, tokens, params, nullptr); }));
  state.counters["bytes/s"] = benchmark::Counter(4.0 * tokens * (256 + 16), benchmark::Counter::kIsIterationInvariantRate);
  cudaFree(scores), cudaFree(bias), cudaFree(weight), cudaFree(idx);
}

// MLA's attention core after projection: 128 heads, dqk 192, dv 128.
void BM_gpu_attention(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t seq = state.range(0), heads = 128, dqk = 192, dv = 128;
  float *q = device_zeros(seq * heads * dqk), *k = device_zeros(seq * heads * dqk), *v = device_zeros(seq * heads * dv);
  float *o = device_zeros(seq * heads * dv), *probs = device_zeros(heads * seq * seq);
  GpuTimer timer;
  for (auto _ : state)
    state.SetIterationTime(timer.time(
        [&] { cuda::attention_forward(o, probs, q, k, v, 1, seq, heads, dqk, dv, 0.07f, nullptr); }));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * heads * seq * seq * (dqk + dv) / 2,
                                                benchmark::Counter::kIsIterationInvariantRate);
  cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(o), cudaFree(probs);
}

}  // namespace

BENCHMARK(BM_gpu_router)->ArgNames({"tokens"})->Arg(16384)->UseManualTime();
BENCHMARK(BM_gpu_attention)->ArgNames({"seq"})->Arg(1024)->UseManualTime();

// V3 expert up/gate projection and down projection for 4096 routed tokens.
BENCHMARK_CAPTURE(BM_gpu_gemm, f32, false)->ArgNames({"tokens", "n", "k"})->Args({4096, 2048, 7168})->Args({4096, 7168, 2048})->UseManualTime();
BENCHMARK_CAPTURE(BM_gpu_gemm, bf16, true)->ArgNames({"tokens", "n", "k"})->Args({4096, 2048, 7168})->Args({4096, 7168, 2048})->UseManualTime();
BENCHMARK(BM_gpu_fp8_quantize)->ArgNames({"tokens", "hidden", "tile_rows"})->Args({4096, 7168, 1})->Args({4096, 7168, 128})->UseManualTime();
BENCHMARK(BM_gpu_rmsnorm)->ArgNames({"tokens", "hidden"})->Args({4096, 7168})->UseManualTime();

// ---- issue 10, second round: backward kernels, grouped and block-scaled FP8 GEMMs ----
namespace {

void BM_gpu_rmsnorm_backward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t rows = state.range(0), n = state.range(1);
  float *x = device_zeros(rows * n), *dy = device_zeros(rows * n), *dx = device_zeros(rows * n);
  float *w = device_zeros(n), *dw = device_zeros(n), *r = device_zeros(rows);
  GpuTimer timer;
  for (auto _ : state)
    state.SetIterationTime(timer.time([&] { cuda::rmsnorm_backward(dx, dw, dy, x, w, r, rows, n, nullptr); }));
  state.counters["bytes/s"] = benchmark::Counter(16.0 * rows * n, benchmark::Counter::kIsIterationInvariantRate);
  cudaFree(x), cudaFree(dy), cudaFree(dx), cudaFree(w), cudaFree(dw), cudaFree(r);
}

void BM_gpu_attention_backward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t seq = state.range(0), heads = 128, dqk = 192, dv = 128;
  float *q = device_zeros(seq * heads * dqk), *k = device_zeros(seq * heads * dqk), *v = device_zeros(seq * heads * dv);
  float *o = device_zeros(seq * heads * dv), *d_o = device_zeros(seq * heads * dv);
  float *probs = device_zeros(heads * seq * seq), *ds = device_zeros(heads * seq * seq);
  float *dq = device_zeros(seq * heads * dqk), *dk = device_zeros(seq * heads * dqk), *dvv = device_zeros(seq * heads * dv);
  GpuTimer timer;
  for (auto _ : state)
    state.SetIterationTime(timer.time([&] {
      cuda::attention_backward(dq, dk, dvv, ds, d_o, q, k, v, o, probs, 1, seq, heads, dqk, dv, 0.07f, nullptr);
    }));
  state.counters["FLOP/s"] = benchmark::Counter(4.0 * heads * seq * seq * (dqk + dv) / 2,
                                                benchmark::Counter::kIsIterationInvariantRate);
  for (float* p : {q, k, v, o, d_o, probs, ds, dq, dk, dvv}) cudaFree(p);
}

// DeepSeek-V3 routed experts on one EP rank: `experts` experts of `rows` rows, gate/up shape (2048 x 7168).
void BM_gpu_grouped_gemm(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t experts = state.range(0), rows = state.range(1), n = 2048, k = 7168;
  float *a = device_zeros(experts * rows * k), *c = device_zeros(experts * rows * n), *w = device_zeros(experts * n * k);
  std::vector<const float*> ws;
  std::vector<int64_t> offsets;
  for (int64_t e = 0; e <= experts; ++e) offsets.push_back(e * rows);
  for (int64_t e = 0; e < experts; ++e) ws.push_back(w + e * n * k);
  GpuTimer timer;
  for (auto _ : state)
    state.SetIterationTime(timer.time(
        [&] { cuda::grouped_gemm_xwt(c, a, ws.data(), offsets.data(), experts, n, k, true, nullptr); }));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * experts * rows * n * k, benchmark::Counter::kIsIterationInvariantRate);
  cudaFree(a), cudaFree(c), cudaFree(w);
}

void BM_gpu_fp8_gemm_blockscaled(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  if (!cuda::fp8_gemm_blockscaled_supported()) {
    state.SkipWithError("cuBLASLt block-scaled FP8 needs sm_90");
    return;
  }
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  uint8_t *a = nullptr, *w = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&a, m * k));
  MOE_CUDA_CHECK(cudaMalloc(&w, n * k));
  MOE_CUDA_CHECK(cudaMemset(a, 0, m * k));
  MOE_CUDA_CHECK(cudaMemset(w, 0, n * k));
  float *sa = device_zeros(m * ((k + 127) / 128)), *sw = device_zeros(((n + 127) / 128) * ((k + 127) / 128));
  float* y = device_zeros(m * n);
  GpuTimer timer;
  for (auto _ : state)
    state.SetIterationTime(timer.time([&] { cuda::fp8_gemm_blockscaled(y, a, sa, w, sw, m, n, k, nullptr); }));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
  cudaFree(a), cudaFree(w), cudaFree(sa), cudaFree(sw), cudaFree(y);
}

}  // namespace

BENCHMARK(BM_gpu_rmsnorm_backward)->ArgNames({"tokens", "hidden"})->Args({4096, 7168})->UseManualTime();
BENCHMARK(BM_gpu_attention_backward)->ArgNames({"seq"})->Arg(1024)->UseManualTime();
BENCHMARK(BM_gpu_grouped_gemm)->ArgNames({"experts", "rows"})->Args({32, 128})->Args({8, 512})->UseManualTime();
BENCHMARK(BM_gpu_fp8_gemm_blockscaled)->ArgNames({"tokens", "n", "k"})->Args({4096, 2048, 7168})->Args({4096, 7168, 2048})->UseManualTime();

BENCHMARK_MAIN();
