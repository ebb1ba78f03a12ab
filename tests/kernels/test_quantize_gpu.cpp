// GPU FP8 quantization against its CPU twin (src/numerics/quantize.cpp; both
// call kernels/shared/fp8_quant.hpp): codes and scales must be identical.
#include <gtest/gtest.h>

#include "core/rng.hpp"
#include "kernels/kernels.hpp"
#include "numerics/quantize.hpp"
#include "tests/kernels/gpu_test.hpp"

using namespace moelab;

namespace {

struct Case {
  numerics::Granularity granularity;
  int tile_rows, tile_cols;
};

}  // namespace

TEST(GpuQuantize, CodesAndScalesEqualCpu) {
  SKIP_WITHOUT_GPU();
  const Case cases[] = {{numerics::Granularity::tile_1x128, 1, 128},
                        {numerics::Granularity::tile_128x1, 128, 1},
                        {numerics::Granularity::block_128x128, 128, 128}};
  const int64_t rows = 300, cols = 333;  // partial tiles on both edges
  Rng rng(7);
  std::vector<float> x(rows * cols);
  for (auto& v : x) v = static_cast<float>(rng.normal() * 5.0);
  x[17] = 0.0f;
  for (numerics::Fp8Kind kind : {numerics::Fp8Kind::e4m3, numerics::Fp8Kind::e5m2})
    for (bool ue8m0 : {false, true})
      for (const Case& c : cases) {
        numerics::QuantizeOptions options{kind, c.granularity, ue8m0};
        const numerics::QuantizedTensor cpu = numerics::quantize(x.data(), rows, cols, options);
        test::DeviceBuffer<float> dx(x);
        test::DeviceBuffer<uint8_t> dcodes(x.size());
        test::DeviceBuffer<float> dscales(cpu.scales.size());
        cuda::fp8_quantize(dcodes.get(), dscales.get(), dx.get(), rows, cols, c.tile_rows, c.tile_cols,
                           numerics::fp8_format(kind), ue8m0, nullptr);
        const bool same = dcodes.to_host() == cpu.codes && dscales.to_host() == cpu.scales;
        ::testing::Test::RecordProperty("mismatch_" + numerics::fp8_name(kind) + "_" +
                                            numerics::granularity_name(c.granularity) + (ue8m0 ? "_ue8m0" : ""),
                                        same ? "0" : "1");
        EXPECT_EQ(dcodes.to_host(), cpu.codes) << numerics::granularity_name(c.granularity);
        EXPECT_EQ(dscales.to_host(), cpu.scales) << numerics::granularity_name(c.granularity);
      }
}
