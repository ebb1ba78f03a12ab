// GPU backward kernels and the grouped expert GEMM against their CPU twins
// (cpu::rmsnorm_backward, cpu::attention_backward, cpu::grouped_gemm): same
// inputs, per-op FP32 tolerance (reduction orders differ). Skips with
// "skipped: no GPU" where none.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/attention.hpp"
#include "backend/cpu/grouped_gemm.hpp"
#include "backend/cpu/rmsnorm.hpp"
#include "core/rng.hpp"
#include "kernels/kernels.hpp"
#include "tests/kernels/gpu_test.hpp"

using namespace moelab;

using test::max_rel_error;
using test::random_values;

TEST(GpuBackward, RmsnormBackward) {
  SKIP_WITHOUT_GPU();
  for (int64_t n : {7, 128, 1000}) {
    const int64_t rows = 37;
    const auto x = random_values(rows * n, 1 + n, 2.0), dy = random_values(rows * n, 2 + n);
    auto w = random_values(n, 3 + n, 0.1);
    for (auto& v : w) v += 1.0f;
    std::vector<float> y(rows * n), inv_rms(rows), dx(rows * n), dw(n, 0.5f);
    cpu::rmsnorm_forward(y.data(), inv_rms.data(), x.data(), w.data(), rows, n, 1e-6);
    const std::vector<float> dw0 = dw;
    cpu::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), inv_rms.data(), rows, n);
    test::DeviceBuffer<float> d_x(x), d_dy(dy), d_w(w), d_r(inv_rms), d_dx(dx.size()), d_dw(dw0);
    cuda::rmsnorm_backward(d_dx.get(), d_dw.get(), d_dy.get(), d_x.get(), d_w.get(), d_r.get(), rows, n, nullptr);
    const std::string tag = "_n" + std::to_string(n);
    EXPECT_LT(max_rel_error(d_dx.to_host(), dx, 1e-3, "rmsnorm_dx" + tag), 1e-4) << "n=" << n;
    EXPECT_LT(max_rel_error(d_dw.to_host(), dw, 1e-3, "rmsnorm_dw" + tag), 1e-4) << "n=" << n;
  }
}

TEST(GpuBackward, CausalAttentionBackward) {
  SKIP_WITHOUT_GPU();
  const cpu::AttentionShape s{2, 33, 4, 24, 16};
  const int64_t tokens = s.batch * s.seq_len;
  const auto q = random_values(tokens * s.heads * s.dqk, 20), k = random_values(tokens * s.heads * s.dqk, 21),
             v = random_values(tokens * s.heads * s.dv, 22), d_o = random_values(tokens * s.heads * s.dv, 23);
  const double scale = 1.0 / std::sqrt(double(s.dqk));
  std::vector<float> o(tokens * s.heads * s.dv), probs(s.batch * s.heads * s.seq_len * s.seq_len);
  cpu::attention_forward(o.data(), probs.data(), q.data(), k.data(), v.data(), s, scale);
  std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
  cpu::attention_backward(dq.data(), dk.data(), dv.data(), d_o.data(), q.data(), k.data(), v.data(), o.data(),
                          probs.data(), s, scale);
  test::DeviceBuffer<float> g_q(q), g_k(k), g_v(v), g_o(o), g_p(probs), g_do(d_o), g_dq(dq.size()), g_dk(dk.size()),
      g_dv(dv.size()), g_ds(probs.size());
  cuda::attention_backward(g_dq.get(), g_dk.get(), g_dv.get(), g_ds.get(), g_do.get(), g_q.get(), g_k.get(), g_v.get(),
                           g_o.get(), g_p.get(), s.batch, s.seq_len, s.heads, s.dqk, s.dv, static_cast<float>(scale),
                           nullptr);
  EXPECT_LT(max_rel_error(g_dq.to_host(), dq, 1e-2, "attention_dq"), 1e-4);
  EXPECT_LT(max_rel_error(g_dk.to_host(), dk, 1e-2, "attention_dk"), 1e-4);
  EXPECT_LT(max_rel_error(g_dv.to_host(), dv, 1e-2, "attention_dv"), 1e-4);
}

TEST(GpuBackward, GroupedExpertGemm) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 48, k = 80;
  const std::vector<int64_t> offsets = {0, 5, 5, 37, 38, 70};  // an empty and a one-row expert
  const int64_t groups = int64_t(offsets.size()) - 1, rows = offsets.back();
  const auto a = random_values(rows * k, 30);
  std::vector<std::vector<float>> w;
  for (int64_t e = 0; e < groups; ++e) w.push_back(random_values(n * k, 31 + e, 0.1));
  std::vector<const float*> w_host;
  for (auto& we : w) w_host.push_back(we.data());
  std::vector<std::unique_ptr<test::DeviceBuffer<float>>> w_dev;
  std::vector<const float*> w_dev_ptrs;
  for (auto& we : w) {
    w_dev.push_back(std::make_unique<test::DeviceBuffer<float>>(we));
    w_dev_ptrs.push_back(w_dev.back()->get());
  }
  test::DeviceBuffer<float> g_a(a);
  for (bool bf16 : {false, true}) {
    const auto precision = bf16 ? cpu::GemmPrecision::bf16 : cpu::GemmPrecision::fp32;
    std::vector<float> c(rows * n, 0.0f);
    cpu::grouped_gemm(true, offsets.data(), groups, n, k, a.data(), k, w_host.data(), 0.0f, c.data(), n, precision);
    test::DeviceBuffer<float> g_c(c.size());
    cuda::grouped_gemm_xwt(g_c.get(), g_a.get(), w_dev_ptrs.data(), offsets.data(), groups, n, k, bf16, nullptr);
    // Same rounded inputs, FP32 accumulation in a different order.
    EXPECT_LT(max_rel_error(g_c.to_host(), c, 1e-2, bf16 ? "grouped_gemm_bf16" : "grouped_gemm_f32"), 1e-4);
  }
}
