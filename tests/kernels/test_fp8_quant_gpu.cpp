// GPU FP8 conversion and quantization against the CPU (src/numerics), bit
// for bit: both run kernels/shared/fp8.hpp and fp8_quant.hpp. Runs where a
// GPU is present; elsewhere every case reports "skipped: no GPU".
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/rng.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "numerics/quantize.hpp"

using namespace moelab;
using numerics::Fp8Kind;
using numerics::Granularity;

namespace {

#define SKIP_WITHOUT_GPU() \
  if (cuda::device_count() == 0) GTEST_SKIP() << "skipped: " << cuda::device_description()

template <typename T>
T* to_device(const std::vector<T>& v) {
  T* d = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&d, std::max<size_t>(v.size(), 1) * sizeof(T)));
  MOE_CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

template <typename T>
std::vector<T> to_host(const T* d, size_t n) {
  std::vector<T> v(n);
  MOE_CUDA_CHECK(cudaMemcpy(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

}  // namespace

TEST(GpuFp8, ConvertEqualsHostOnStridedFp32Sweep) {
  SKIP_WITHOUT_GPU();
  // Every 997th FP32 bit pattern, both signs, NaN and inf included.
  std::vector<float> x;
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 997) {
    float v;
    const uint32_t b = static_cast<uint32_t>(bits);
    std::memcpy(&v, &b, 4);
    x.push_back(v);
  }
  float* dx = to_device(x);
  uint8_t* dcodes = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&dcodes, x.size()));
  for (Fp8Kind kind : {Fp8Kind::e4m3, Fp8Kind::e5m2}) {
    cuda::fp8_convert(dcodes, dx, static_cast<int64_t>(x.size()), kind == Fp8Kind::e5m2, nullptr);
    const auto codes = to_host(dcodes, x.size());
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(codes[i], numerics::fp8_encode(x[i], kind)) << numerics::fp8_name(kind) << " x = " << x[i];
  }
  cudaFree(dx), cudaFree(dcodes);
}

TEST(GpuFp8, QuantizeEqualsCpuForEveryGranularity) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 300, cols = 333;  // partial tiles at both edges
  Rng rng(3);
  std::vector<float> x(rows * cols);
  for (auto& v : x) v = static_cast<float>(rng.normal() * std::exp(4.0 * rng.normal()));
  for (int64_t c = 0; c < 128; ++c) x[5 * cols + c] = 0.0f;  // one all-zero 1x128 tile: the amax floor
  float* dx = to_device(x);
  uint8_t* dcodes = nullptr;
  float* dscales = nullptr;
  MOE_CUDA_CHECK(cudaMalloc(&dcodes, x.size()));
  MOE_CUDA_CHECK(cudaMalloc(&dscales, x.size() * 4));
  for (Fp8Kind kind : {Fp8Kind::e4m3, Fp8Kind::e5m2})
    for (bool ue8m0 : {false, true})
      for (Granularity g : {Granularity::tensor, Granularity::tile_1x128, Granularity::tile_128x1,
                            Granularity::block_128x128}) {
        const auto ref = numerics::quantize(x.data(), rows, cols, {kind, g, ue8m0});
        const int tile_rows = static_cast<int>((rows + ref.scale_rows - 1) / ref.scale_rows);
        const int tile_cols = static_cast<int>((cols + ref.scale_cols - 1) / ref.scale_cols);
        cuda::fp8_quantize(dcodes, dscales, dx, rows, cols, g == Granularity::tensor ? rows : tile_rows,
                           g == Granularity::tensor ? cols : tile_cols, kind == Fp8Kind::e5m2, ue8m0, nullptr);
        const auto codes = to_host(dcodes, x.size());
        const auto scales = to_host(dscales, ref.scales.size());
        const std::string what = numerics::fp8_name(kind) + " " + numerics::granularity_name(g) +
                                 (ue8m0 ? " ue8m0" : "");
        for (size_t i = 0; i < scales.size(); ++i) ASSERT_EQ(scales[i], ref.scales[i]) << what << " scale " << i;
        for (size_t i = 0; i < codes.size(); ++i)
          ASSERT_EQ(codes[i], ref.codes[i]) << what << " at [" << i / cols << ", " << i % cols << "]";
      }
  cudaFree(dx), cudaFree(dcodes), cudaFree(dscales);
}
