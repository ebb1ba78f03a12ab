// GPU emulated FP8 GEMM against the CPU emulation (numerics::fp8_gemm): the
// same single-source step, the same promotion fma, so bit-identical outputs.
#include <gtest/gtest.h>

#include <cstring>

#include "core/rng.hpp"
#include "kernels/kernels.hpp"
#include "numerics/fp8_gemm.hpp"
#include "numerics/quantize.hpp"
#include "tests/kernels/gpu_test.hpp"

using namespace moelab;
using namespace moelab::numerics;

namespace {

// The scale of each row over each promotion interval, as the kernel takes it.
std::vector<float> interval_scales(const QuantizedTensor& q, int64_t interval) {
  const int64_t intervals = (q.cols + interval - 1) / interval;
  std::vector<float> s(q.rows * intervals);
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t i = 0; i < intervals; ++i) s[r * intervals + i] = q.scale_at(r, std::min(i * interval, q.cols - 1));
  return s;
}

std::vector<float> random_values(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

}  // namespace

TEST(GpuFp8Gemm, BitIdenticalToCpuEmulation) {
  SKIP_WITHOUT_GPU();
  const int64_t m = 19, n = 141, k = 1000;  // partial tiles and a partial last MMA step
  const auto x = random_values(m * k, 1), w = random_values(n * k, 2);
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
    const int64_t interval = s.promote > 0 ? s.promote : ((k + 31) / 32) * 32;
    test::DeviceBuffer<uint8_t> da(qa.codes), dw(qw.codes);
    test::DeviceBuffer<float> dsa(interval_scales(qa, interval)), dsw(interval_scales(qw, interval)), dy(m * n);
    cuda::fp8_gemm_emulated(dy.get(), da.get(), dsa.get(), dw.get(), dsw.get(), m, n, k, shared::kE4M3,
                            shared::kE4M3, s.acc_bits, interval, nullptr);
    const std::vector<float> got = dy.to_host();
    int64_t mismatches = 0;
    for (int64_t i = 0; i < m * n; ++i) mismatches += std::memcmp(&got[i], &ref[i], 4) != 0;
    ::testing::Test::RecordProperty("mismatch_promote" + std::to_string(s.promote), std::to_string(mismatches));
    EXPECT_EQ(mismatches, 0) << "promote " << s.promote << " acc_bits " << s.acc_bits;
  }
}
