// RoPE (adjacent pairs, YaRN table) on DeepSeek-V3's query rope part:
// 128 heads x 64 rope dims inside 192-wide heads, 4096 tokens.
#include "backend/cpu/rope.hpp"
#include "bench_main.hpp"
#include "model/rope.hpp"

using namespace moelab;

namespace {

void BM_rope(benchmark::State& state) {
  const ModelConfig cfg = model_preset("deepseek-v3");
  const int64_t tokens = state.range(0), heads = cfg.num_attention_heads, dqk = cfg.qk_head_dim();
  const auto rope = make_mla_rope<float>(cfg, tokens);
  auto q = bench::random_floats(tokens * heads * dqk, 1);
  std::vector<int32_t> pos(tokens);
  for (int64_t t = 0; t < tokens; ++t) pos[t] = static_cast<int32_t>(t);
  for (auto _ : state) {
    cpu::rope_apply(q.data() + cfg.qk_nope_head_dim, tokens, heads * dqk, heads, dqk, pos.data(), rope.table, false);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = bench::rate(cpu::rope_flops(tokens, heads, cfg.qk_rope_head_dim));
  state.counters["bytes/s"] = bench::rate(cpu::rope_bytes(tokens, heads, cfg.qk_rope_head_dim, 4));
}

}  // namespace

BENCHMARK(BM_rope)->ArgNames({"tokens"})->Arg(4096)->UseRealTime();

MOELAB_BENCHMARK_MAIN();
