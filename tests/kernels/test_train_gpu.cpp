// `moelab train --device cuda` against the CPU (issue 10): the GPU parts of a
// training step each against their CPU twin, then one whole step.
//   GpuHostGemm      cuda::host_gemm (kernels' gemm_f32 on host operands) vs
//                    cpu::gemm: all four transposes, leading dims > columns,
//                    beta 0 and 0.5, fp32 and bf16
//   GpuPermute       unpermute_backward vs cpu::unpermute_backward
//   CudaExperts      forward + backward (y, dx, d_topk_weight, expert weight
//                    grads) vs LocalExperts, fp32 and bf16
//   CudaTrainStep    one v3-tiny step (MTP, sequence-wise aux loss): loss,
//                    MTP loss, routing and EVERY gradient with the routed
//                    experts (CudaExperts) and all dense GEMMs (host_gemm) on
//                    the GPU vs the CPU. Tolerances: FP32, every gradient
//                    within 1e-4 of its tensor's largest magnitude (+1e-3
//                    relative), losses 1e-5 relative; BF16 (same BF16 input
//                    rounding on both, FP32 accumulation in different order),
//                    2e-2 of the tensor's largest magnitude, losses 1e-3.
// Skips with "skipped: no GPU" where none.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "backend/cpu/gemm.hpp"
#include "backend/cpu/permute.hpp"
#include "backend/cuda/experts.hpp"
#include "backend/cuda/host_gemm.hpp"
#include "core/rng.hpp"
#include "kernels/kernels.hpp"
#include "model/linear.hpp"
#include "model/loss.hpp"
#include "model/model.hpp"
#include "tests/kernels/gpu_test.hpp"
#include "tests/support/expect_close.hpp"
#include "train/loop.hpp"

using namespace moelab;
using test::max_rel_error;
using test::max_scaled_error;
using test::random_values;

TEST(GpuHostGemm, MatchesCpuGemmForEveryTranspose) {
  SKIP_WITHOUT_GPU();
  const int64_t m = 37, n = 45, k = 70;
  for (const auto precision : {cpu::GemmPrecision::fp32, cpu::GemmPrecision::bf16})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (const float beta : {0.0f, 0.5f}) {
          const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
          const auto a = random_values((ta ? k : m) * lda, 1 + ta), b = random_values((tb ? n : k) * ldb, 2 + tb);
          const auto c0 = random_values(m * ldc, 3);
          std::vector<float> ref = c0, got = c0;
          cpu::gemm(ta, tb, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, ref.data(), ldc, precision);
          cuda::host_gemm(ta, tb, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, got.data(), ldc, precision);
          const std::string tag = std::string(cpu::gemm_precision_name(precision)) + (ta ? "_ta" : "") +
                                  (tb ? "_tb" : "") + (beta != 0 ? "_beta" : "");
          // Columns of C beyond n (the ldc gap) are untouched.
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(got[i * ldc + j], c0[i * ldc + j]) << tag;
          // Same inputs (BF16-rounded alike), FP32 accumulation in a different order.
          EXPECT_LT(max_rel_error(got, ref, 1e-1, "host_gemm_" + tag), 1e-4) << tag;
        }
}

TEST(GpuPermute, UnpermuteBackwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 29, K = 3, E = 7, n = 200;
  Rng rng(9);
  std::vector<int32_t> idx(tokens * K);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t k = 0; k < K; ++k) idx[t * K + k] = static_cast<int32_t>((t * 5 + k * 2 + rng.below(2)) % E);
  cpu::PermuteIndex index;
  cpu::make_permute_index(index, idx.data(), tokens, K, E);
  const auto dy = random_values(tokens * n, 4), yp = random_values(tokens * K * n, 5), w = random_values(tokens * K, 6);
  std::vector<float> dyp(tokens * K * n), dw(tokens * K);
  cpu::unpermute_backward(dyp.data(), dw.data(), dy.data(), yp.data(), w.data(), index, n);
  test::DeviceBuffer<float> g_dy(dy), g_yp(yp), g_w(w), g_dyp(dyp.size()), g_dw(dw.size());
  test::DeviceBuffer<int32_t> g_row(index.row_of);
  cuda::unpermute_backward(g_dyp.get(), g_dw.get(), g_dy.get(), g_yp.get(), g_w.get(), g_row.get(), tokens, K, n,
                           nullptr);
  EXPECT_EQ(g_dyp.to_host(), dyp);  // one product each: exact
  EXPECT_LT(max_rel_error(g_dw.to_host(), dw, 1e-1, "unpermute_backward_dw"), 1e-5);
}

TEST(CudaExperts, ForwardBackwardMatchLocalExperts) {
  SKIP_WITHOUT_GPU();
  const int64_t E = 6, H = 48, I = 20, tokens = 33, K = 2;
  for (const auto precision : {GemmPrecision::fp32, GemmPrecision::bf16}) {
    std::vector<Param<float>> store;
    store.reserve(3 * E);
    for (int64_t e = 0; e < E; ++e) {
      for (const char* name : {"gate", "up", "down"}) {
        const bool down = std::string(name) == "down";
        Param<float>& p = store.emplace_back(name + std::to_string(e), down ? Shape{H, I} : Shape{I, H});
        p.value.data = random_values(p.value.numel(), 100 + store.size(), 0.2);
      }
    }
    auto experts_of = [&](std::vector<Param<float>>& s) {
      std::vector<MlpParams<float>> out(E);
      for (int64_t e = 0; e < E; ++e) out[e] = {&s[3 * e], &s[3 * e + 1], &s[3 * e + 2]};
      return out;
    };
    std::vector<Param<float>> gpu_store = store;
    Tensor<float> x({tokens, H}), w({tokens, K}), dy({tokens, H});
    x.data = random_values(tokens * H, 7);
    w.data = random_values(tokens * K, 8, 0.5);
    dy.data = random_values(tokens * H, 9);
    Tensor<int32_t> idx({tokens, K});
    for (int64_t t = 0; t < tokens; ++t) {
      idx[t * K] = static_cast<int32_t>(t % (E - 1));  // expert E-1 gets no rows
      idx[t * K + 1] = static_cast<int32_t>((t * 3 + 1) % (E - 1));
      if (idx[t * K + 1] == idx[t * K]) idx[t * K + 1] = static_cast<int32_t>((idx[t * K] + 1) % (E - 1));
    }
    LocalExperts<float> cpu_experts(experts_of(store), precision);
    cuda::CudaExperts gpu_experts(experts_of(gpu_store), precision);
    Tensor<float> y_cpu, y_gpu, dx_cpu, dx_gpu, dw_cpu, dw_gpu;
    cpu_experts.forward(y_cpu, x, idx, w);
    gpu_experts.forward(y_gpu, x, idx, w);
    cpu_experts.backward(dx_cpu, dw_cpu, dy);
    gpu_experts.backward(dx_gpu, dw_gpu, dy);
    const std::string p = cpu::gemm_precision_name(precision);
    const double tol = precision == GemmPrecision::fp32 ? 1e-5 : 1e-2;
    EXPECT_LT(max_scaled_error(y_gpu.data, y_cpu.data), tol) << p;
    EXPECT_LT(max_scaled_error(dx_gpu.data, dx_cpu.data), tol) << p;
    EXPECT_LT(max_scaled_error(dw_gpu.data, dw_cpu.data), tol) << p;
    for (size_t i = 0; i < store.size(); ++i) {
      EXPECT_LT(max_scaled_error(gpu_store[i].grad.data, store[i].grad.data), tol) << p << " " << store[i].name;
      if (i / 3 == static_cast<size_t>(E - 1)) {
        EXPECT_EQ(gpu_store[i].grad.data, store[i].grad.data);  // no rows: untouched
      }
    }
  }
}

namespace {

struct StepResult {
  ModelLosses losses;
  double aux_loss = 0;
  std::vector<std::vector<int32_t>> topk_idx;  // per MoE layer
  ModelParams<float> params;
};

// One training step's forward, balance losses and backward (train/loop.cpp's order).
StepResult one_step(const ModelConfig& c, bool on_gpu, GemmPrecision precision) {
  StepResult r{{}, 0, {}, ModelParams<float>(c, true)};
  r.params.init(5, 0.02);
  const int64_t batch = 2, seq_len = 12;
  std::vector<int32_t> ids, targets;
  Rng rng(17);
  for (int64_t i = 0; i < batch * seq_len; ++i) ids.push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < seq_len; ++i) targets.push_back(i + 1 < seq_len ? ids[b * seq_len + i + 1] : kIgnoreTarget);
  ModelContext<float> ctx;
  ctx.precision = precision;
  std::optional<LinearGemmScope> gemms;
  if (on_gpu) {
    ctx.make_experts = cuda::cuda_experts_factory();
    gemms.emplace(&cuda::host_gemm);
  }
  ModelSaved<float> saved;
  r.params.zero_grad();
  r.losses = model_forward(saved, r.params, c, ids, targets, batch, seq_len, 0.3, ctx);
  auto layers = train::moe_layers(r.params, saved);
  train::BalanceConfig balance;
  balance.aux_loss = train::AuxLossKind::sequence;
  balance.aux_loss_coeff = 1e-2;
  r.aux_loss = train::add_balance_losses(layers, balance, c.n_routed_experts, c.num_experts_per_tok);
  for (auto& l : layers) r.topk_idx.push_back(l.saved->router.topk_idx.data);
  model_backward(r.params, saved, c, ctx);
  return r;
}

void expect_step_matches(GemmPrecision precision, double grad_tol, double loss_tol) {
  const ModelConfig c = model_preset("v3-tiny");
  const StepResult cpu = one_step(c, false, precision), gpu = one_step(c, true, precision);
  const std::string p = cpu::gemm_precision_name(precision);
  ASSERT_EQ(gpu.topk_idx, cpu.topk_idx) << p << ": routing differs (a near-tie flipped)";
  EXPECT_NEAR(gpu.losses.loss, cpu.losses.loss, loss_tol * cpu.losses.loss) << p;
  EXPECT_NEAR(gpu.losses.mtp_loss, cpu.losses.mtp_loss, loss_tol * cpu.losses.mtp_loss) << p;
  EXPECT_NEAR(gpu.aux_loss, cpu.aux_loss, loss_tol * cpu.aux_loss + 1e-9) << p;
  ::testing::Test::RecordProperty("loss_rel_err_" + p,
                                  std::to_string(std::abs(gpu.losses.loss - cpu.losses.loss) / cpu.losses.loss));
  double worst = 0;
  const auto& pc = cpu.params.all();
  const auto& pg = gpu.params.all();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i) {
    double scale = 0;
    for (float g : pc[i].grad.data) scale = std::max(scale, double(std::abs(g)));
    worst = std::max(worst, max_scaled_error(pg[i].grad.data, pc[i].grad.data));
    EXPECT_TRUE(test::expect_close(p + " " + pc[i].name, pg[i].grad.data.data(), pc[i].grad.data.data(),
                                   static_cast<int64_t>(pc[i].grad.numel()), {grad_tol * scale + 1e-12, 1e-3}));
  }
  ::testing::Test::RecordProperty("grad_scaled_err_" + p, std::to_string(worst));
}

}  // namespace

TEST(CudaTrainStep, Fp32LossAndGradientsMatchCpu) {
  SKIP_WITHOUT_GPU();
  expect_step_matches(GemmPrecision::fp32, 1e-4, 1e-5);
}

TEST(CudaTrainStep, Bf16LossAndGradientsMatchCpu) {
  SKIP_WITHOUT_GPU();
  expect_step_matches(GemmPrecision::bf16, 2e-2, 1e-3);
}
