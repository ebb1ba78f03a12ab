// GPU elementwise FP8 conversion against the host encoder, code for code, on
// every 997th FP32 bit pattern (both signs, subnormals, NaN and inf). Skips
// where there is no GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/kernels.hpp"
#include "numerics/fp8_format.hpp"
#include "tests/kernels/gpu_test.hpp"

using namespace moelab;

TEST(GpuFp8Convert, EqualsHostOnStridedFp32Sweep) {
  SKIP_WITHOUT_GPU();
  std::vector<float> x;
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 997) {
    const uint32_t b = static_cast<uint32_t>(bits);
    float v;
    std::memcpy(&v, &b, 4);
    x.push_back(v);
  }
  test::DeviceBuffer<float> dx(x);
  test::DeviceBuffer<uint8_t> dcodes(x.size());
  for (numerics::Fp8Kind kind : {numerics::Fp8Kind::e4m3, numerics::Fp8Kind::e5m2}) {
    cuda::fp8_convert(dcodes.get(), dx.get(), static_cast<int64_t>(x.size()), kind == numerics::Fp8Kind::e5m2,
                      nullptr);
    const std::vector<uint8_t> codes = dcodes.to_host();
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(codes[i], numerics::fp8_encode(x[i], kind)) << numerics::fp8_name(kind) << " x = " << x[i];
  }
}
