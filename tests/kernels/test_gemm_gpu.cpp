// cuBLAS GEMMs against the CPU backend's (OpenBLAS) in FP32 and BF16 modes.
// Both accumulate in FP32 in different orders: tolerance relative to the
// magnitude of |x||w| summed, a few FP32 ulps times sqrt(k).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "backend/cpu/gemm.hpp"
#include "core/rng.hpp"
#include "kernels/kernels.hpp"
#include "tests/kernels/gpu_test.hpp"

using namespace moelab;

TEST(GpuGemm, MatchesCpuBackend) {
  SKIP_WITHOUT_GPU();
  const int64_t m = 77, n = 129, k = 512;
  Rng rng(3);
  std::vector<float> x(m * k), w(n * k);
  for (auto& v : x) v = static_cast<float>(rng.normal());
  for (auto& v : w) v = static_cast<float>(rng.normal());
  for (bool bf16 : {false, true}) {
    std::vector<float> ref(m * n);
    cpu::gemm(false, true, m, n, k, 1.0f, x.data(), k, w.data(), k, 0.0f, ref.data(), n,
                       bf16 ? cpu::GemmPrecision::bf16 : cpu::GemmPrecision::fp32);
    test::DeviceBuffer<float> dx(x), dw(w), dy(m * n);
    if (bf16)
      cuda::gemm_xwt_bf16(dy.get(), dx.get(), dw.get(), m, n, k, nullptr);
    else
      cuda::gemm_xwt_f32(dy.get(), dx.get(), dw.get(), m, n, k, nullptr);
    const std::vector<float> got = dy.to_host();
    double max_err = 0;
    for (int64_t i = 0; i < m * n; ++i) max_err = std::max(max_err, std::abs(double(got[i]) - ref[i]));
    // |terms| ~ 1, k of them: FP32 reassociation error well under 1e-4 * sqrt(k).
    ::testing::Test::RecordProperty(bf16 ? "max_err_bf16" : "max_err_fp32", std::to_string(max_err));
    EXPECT_LT(max_err, 1e-4 * std::sqrt(double(k))) << (bf16 ? "bf16" : "fp32");
  }
}
