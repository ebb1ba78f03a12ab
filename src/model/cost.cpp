// The work model of DeepSeek-V3 layers; see cost.hpp for the conventions.
#include "model/cost.hpp"

#include <algorithm>

#include "backend/cpu/attention.hpp"
#include "backend/cpu/gemm.hpp"
#include "backend/cpu/grouped_gemm.hpp"
#include "backend/cpu/rmsnorm.hpp"
#include "backend/cpu/swiglu.hpp"
#include "core/error.hpp"

namespace moelab::cost {

const char* op_class_name(OpClass c) {
  switch (c) {
    case OpClass::gemm: return "gemm";
    case OpClass::grouped_gemm: return "grouped_gemm";
    case OpClass::attention: return "attention";
    case OpClass::memory: return "memory";
  }
  return "?";
}

// FLOP and byte counts come from the CPU backend's flops()/bytes() beside
// each op (src/backend/cpu/*.hpp) wherever the op is the same; what differs
// on a GPU (FP8 operands with BF16/FP32 outputs, flash attention skipping the
// masked half) is said where it is priced.
double gemm_flops(int64_t m, int64_t n, int64_t k) { return cpu::gemm_flops(cpu::GemmShape{m, n, k}); }

double gemm_bytes(int64_t m, int64_t n, int64_t k, double in_bytes, double out_bytes) {
  return in_bytes * (static_cast<double>(m) * k + static_cast<double>(n) * k) + out_bytes * static_cast<double>(m) * n;
}

double attention_fwd_flops(const ModelConfig& cfg, int64_t tokens, int64_t seq_len) {
  // The CPU reference computes the full S x S scores and masks them
  // (cpu::attention_flops: 2*B*nh*S*S*(Dqk+Dv) matmul + 5*B*nh*S*S softmax);
  // flash kernels skip the masked half, so the causal model FLOPs are half
  // the matmul term: T*S*nh*(Dqk+Dv) over T/S sequences.
  const int64_t s = std::min(seq_len, tokens);
  const cpu::AttentionShape shape{tokens / s, s, cfg.num_attention_heads, cfg.qk_head_dim(), cfg.v_head_dim};
  const double softmax = 5.0 * shape.batch * shape.heads * static_cast<double>(s) * s;
  const double full = cpu::attention_flops(shape) - softmax;
  const double partial = static_cast<double>(tokens % s) * s * cfg.num_attention_heads *
                         (cfg.qk_head_dim() + cfg.v_head_dim);  // a last, shorter sequence (T not a multiple of S)
  return 0.5 * full + partial;
}

double LayerWork::fwd_flops() const {
  double f = 0;
  for (const auto& op : ops) f += op.fwd_flops;
  return f;
}

double LayerWork::bwd_flops() const {
  double f = 0;
  for (const auto& op : ops) f += op.dgrad_flops + op.wgrad_flops + op.recompute_flops;
  return f;
}

namespace {

// A Linear GEMM y [m,n] = x [m,k] W[n,k]^T: Fprop, Dgrad and Wgrad of equal FLOPs.
// FP8: inputs 1 byte, output BF16 (Wgrad output FP32, DeepSeek-V3 Figure 6).
OpWork linear(const std::string& name, int64_t m, int64_t n, int64_t k, Precision p, bool recompute = false) {
  OpWork op;
  op.name = name;
  op.op_class = OpClass::gemm;
  op.precision = p;
  op.m = m, op.n = n, op.k = k;
  const double in_b = p == Precision::fp8 ? 1.0 : 2.0;
  op.fwd_flops = op.dgrad_flops = op.wgrad_flops = gemm_flops(m, n, k);
  op.fwd_bytes = gemm_bytes(m, n, k, in_b, 2.0);
  op.dgrad_bytes = in_b * (static_cast<double>(m) * n + static_cast<double>(n) * k) + 2.0 * m * k;
  op.wgrad_bytes = in_b * (static_cast<double>(m) * n + static_cast<double>(m) * k) + 4.0 * n * k;
  if (recompute) {
    op.recompute_flops = op.fwd_flops;
    op.recompute_bytes = op.fwd_bytes;
  }
  return op;
}

// Routed experts: `rows` token-expert pairs spread over `groups` experts.
OpWork grouped(const std::string& name, int64_t rows, int64_t n, int64_t k, int64_t groups) {
  OpWork op = linear(name, rows, n, k, Precision::fp8);
  op.op_class = OpClass::grouped_gemm;
  op.groups = groups;
  op.fwd_flops = op.dgrad_flops = op.wgrad_flops = cpu::grouped_gemm_flops(rows, n, k);
  // Weights of every group are read once; FP8 operands (1 B), BF16 output (+1 B per output element).
  op.fwd_bytes = cpu::grouped_gemm_bytes(rows, groups, n, k, 1) + 1.0 * rows * n;
  op.dgrad_bytes = 1.0 * rows * n + 1.0 * groups * n * k + 2.0 * rows * k;
  op.wgrad_bytes = 1.0 * rows * n + 1.0 * rows * k + 4.0 * groups * n * k;
  op.expert_parallel = true;
  return op;
}

// A memory-bound op: bytes forward and backward (backward defaults to twice
// the forward: read the saved input and the output gradient, write the input gradient).
OpWork memory_op(const std::string& name, double fwd_bytes, double bwd_bytes, bool recompute = false) {
  OpWork op;
  op.name = name;
  op.op_class = OpClass::memory;
  op.fwd_bytes = fwd_bytes;
  op.dgrad_bytes = bwd_bytes;
  if (recompute) op.recompute_bytes = fwd_bytes;
  return op;
}

// RMSNorm over rows of `dim` in BF16 (the CPU backend's byte model).
OpWork norm_op(const std::string& name, int64_t rows, int64_t dim, bool recompute) {
  return memory_op(name, cpu::rmsnorm_bytes(rows, dim, 2), cpu::rmsnorm_backward_bytes(rows, dim, 2), recompute);
}

// FP8 casts around the FP8 GEMMs of a block: forward quantizes each input
// (read BF16, write FP8: 3 B/elem); backward quantizes the output gradient and
// the transposed (128x1-tile) copies of input and gradient for Wgrad.
OpWork fp8_casts(const std::string& name, const std::vector<OpWork>& gemms) {
  double fwd = 0, bwd = 0;
  for (const auto& g : gemms) {
    if (g.precision != Precision::fp8) continue;
    fwd += 3.0 * g.m * g.k;
    bwd += 3.0 * g.m * g.n + 3.0 * g.m * g.k + 3.0 * g.m * g.n;
  }
  return memory_op(name, fwd, bwd);
}

void append_attention(std::vector<OpWork>& ops, const ModelConfig& cfg, const WorkOptions& opt) {
  const int64_t T = opt.tokens, H = cfg.hidden_size, nh = cfg.num_attention_heads;
  const int64_t Dn = cfg.qk_nope_head_dim, Dr = cfg.qk_rope_head_dim, Dv = cfg.v_head_dim, Dc = cfg.kv_lora_rank;
  const bool rc = opt.recompute_norm_and_mla_up;
  ops.push_back(norm_op("attn_norm", T, H, rc));
  std::vector<OpWork> gemms;
  if (cfg.q_lora_rank) {
    const int64_t Dq = *cfg.q_lora_rank;
    gemms.push_back(linear("q_a_proj", T, Dq, H, Precision::fp8));
    ops.push_back(norm_op("q_a_norm", T, Dq, rc));
    gemms.push_back(linear("q_b_proj", T, nh * (Dn + Dr), Dq, Precision::fp8, rc));
  } else {
    gemms.push_back(linear("q_proj", T, nh * (Dn + Dr), H, Precision::fp8));
  }
  gemms.push_back(linear("kv_a_proj_with_mqa", T, Dc + Dr, H, Precision::fp8));
  ops.push_back(norm_op("kv_a_norm", T, Dc, rc));
  gemms.push_back(linear("kv_b_proj", T, nh * (Dn + Dv), Dc, Precision::fp8, rc));
  gemms.push_back(linear("o_proj", T, H, nh * Dv, Precision::fp8));
  ops.push_back(fp8_casts("attn_fp8_casts", gemms));
  for (auto& g : gemms) ops.push_back(g);

  OpWork core;
  core.name = "attn_core";
  core.op_class = OpClass::attention;
  core.precision = Precision::bf16;
  core.m = T;
  core.n = opt.seq_len;
  core.k = cfg.qk_head_dim();
  core.fwd_flops = attention_fwd_flops(cfg, T, opt.seq_len);
  core.dgrad_flops = 2.5 * core.fwd_flops;
  const double qkvo = 2.0 * T * nh * (2.0 * cfg.qk_head_dim() + 2.0 * Dv);
  core.fwd_bytes = qkvo;
  core.dgrad_bytes = 2.0 * qkvo;
  ops.push_back(core);
  ops.push_back(memory_op("attn_residual", 6.0 * T * H, 6.0 * T * H));
}

void append_dense_ffn(std::vector<OpWork>& ops, const ModelConfig& cfg, const WorkOptions& opt, int64_t inter,
                      const std::string& prefix) {
  const int64_t T = opt.tokens, H = cfg.hidden_size;
  std::vector<OpWork> gemms{linear(prefix + ".gate_up_proj", T, 2 * inter, H, Precision::fp8),
                            linear(prefix + ".down_proj", T, H, inter, Precision::fp8)};
  ops.push_back(fp8_casts(prefix + ".fp8_casts", gemms));
  for (auto& g : gemms) ops.push_back(g);
  // SwiGLU: read gate and up (BF16), write the product; recomputed in backward (§3.3.3).
  ops.push_back(memory_op(prefix + ".swiglu", cpu::swiglu_bytes(T, inter, 2), cpu::swiglu_backward_bytes(T, inter, 2), true));
}

void append_moe(std::vector<OpWork>& ops, const ModelConfig& cfg, const WorkOptions& opt) {
  const int64_t T = opt.tokens, H = cfg.hidden_size, E = cfg.n_routed_experts, K = cfg.num_experts_per_tok;
  const int64_t I = cfg.moe_intermediate_size;
  const bool rc = opt.recompute_norm_and_mla_up;
  ops.push_back(norm_op("ffn_norm", T, H, rc));
  ops.push_back(linear("gate", T, E, H, Precision::bf16));  // router: BF16 (§3.3.1)
  if (cfg.n_shared_experts > 0) append_dense_ffn(ops, cfg, opt, cfg.n_shared_experts * I, "shared_experts");
  const int64_t rows = T * K;
  std::vector<OpWork> routed{grouped("experts.gate_up_proj", rows, 2 * I, H, E),
                             grouped("experts.down_proj", rows, H, I, E)};
  OpWork casts = fp8_casts("experts.fp8_casts", routed);
  casts.expert_parallel = true;
  ops.push_back(casts);
  for (auto& g : routed) ops.push_back(g);
  OpWork swiglu =
      memory_op("experts.swiglu", cpu::swiglu_bytes(rows, I, 2), cpu::swiglu_backward_bytes(rows, I, 2), true);
  swiglu.expert_parallel = true;
  ops.push_back(swiglu);
  // Combine: weighted sum of K expert outputs (BF16) per token.
  ops.push_back(memory_op("combine_weighting", (2.0 * K + 2.0) * T * H, (4.0 * K + 2.0) * T * H));
  ops.push_back(memory_op("ffn_residual", 6.0 * T * H, 6.0 * T * H));
}

}  // namespace

OpWork expert_parallel_share(const OpWork& op, int64_t ep) {
  if (!op.expert_parallel || op.op_class != OpClass::grouped_gemm) return op;
  MOE_CHECK(ep >= 1 && op.groups % ep == 0) << op.name << ": experts (" << op.groups
                                            << ") not divisible by EP degree (" << ep << ")";
  return grouped(op.name, op.m, op.n, op.k, op.groups / ep);
}

LayerWork decoder_layer_work(const ModelConfig& cfg, int64_t layer, const WorkOptions& opt) {
  MOE_CHECK(opt.tokens > 0 && opt.seq_len > 0) << "work model: tokens (" << opt.tokens << ") and seq_len ("
                                               << opt.seq_len << ") must be positive";
  LayerWork w;
  w.layer = layer;
  w.kind = cfg.is_moe_layer(layer) ? LayerKind::moe : LayerKind::dense;
  append_attention(w.ops, cfg, opt);
  if (w.kind == LayerKind::moe) {
    append_moe(w.ops, cfg, opt);
  } else {
    const int64_t T = opt.tokens, H = cfg.hidden_size;
    w.ops.push_back(norm_op("ffn_norm", T, H, opt.recompute_norm_and_mla_up));
    append_dense_ffn(w.ops, cfg, opt, cfg.intermediate_size, "mlp");
    w.ops.push_back(memory_op("ffn_residual", 6.0 * T * H, 6.0 * T * H));
  }
  return w;
}

LayerWork embedding_work(const ModelConfig& cfg, const WorkOptions& opt) {
  LayerWork w;
  w.kind = LayerKind::embedding;
  const double TH = static_cast<double>(opt.tokens) * cfg.hidden_size;
  // Gather rows (BF16); backward scatter-adds into an FP32 gradient.
  w.ops.push_back(memory_op("embed_tokens", 4.0 * TH, 10.0 * TH));
  return w;
}

LayerWork head_work(const ModelConfig& cfg, const WorkOptions& opt) {
  LayerWork w;
  w.kind = LayerKind::head;
  const int64_t T = opt.tokens, H = cfg.hidden_size, V = cfg.vocab_size;
  w.ops.push_back(norm_op("norm", T, H, false));
  w.ops.push_back(linear("lm_head", T, V, H, Precision::bf16));  // BF16 (§3.3.1)
  // Softmax cross-entropy over logits: read logits, write the gradient.
  w.ops.push_back(memory_op("loss", 4.0 * T * V, 4.0 * T * V));
  return w;
}

LayerWork mtp_work(const ModelConfig& cfg, const WorkOptions& opt) {
  LayerWork w;
  w.kind = LayerKind::mtp;
  const int64_t T = opt.tokens, H = cfg.hidden_size;
  w.ops.push_back(memory_op("enorm_hnorm", 8.0 * T * H, 12.0 * T * H));
  w.ops.push_back(linear("eh_proj", T, H, 2 * H, Precision::fp8));
  LayerWork block = decoder_layer_work(cfg, cfg.num_hidden_layers, opt);  // an MoE block
  for (auto& op : block.ops) w.ops.push_back(op);
  LayerWork head = head_work(cfg, opt);  // shared head, its own loss
  for (auto& op : head.ops) w.ops.push_back(op);
  return w;
}

std::vector<LayerWork> model_work(const ModelConfig& cfg, const WorkOptions& opt, bool include_mtp) {
  std::vector<LayerWork> work;
  work.push_back(embedding_work(cfg, opt));
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) work.push_back(decoder_layer_work(cfg, l, opt));
  work.push_back(head_work(cfg, opt));
  if (include_mtp)
    for (int64_t d = 0; d < cfg.num_nextn_predict_layers; ++d) work.push_back(mtp_work(cfg, opt));
  return work;
}

double model_flops_per_token(const ModelConfig& cfg, int64_t seq_len, bool include_mtp) {
  WorkOptions opt;
  opt.tokens = seq_len;
  opt.seq_len = seq_len;
  opt.recompute_norm_and_mla_up = false;
  double flops = 0;
  for (const auto& layer : model_work(cfg, opt, include_mtp))
    for (const auto& op : layer.ops)
      if (op.op_class != OpClass::memory) flops += op.fwd_flops + op.dgrad_flops + op.wgrad_flops;
  return flops / static_cast<double>(seq_len);
}

double activation_bytes_per_token(const ModelConfig& cfg, LayerKind kind) {
  const double H = static_cast<double>(cfg.hidden_size);
  const double Dq = cfg.q_lora_rank ? static_cast<double>(*cfg.q_lora_rank) : 0.0;
  const double Dc = static_cast<double>(cfg.kv_lora_rank), Dr = static_cast<double>(cfg.qk_rope_head_dim);
  const double nh = static_cast<double>(cfg.num_attention_heads), Dv = static_cast<double>(cfg.v_head_dim);
  const double K = static_cast<double>(cfg.num_experts_per_tok), I = static_cast<double>(cfg.moe_intermediate_size);
  if (kind == LayerKind::embedding) return 0.0;
  if (kind == LayerKind::head) return 2.0 * H + 8.0;  // head input (BF16) and the loss's log-sum-exp
  double attn = 0;
  attn += 2.0 * H;                  // layer input (BF16): the recomputed attention RMSNorm reads it
  attn += 1.0 * H;                  // FP8 copy of the normed input (q_a, kv_a Wgrad)
  attn += 3.0 * Dq;                 // c_Q before q_norm (BF16, recompute) + FP8 normed c_Q (q_b input)
  attn += 2.0 * (Dc + Dr) + 1.0 * Dc;  // kv latent and k_pe (BF16) + FP8 normed latent (kv_b input)
  attn += 1.5 * nh * Dv;            // attention output, o_proj input, in E5M6 (12 bits, §3.3.3)
  attn += 4.0 * nh;                 // softmax log-sum-exp per head (FP32)
  double ffn = 2.0 * H + 1.0 * H;   // post-attention residual (BF16) + FP8 normed FFN input
  if (kind == LayerKind::dense) {
    ffn += 2.0 * cfg.intermediate_size;  // SwiGLU inputs in FP8; its output is recomputed
  } else {
    ffn += 4.0 * cfg.n_routed_experts + 8.0 * K;  // router scores (FP32), top-k indices and weights
    ffn += K * H;                                  // dispatched FP8 tokens, kept on the expert GPUs
    ffn += K * 2.0 * I;                            // SwiGLU inputs of routed experts (FP8)
    ffn += 2.0 * cfg.n_shared_experts * I;         // SwiGLU inputs of the shared expert (FP8)
  }
  double bytes = attn + ffn;
  if (kind == LayerKind::mtp) bytes += 2.0 * H + 2.0 * H + 2.0 * H + 8.0;  // eh_proj input (FP8 2H), head input
  return bytes;
}

}  // namespace moelab::cost
