// Every GPU op of kernels/ against its CPU twin (src/backend/cpu, src/model/
// loss), ggml-style: same inputs, compare, tolerance per op. Exact where the
// arithmetic is the same single-source function with no reassociation
// (routing indices and weights, permute); a few FP32 ulps where CUDA's expf
// or FMA contraction differs from glibc's; reduction-order tolerance for
// attention and cross-entropy. Skips with "skipped: no GPU" where none.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/attention.hpp"
#include "backend/cpu/permute.hpp"
#include "backend/cpu/rope.hpp"
#include "backend/cpu/swiglu.hpp"
#include "backend/cpu/topk.hpp"
#include "core/rng.hpp"
#include "kernels/kernels.hpp"
#include "kernels/shared/rope.hpp"
#include "model/loss.hpp"
#include "tests/kernels/gpu_test.hpp"

using namespace moelab;

using test::max_rel_error;
using test::random_values;

TEST(GpuOps, SwigluForwardBackward) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 37, n = 300, ld = 2 * n;  // interleaved [gate | up] rows
  const auto gu = random_values(rows * ld, 1, 3.0), dh = random_values(rows * n, 2);
  std::vector<float> h_cpu(rows * n), dgu_cpu(rows * ld);
  cpu::swiglu_forward(h_cpu.data(), gu.data(), gu.data() + n, rows, n, ld);
  cpu::swiglu_backward(dgu_cpu.data(), dgu_cpu.data() + n, dh.data(), gu.data(), gu.data() + n, rows, n, ld);
  test::DeviceBuffer<float> dgu(gu), ddh(dh), dhout(rows * n), dgrad(rows * ld);
  cuda::swiglu_forward(dhout.get(), dgu.get(), dgu.get() + n, rows, n, ld, nullptr);
  cuda::swiglu_backward(dgrad.get(), dgrad.get() + n, ddh.get(), dgu.get(), dgu.get() + n, rows, n, ld, nullptr);
  EXPECT_LT(max_rel_error(dhout.to_host(), h_cpu, 1e-6, "swiglu_fwd"), 1e-5);
  EXPECT_LT(max_rel_error(dgrad.to_host(), dgu_cpu, 1e-6, "swiglu_bwd"), 1e-5);
}

TEST(GpuOps, RopeWithYarnTable) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 50, heads = 3, dim = 64, pairs = dim / 2, stride = heads * 96;
  std::vector<double> inv_freq(pairs);
  const double low = shared::yarn_low(32, dim, 1e4, 4096), high = shared::yarn_high(1, dim, 1e4, 4096);
  for (int64_t i = 0; i < pairs; ++i) inv_freq[i] = shared::rope_inv_freq(int(i), int(dim), 1e4, 40.0, low, high);
  const auto table = cpu::make_rope_table<float>(inv_freq, 4096, 1.1);
  std::vector<int32_t> positions(tokens);
  for (int64_t t = 0; t < tokens; ++t) positions[t] = static_cast<int32_t>((t * 97) % 4096);
  const auto x = random_values(tokens * stride, 3);
  for (bool inverse : {false, true}) {
    std::vector<float> ref = x;
    cpu::rope_apply(ref.data(), tokens, stride, heads, 96, positions.data(), table, inverse);
    test::DeviceBuffer<float> dx(x), dcos(table.cos), dsin(table.sin);
    test::DeviceBuffer<int32_t> dpos(positions);
    cuda::rope_apply(dx.get(), tokens, stride, heads, 96, dpos.get(), dcos.get(), dsin.get(), pairs, inverse, nullptr);
    EXPECT_LT(max_rel_error(dx.to_host(), ref, 1e-5, inverse ? "rope_bwd" : "rope_fwd"), 1e-5);
  }
}

TEST(GpuOps, RouterChoosesTheSameExpertsWithTheSameWeights) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 333;
  const shared::RouteParams params{256, 8, 4, 8, shared::kRouteNoauxTc, true, 2.5};
  auto scores = random_values(tokens * params.num_experts, 4);
  for (auto& s : scores) s = 1.0f / (1.0f + std::exp(-s));
  const auto bias = random_values(params.num_experts, 5, 0.01);
  std::vector<int32_t> idx_cpu(tokens * params.top_k);
  std::vector<float> w_cpu(tokens * params.top_k);
  cpu::topk_route(idx_cpu.data(), w_cpu.data(), scores.data(), bias.data(), tokens, params);
  test::DeviceBuffer<float> dscores(scores), dbias(bias), dw(tokens * params.top_k);
  test::DeviceBuffer<int32_t> didx(tokens * params.top_k);
  cuda::route_tokens(didx.get(), dw.get(), dscores.get(), dbias.get(), tokens, params, nullptr);
  EXPECT_EQ(didx.to_host(), idx_cpu);
  EXPECT_EQ(dw.to_host(), w_cpu);
}

TEST(GpuOps, PermuteAndUnpermute) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 64, top_k = 4, experts = 16, n = 96;
  Rng rng(6);
  std::vector<int32_t> topk_idx(tokens * top_k);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t k = 0; k < top_k; ++k) topk_idx[t * top_k + k] = static_cast<int32_t>((t * 7 + k * 5) % experts);
  cpu::PermuteIndex index;
  cpu::make_permute_index(index, topk_idx.data(), tokens, top_k, experts);
  const auto x = random_values(tokens * n, 7), w = random_values(tokens * top_k, 8);
  std::vector<float> xp(index.rows() * n), y(tokens * n);
  cpu::permute_rows(xp.data(), x.data(), index, n);
  cpu::unpermute_rows(y.data(), xp.data(), w.data(), index, n);
  test::DeviceBuffer<float> dx(x), dw(w), dxp(index.rows() * n), dy(tokens * n);
  test::DeviceBuffer<int32_t> dtoken_of(index.token_of), drow_of(index.row_of);
  cuda::permute_rows(dxp.get(), dx.get(), dtoken_of.get(), index.rows(), n, nullptr);
  cuda::unpermute_rows(dy.get(), dxp.get(), dw.get(), drow_of.get(), tokens, top_k, n, nullptr);
  EXPECT_EQ(dxp.to_host(), xp);  // a gather: exact
  EXPECT_LT(max_rel_error(dy.to_host(), y, 1e-5, "unpermute"), 1e-5);
}

TEST(GpuOps, CrossEntropyForwardBackward) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 40, vocab = 260;
  const auto logits = random_values(tokens * vocab, 9, 4.0);
  std::vector<int32_t> targets(tokens);
  for (int64_t t = 0; t < tokens; ++t) targets[t] = t % 7 == 3 ? kIgnoreTarget : static_cast<int32_t>((t * 31) % vocab);
  Tensor<float> ref({tokens, vocab});
  std::copy(logits.begin(), logits.end(), ref.ptr());
  int64_t counted = 0;
  const double loss_cpu = cross_entropy_forward(ref, targets.data(), tokens, &counted);
  const std::vector<float> probs_cpu(ref.ptr(), ref.ptr() + ref.numel());
  cross_entropy_backward(ref, targets.data(), tokens, 1.0);
  const std::vector<float> dlogits_cpu(ref.ptr(), ref.ptr() + ref.numel());

  test::DeviceBuffer<float> dl(logits);
  test::DeviceBuffer<double> dnll(tokens);
  test::DeviceBuffer<int32_t> dtargets(targets);
  cuda::cross_entropy_forward(dl.get(), dnll.get(), dtargets.get(), tokens, vocab, nullptr);
  const std::vector<double> nll = dnll.to_host();
  double loss_gpu = 0;
  for (double v : nll) loss_gpu += v;
  loss_gpu /= static_cast<double>(counted);
  EXPECT_NEAR(loss_gpu, loss_cpu, 1e-5 * loss_cpu);
  EXPECT_LT(max_rel_error(dl.to_host(), probs_cpu, 1e-7, "softmax"), 1e-5);
  cuda::cross_entropy_backward(dl.get(), dtargets.get(), tokens, vocab, 1.0f / static_cast<float>(counted), nullptr);
  EXPECT_LT(max_rel_error(dl.to_host(), dlogits_cpu, 1e-7, "cross_entropy_bwd"), 1e-5);
}

TEST(GpuOps, CausalAttentionForward) {
  SKIP_WITHOUT_GPU();
  const cpu::AttentionShape s{2, 33, 4, 24, 16};
  const int64_t tokens = s.batch * s.seq_len;
  const auto q = random_values(tokens * s.heads * s.dqk, 10), k = random_values(tokens * s.heads * s.dqk, 11),
             v = random_values(tokens * s.heads * s.dv, 12);
  const double scale = 1.0 / std::sqrt(double(s.dqk));
  std::vector<float> o(tokens * s.heads * s.dv), probs(s.batch * s.heads * s.seq_len * s.seq_len);
  cpu::attention_forward(o.data(), probs.data(), q.data(), k.data(), v.data(), s, scale);
  test::DeviceBuffer<float> dq(q), dk(k), dv(v), dout(o.size()), dprobs(probs.size());
  cuda::attention_forward(dout.get(), dprobs.get(), dq.get(), dk.get(), dv.get(), s.batch, s.seq_len, s.heads, s.dqk,
                          s.dv, static_cast<float>(scale), nullptr);
  EXPECT_LT(max_rel_error(dprobs.to_host(), probs, 1e-6, "attention_probs"), 1e-4);
  EXPECT_LT(max_rel_error(dout.to_host(), o, 1e-3, "attention_out"), 1e-4);
}
