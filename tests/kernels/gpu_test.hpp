// What every GPU-vs-CPU test needs: skip (never pass silently) where there is
// no GPU, and a device buffer that copies host vectors in and out.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/rng.hpp"

#include "kernels/device.hpp"

#define SKIP_WITHOUT_GPU()                                                   \
  if (moelab::cuda::device_count() == 0) GTEST_SKIP() << "skipped: " << moelab::cuda::device_description()

namespace moelab::test {

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { MOE_CUDA_CHECK(cudaMalloc(&ptr_, n * sizeof(T) + 1)); }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    MOE_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() { return ptr_; }
  std::vector<T> to_host() const {
    std::vector<T> host(n_);
    MOE_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

// n normal values with the given standard deviation (deterministic in seed).
inline std::vector<float> random_values(int64_t n, uint64_t seed, double stddev = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal() * stddev);
  return v;
}

// max |got - ref| / (|ref| + floor), recorded as the test property
// max_rel_err_<name> for scripts/gpu_check.sh.
inline double max_rel_error(const std::vector<float>& got, const std::vector<float>& ref, double floor,
                            const std::string& name) {
  EXPECT_EQ(got.size(), ref.size()) << name;
  double worst = 0;
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - ref[i]) / (std::abs(double(ref[i])) + floor));
  ::testing::Test::RecordProperty("max_rel_err_" + name, std::to_string(worst));
  return worst;
}

// max |got - ref| over a tensor relative to the reference tensor's largest
// magnitude (the error measure for gradients, whose elements span decades).
inline double max_scaled_error(const std::vector<float>& got, const std::vector<float>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
    worst = std::max(worst, std::abs(double(got[i]) - ref[i]));
    scale = std::max(scale, std::abs(double(ref[i])));
  }
  return scale > 0 ? worst / scale : worst;
}

}  // namespace moelab::test
