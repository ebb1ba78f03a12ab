// Multi-head Latent Attention forward + backward (training form) on
// v3-small (hidden 256, 4 heads, q_lora 128, kv_lora 64, YaRN), the shape
// this 2-core machine trains; DeepSeek-V3's MLA (hidden 7168, 128 heads) is
// ~10^3 times the work per token. FLOPs from mla_flops (x3 for fwd+bwd).
#include "bench_main.hpp"
#include "model/model.hpp"

using namespace moelab;

namespace {

void BM_mla(benchmark::State& state) {
  const ModelConfig cfg = model_preset("v3-small");
  const SeqShape shape{state.range(0), state.range(1)};
  ModelParams<float> params(cfg, false);
  params.init(1, 0.02);
  const MlaParams<float>& attn = params.layers[0].attn;
  const auto rope = make_mla_rope<float>(cfg, shape.seq_len);
  const ModelContext<float> ctx;
  const int64_t n = shape.tokens() * cfg.hidden_size;
  Tensor<float> x({shape.tokens(), cfg.hidden_size}, bench::random_floats(n, 1));
  Tensor<float> dy({shape.tokens(), cfg.hidden_size}, bench::random_floats(n, 2, 1e-3));
  MlaSaved<float> saved;
  Tensor<float> y, dx;
  for (auto _ : state) {
    mla_forward(y, saved, attn, x, cfg, shape, rope, ctx);
    mla_backward(dx, saved, attn, dy, cfg, shape, rope, ctx);
  }
  state.counters["FLOP/s"] = bench::rate(3.0 * mla_flops(cfg, shape));
  state.counters["tokens/s"] = bench::rate(static_cast<double>(shape.tokens()));
}

}  // namespace

BENCHMARK(BM_mla)->ArgNames({"seqs", "seq_len"})->Args({16, 256})->Args({4, 1024})->Unit(benchmark::kMillisecond)->UseRealTime();

MOELAB_BENCHMARK_MAIN();
