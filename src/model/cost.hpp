// The work model of a DeepSeek-V3 layer: FLOPs and bytes of every op of one
// decoder layer (and of the embedding, head and MTP module) for a given token
// count. One model of the work, shared by the CPU backend's flops()/bytes()
// (rate counters of the micro-benchmarks) and the cluster simulator's cost
// model (src/sim), so a prediction and a measurement count the same work.
//
// Letters: T tokens of the micro-batch, S sequence length (T = sequences x S),
// H hidden, E routed experts, K top-k, I expert inner dim, Dc kv latent,
// Dq q latent, nh heads, Dn nope dim, Dr rope dim, Dv value dim, V vocabulary.
//
// Conventions (DeepSeek-V3 §3.2.3, §3.3; ../shared/reference/deepseek-v3.md §5, §6):
// - a GEMM of shape (m, n, k) costs 2mnk FLOPs in each of forward (Fprop),
//   input gradient (Dgrad) and weight gradient (Wgrad);
// - Linear GEMMs run in FP8 except the router gate and the output head (BF16);
//   the attention core runs in BF16 (FlashAttention-style, causal);
// - attention backward costs 2.5x its forward (FlashAttention convention:
//   5 matmuls against 2) and has no weight gradient;
// - RMSNorm and the MLA up-projections (q_b, kv_b) are recomputed in backward;
// - memory-bound ops (RMSNorm, SwiGLU, FP8 casts, combine weighting, loss)
//   are priced by their bytes.
#pragma once

#include <string>
#include <vector>

#include "model/config.hpp"

namespace moelab::cost {

enum class OpClass {
  gemm,          // dense GEMM (m, n, k)
  grouped_gemm,  // routed experts: `groups` GEMMs, `m` rows in total over the groups
  attention,     // causal attention core
  memory,        // memory-bound elementwise/reduction op
};
const char* op_class_name(OpClass c);

enum class Precision { fp8, bf16 };

// One op of a layer for a micro-batch. FLOPs and bytes are per pass; passes an
// op does not have are zero (attention: no wgrad; memory ops: no wgrad).
struct OpWork {
  std::string name;  // "q_a_proj", "experts.up_gate", "attn_core", ...
  OpClass op_class = OpClass::memory;
  Precision precision = Precision::bf16;
  // GEMM shape (gemm, grouped_gemm): m rows (tokens, or routed token-expert
  // pairs over all groups), n outputs, k inputs; groups = number of experts.
  int64_t m = 0, n = 0, k = 0, groups = 1;
  double fwd_flops = 0, fwd_bytes = 0;
  double dgrad_flops = 0, dgrad_bytes = 0;  // backward for inputs (B)
  double wgrad_flops = 0, wgrad_bytes = 0;  // backward for weights (W)
  double recompute_flops = 0, recompute_bytes = 0;  // forward redone in backward
  bool expert_parallel = false;  // work that lives on the expert-parallel GPUs (routed experts)
};

// What a layer kind is.
enum class LayerKind { dense, moe, embedding, head, mtp };

struct LayerWork {
  LayerKind kind = LayerKind::moe;
  int64_t layer = -1;
  std::vector<OpWork> ops;
  double fwd_flops() const;
  double bwd_flops() const;  // dgrad + wgrad + recompute
  double total_flops() const { return fwd_flops() + bwd_flops(); }
};

struct WorkOptions {
  int64_t tokens = 4096;   // T: tokens of one micro-batch on one GPU
  int64_t seq_len = 4096;  // S: attention is causal within sequences of this length
  bool recompute_norm_and_mla_up = true;  // DeepSeek-V3 §3.2.3
};

// GEMM helpers: the same 2mnk FLOP count the CPU backend reports (backend/cpu/gemm.hpp).
double gemm_flops(int64_t m, int64_t n, int64_t k);
// Bytes of one pass reading A [m,k], B [n,k] and writing C [m,n] at the given element sizes.
double gemm_bytes(int64_t m, int64_t n, int64_t k, double in_bytes, double out_bytes);

// Causal attention forward FLOPs for T tokens in sequences of S (QK^T and PV).
double attention_fwd_flops(const ModelConfig& cfg, int64_t tokens, int64_t seq_len);

// The share of an expert-parallel op one GPU of an EP group of `ep` runs when
// routing is balanced: the same rows (every GPU's tokens are spread over the
// group, and it receives as many as it sends) over groups/ep experts, so only
// the weights of its own experts are read.
OpWork expert_parallel_share(const OpWork& op, int64_t ep);

// Work of decoder layer `layer` (dense or MoE by cfg.is_moe_layer).
LayerWork decoder_layer_work(const ModelConfig& cfg, int64_t layer, const WorkOptions& opt);
LayerWork embedding_work(const ModelConfig& cfg, const WorkOptions& opt);
LayerWork head_work(const ModelConfig& cfg, const WorkOptions& opt);  // final norm, head, loss
// One MTP module (eh_proj, norms, one MoE block, shared head and loss).
LayerWork mtp_work(const ModelConfig& cfg, const WorkOptions& opt);

// Every piece of the model in order: embedding, decoder layers, head, MTP modules.
std::vector<LayerWork> model_work(const ModelConfig& cfg, const WorkOptions& opt, bool include_mtp = true);

// Model FLOPs per token for MFU: forward + backward (3x forward) of every
// matmul-like op, without recomputation, with causal attention at seq_len.
double model_flops_per_token(const ModelConfig& cfg, int64_t seq_len, bool include_mtp = true);

// Bytes of activations one layer keeps per token for its backward, under
// DeepSeek-V3's storage rules (§3.3.3: FP8 caches of Linear inputs, E5M6 for
// the input of o_proj, recomputed RMSNorm / MLA up-projection / SwiGLU
// output). Itemised in the .cpp.
double activation_bytes_per_token(const ModelConfig& cfg, LayerKind kind);

}  // namespace moelab::cost
