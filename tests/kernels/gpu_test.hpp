// What every GPU-vs-CPU test needs: skip (never pass silently) where there is
// no GPU, and a device buffer that copies host vectors in and out.
#pragma once

#include <gtest/gtest.h>

#include <vector>

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

}  // namespace moelab::test
