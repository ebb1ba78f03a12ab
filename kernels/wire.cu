// Expert-parallel wire records on the GPU (the NCCL dispatcher's side of the
// MPI Dispatcher's host loops): encode rows into a wire format, decode them,
// decode-and-sum them over a CSR of slots (the combine's fixed ascending
// order, additions with __fadd_rn so no FMA contraction), and gather byte
// records by index. The per-tile encoding and per-value decoding are
// kernels/shared/wire.hpp's functions, the ones the CPU path calls.
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

unsigned blocks_of(int64_t n) { return static_cast<unsigned>((n + 255) / 256); }

// One thread per (row, 1x128 tile).
__global__ void wire_encode_rows_kernel(uint8_t* out, int64_t ld_out, const float* x, int64_t rows, int64_t hidden,
                                        shared::WireFormat format) {
  const int64_t tiles = shared::wire_tiles(hidden);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * tiles) return;
  const int64_t r = i / tiles;
  shared::wire_encode_tile(format, x + r * hidden, hidden, i % tiles, out + r * ld_out);
}

__global__ void wire_decode_rows_kernel(float* x, const uint8_t* in, int64_t ld_in, int64_t rows, int64_t hidden,
                                        shared::WireFormat format) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * hidden) return;
  const int64_t r = i / hidden;
  x[i] = shared::wire_decode_value(format, in + r * ld_in, hidden, i % hidden);
}

__global__ void wire_segment_sum_kernel(float* y, const uint8_t* in, int64_t ld_in, shared::WireFormat format,
                                        const int32_t* slots, const int64_t* offsets, int64_t segments,
                                        int64_t hidden) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= segments * hidden) return;
  const int64_t s = i / hidden, c = i % hidden;
  float sum = 0.0f;
  for (int64_t j = offsets[s]; j < offsets[s + 1]; ++j)
    sum = __fadd_rn(sum, shared::wire_decode_value(format, in + static_cast<int64_t>(slots[j]) * ld_in, hidden, c));
  y[i] = sum;
}

__global__ void gather_records_kernel(uint8_t* dst, const uint8_t* src, const int32_t* index, int64_t rows,
                                      int64_t rec) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * rec) return;
  dst[i] = src[static_cast<int64_t>(index[i / rec]) * rec + i % rec];
}

}  // namespace

void wire_encode_rows(uint8_t* out, int64_t ld_out, const float* x, int64_t rows, int64_t hidden,
                      shared::WireFormat format, cudaStream_t stream) {
  const int64_t n = rows * shared::wire_tiles(hidden);
  if (n == 0) return;
  wire_encode_rows_kernel<<<blocks_of(n), 256, 0, stream>>>(out, ld_out, x, rows, hidden, format);
  MOE_CUDA_CHECK(cudaGetLastError());
}

void wire_decode_rows(float* x, const uint8_t* in, int64_t ld_in, int64_t rows, int64_t hidden,
                      shared::WireFormat format, cudaStream_t stream) {
  if (rows * hidden == 0) return;
  wire_decode_rows_kernel<<<blocks_of(rows * hidden), 256, 0, stream>>>(x, in, ld_in, rows, hidden, format);
  MOE_CUDA_CHECK(cudaGetLastError());
}

void wire_segment_sum(float* y, const uint8_t* in, int64_t ld_in, shared::WireFormat format, const int32_t* slots,
                      const int64_t* offsets, int64_t segments, int64_t hidden, cudaStream_t stream) {
  if (segments * hidden == 0) return;
  wire_segment_sum_kernel<<<blocks_of(segments * hidden), 256, 0, stream>>>(y, in, ld_in, format, slots, offsets,
                                                                            segments, hidden);
  MOE_CUDA_CHECK(cudaGetLastError());
}

void gather_records(uint8_t* dst, const uint8_t* src, const int32_t* index, int64_t rows, int64_t rec,
                    cudaStream_t stream) {
  if (rows * rec == 0) return;
  gather_records_kernel<<<blocks_of(rows * rec), 256, 0, stream>>>(dst, src, index, rows, rec);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
