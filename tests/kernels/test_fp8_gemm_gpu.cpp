// GPU emulated FP8 GEMM (kernels/fp8_gemm.cu through cuda_backend::fp8_gemm)
// against the CPU emulation (numerics::fp8_gemm): the same single-source
// step, the same promotion fma, so bit-identical outputs.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "backend/cuda/fp8_gemm.hpp"
#include "numerics/fp8_gemm.hpp"
#include "numerics/quantize.hpp"
#include "tests/kernels/gpu_test.hpp"

using namespace moelab;
using namespace moelab::numerics;

TEST(GpuFp8Gemm, BitIdenticalToCpuEmulation) {
  SKIP_WITHOUT_GPU();
  const int64_t m = 19, n = 141, k = 1000;  // partial tiles and a partial last MMA step
  const auto x = test::random_values(m * k, 1), w = test::random_values(n * k, 2);
  struct Setting {
    Granularity a_gran, w_gran;
    int promote, acc_bits;
  };
  for (const Setting& s : {Setting{Granularity::tile_1x128, Granularity::block_128x128, 128, 13},
                           Setting{Granularity::tensor, Granularity::tensor, 0, 13},
                           Setting{Granularity::tile_1x128, Granularity::block_128x128, 32, 10}}) {
    const QuantizedTensor qa = quantize(x.data(), m, k, {Fp8Kind::e4m3, s.a_gran, false});
    const QuantizedTensor qw = quantize(w.data(), n, k, {Fp8Kind::e4m3, s.w_gran, false});
    const std::vector<float> ref = fp8_gemm(qa, qw, {s.acc_bits, s.promote});
    const std::vector<float> got = cuda_backend::fp8_gemm(qa, qw, {s.acc_bits, s.promote});
    int64_t mismatches = 0;
    for (int64_t i = 0; i < m * n; ++i) mismatches += std::memcmp(&got[i], &ref[i], 4) != 0;
    ::testing::Test::RecordProperty("mismatch_promote" + std::to_string(s.promote), std::to_string(mismatches));
    EXPECT_EQ(mismatches, 0) << "promote " << s.promote << " acc_bits " << s.acc_bits;
  }
}
