// cuBLASLt FP8 GEMM with 1x128 / 128x128 block scaling against the CPU
// blockwise path with an FP32 accumulator promoted every 128
// (numerics::fp8_gemm, acc fp32): the same dequantized products summed in a
// different order, so they agree to FP32 reassociation tolerance. Needs a
// Hopper GPU; elsewhere "skipped: no GPU" (or "skipped: not sm_90").
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/rng.hpp"
#include "kernels/kernels.hpp"
#include "numerics/fp8_gemm.hpp"
#include "numerics/quantize.hpp"
#include "tests/kernels/gpu_test.hpp"

using namespace moelab;
using namespace moelab::numerics;

TEST(GpuFp8GemmLt, BlockScaledMatchesCpuFp32Accumulation) {
  SKIP_WITHOUT_GPU();
  if (!cuda::fp8_gemm_blockscaled_supported()) GTEST_SKIP() << "skipped: cuBLASLt block scaling needs sm_90";
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{64, 256, 512}, {48, 384, 1024}}) {
    Rng rng(m + n + k);
    std::vector<float> x(m * k), w(n * k);
    for (auto& v : x) v = static_cast<float>(rng.normal() * (1 + rng.below(4)));
    for (auto& v : w) v = static_cast<float>(rng.normal() * 0.05);
    const QuantizedTensor qa = quantize(x.data(), m, k, {Fp8Kind::e4m3, Granularity::tile_1x128, false});
    const QuantizedTensor qw = quantize(w.data(), n, k, {Fp8Kind::e4m3, Granularity::block_128x128, false});
    const std::vector<float> ref = fp8_gemm(qa, qw, {kAccFp32, 128});
    test::DeviceBuffer<uint8_t> da(qa.codes), dw(qw.codes);
    test::DeviceBuffer<float> dsa(qa.scales), dsw(qw.scales), dy(m * n);
    cuda::fp8_gemm_blockscaled(dy.get(), da.get(), dsa.get(), dw.get(), dsw.get(), m, n, k, nullptr);
    const std::vector<float> got = dy.to_host();
    double amax = 0, worst = 0;
    for (float v : ref) amax = std::max(amax, double(std::abs(v)));
    for (int64_t i = 0; i < m * n; ++i)
      worst = std::max(worst, std::abs(double(got[i]) - ref[i]) / (std::abs(double(ref[i])) + 1e-2 * amax));
    ::testing::Test::RecordProperty("max_rel_err_fp8_lt_k" + std::to_string(k), std::to_string(worst));
    EXPECT_LT(worst, 1e-4) << "m " << m << " n " << n << " k " << k;
  }
}
