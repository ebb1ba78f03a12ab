// A grow-only device array of T for the CUDA backend's host-facing classes:
// plain device memory (cudaMalloc, no managed memory), reallocated only when
// a larger size is asked for; copies in and out of host memory, packed or by
// rows with a leading dimension. Host code only.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/device.hpp"

namespace moelab::cuda {

template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (ptr_) cudaFree(ptr_);
  }
  // At least count elements (contents undefined after a reallocation).
  T* reserve(int64_t count) {
    if (count > size_) {
      if (ptr_) MOE_CUDA_CHECK(cudaFree(ptr_));
      ptr_ = nullptr;
      MOE_CUDA_CHECK(cudaMalloc(&ptr_, std::max<int64_t>(1, count) * sizeof(T)));
      size_ = count;
    }
    return ptr_;
  }
  T* upload(const T* host, int64_t count) {
    reserve(count);
    if (count) MOE_CUDA_CHECK(cudaMemcpy(ptr_, host, count * sizeof(T), cudaMemcpyHostToDevice));
    return ptr_;
  }
  // rows x cols of host (leading dimension ld) -> packed [rows, cols].
  T* upload_rows(const T* host, int64_t rows, int64_t cols, int64_t ld) {
    reserve(rows * cols);
    if (rows > 0 && cols > 0)
      MOE_CUDA_CHECK(cudaMemcpy2D(ptr_, cols * sizeof(T), host, ld * sizeof(T), cols * sizeof(T), rows,
                                  cudaMemcpyHostToDevice));
    return ptr_;
  }
  void download(T* host, int64_t count) const {
    if (count) MOE_CUDA_CHECK(cudaMemcpy(host, ptr_, count * sizeof(T), cudaMemcpyDeviceToHost));
  }
  // Packed [rows, cols] -> rows x cols of host (leading dimension ld).
  void download_rows(T* host, int64_t rows, int64_t cols, int64_t ld) const {
    if (rows > 0 && cols > 0)
      MOE_CUDA_CHECK(cudaMemcpy2D(host, ld * sizeof(T), ptr_, cols * sizeof(T), cols * sizeof(T), rows,
                                  cudaMemcpyDeviceToHost));
  }
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace moelab::cuda
