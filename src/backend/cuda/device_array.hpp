// A grow-only device array of T for the CUDA backend's host-facing classes:
// plain device memory (no managed memory), reallocated only when a larger
// size is asked for; copies in and out of host memory, packed or by rows with
// a leading dimension. Host code only.
// The memory comes from the device's stream-ordered pool (cudaMallocAsync /
// cudaFreeAsync on the legacy default stream, as the kernels' scratch), not
// cudaMalloc/cudaFree: cudaFree synchronises the whole device, which would
// deadlock a rank whose NCCL receive, posted ahead (the pipeline transport
// posts them one op ahead), waits for a peer that waits for this rank - and
// `moelab train --device cuda` with parallel.pp > 1 frees the experts'
// buffers in the middle of the schedule. reserve() waits for the legacy
// stream (never for the non-blocking NCCL streams), so the memory is ready
// for any stream; callers free only buffers no stream still uses.
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
    if (ptr_) cudaFreeAsync(ptr_, nullptr);
  }
  // At least count elements (contents undefined after a reallocation).
  T* reserve(int64_t count) {
    if (count > size_) {
      if (ptr_) MOE_CUDA_CHECK(cudaFreeAsync(ptr_, nullptr));
      ptr_ = nullptr;
      size_ = 0;
      void* p = nullptr;
      MOE_CUDA_CHECK(cudaMallocAsync(&p, std::max<int64_t>(1, count) * sizeof(T), nullptr));
      MOE_CUDA_CHECK(cudaStreamSynchronize(nullptr));
      ptr_ = static_cast<T*>(p);
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
