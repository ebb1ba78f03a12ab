// GPU RMSNorm against its CPU twin (kernels/shared/rmsnorm.hpp). Runs where a
// GPU is present; elsewhere every case reports "skipped: no GPU".
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "kernels/shared/rmsnorm.hpp"
#include "tests/kernels/gpu_test.hpp"

using namespace moelab;

TEST(GpuRmsnorm, MatchesCpuTwin) {
  SKIP_WITHOUT_GPU();
  for (int n : {7, 128, 7168}) {
    const int64_t rows = 33;
    Rng rng(n);
    std::vector<float> x(rows * n), w(n), y_cpu(rows * n), y_gpu(rows * n);
    for (auto& v : x) v = static_cast<float>(rng.normal() * 3.0);
    for (auto& v : w) v = static_cast<float>(1.0 + 0.1 * rng.normal());
    for (int64_t r = 0; r < rows; ++r) shared::rmsnorm_row(&y_cpu[r * n], &x[r * n], w.data(), n, 1e-6f);
    float *dx, *dw, *dy;
    MOE_CUDA_CHECK(cudaMalloc(&dx, x.size() * 4));
    MOE_CUDA_CHECK(cudaMalloc(&dw, w.size() * 4));
    MOE_CUDA_CHECK(cudaMalloc(&dy, y_gpu.size() * 4));
    MOE_CUDA_CHECK(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    MOE_CUDA_CHECK(cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice));
    cuda::rmsnorm_forward(dy, dx, dw, rows, n, 1e-6f, nullptr);
    MOE_CUDA_CHECK(cudaMemcpy(y_gpu.data(), dy, y_gpu.size() * 4, cudaMemcpyDeviceToHost));
    cudaFree(dx), cudaFree(dw), cudaFree(dy);
    double max_rel = 0;
    for (size_t i = 0; i < y_cpu.size(); ++i)
      max_rel = std::max(max_rel, std::abs(double(y_gpu[i]) - y_cpu[i]) / (std::abs(double(y_cpu[i])) + 1e-6));
    // FP32 reduction order differs: a few ulps of the inverse RMS.
    ::testing::Test::RecordProperty("max_rel_err_n" + std::to_string(n), std::to_string(max_rel));
    EXPECT_LT(max_rel, 1e-5) << "n=" << n;
  }
}

TEST(GpuRmsnorm, SharedRowMatchesClosedForm) {
  // The host side of the single-source function: runs everywhere.
  const float x[4] = {1, -2, 3, -4}, w[4] = {1, 1, 2, 0.5f};
  float y[4];
  shared::rmsnorm_row(y, x, w, 4, 0.0f);
  const float rms = std::sqrt((1 + 4 + 9 + 16) / 4.0f);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y[i], x[i] / rms * w[i]);
}
