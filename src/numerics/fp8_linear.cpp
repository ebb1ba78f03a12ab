#include "numerics/fp8_linear.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "kernels/shared/fp8_quant.hpp"

namespace moelab::numerics {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

Fp8LinearOptions g_options;

// x [rows, cols] with leading dim ld as a contiguous buffer (copied only when
// strided).
const float* contiguous(const float* x, int64_t ld, int64_t rows, int64_t cols, std::vector<float>& storage) {
  if (ld == cols) return x;
  storage.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) std::copy(x + r * ld, x + r * ld + cols, storage.data() + r * cols);
  return storage.data();
}

QuantizeOptions quant(const Fp8LinearOptions& o, Granularity g) { return {o.format, g, o.ue8m0}; }

// out [rows, cols] (ldo) = beta * out + tmp [rows, cols] (contiguous).
void accumulate(float* out, int64_t ldo, float beta, const std::vector<float>& tmp, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float& o = out[r * ldo + c];
      o = beta == 0.0f ? tmp[r * cols + c] : std::fma(beta, o, tmp[r * cols + c]);
    }
}

bool is_fast(const Fp8LinearOptions& o) { return o.acc_bits == kAccFp32; }

}  // namespace

void Fp8LinearOptions::validate() const {
  MOE_CHECK(acc_bits == kAccFp32 || (acc_bits >= 1 && acc_bits <= kMaxAccBits))
      << "numerics.acc_bits " << acc_bits << ": expected 1.." << kMaxAccBits << " or fp32";
  MOE_CHECK(promote >= 0 && promote % kMmaK == 0)
      << "numerics.promote " << promote << ": expected 0 (never) or a multiple of the MMA depth " << kMmaK;
  MOE_CHECK(acc_bits == kAccFp32 || (promote > 0 && kFp8TileSize % promote == 0) || ue8m0)
      << "numerics.promote " << promote << ": the tiles' FP32 scales can only be applied at promotion, so promote "
      << "must divide " << kFp8TileSize << "; set numerics.ue8m0 = true (power-of-two scales fold exactly into the "
      << "tensor core) to study promote " << promote;
}

const Fp8LinearOptions& fp8_linear_options() { return g_options; }

void set_fp8_linear_options(const Fp8LinearOptions& options) {
  options.validate();
  g_options = options;
}

void fake_quantize(float* out, int64_t ldo, const float* x, int64_t ldx, int64_t rows, int64_t cols,
                   const QuantizeOptions& options) {
  const shared::Fp8Format& f = fp8_format(options.format);
  const auto& table = fp8_decode_table(options.format);
  if (rows == 0 || cols == 0) return;
  if (options.granularity == Granularity::none) {  // inf and NaN convert as float_to_fp8 does
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) out[r * ldo + c] = table[shared::float_to_fp8(x[r * ldx + c], f)];
    return;
  }
  int64_t tile_rows = rows, tile_cols = cols;  // tensor
  if (options.granularity == Granularity::tile_1x128) tile_rows = 1, tile_cols = kFp8TileSize;
  if (options.granularity == Granularity::tile_128x1) tile_rows = kFp8TileSize, tile_cols = 1;
  if (options.granularity == Granularity::block_128x128) tile_rows = tile_cols = kFp8TileSize;
  const int64_t row_blocks = ceil_div(rows, tile_rows), col_tiles = ceil_div(cols, tile_cols);
  bool non_finite = false;
#pragma omp parallel if (rows * cols > (1 << 20)) reduction(|| : non_finite)
  {
    std::vector<float> col_amax(cols), scale(col_tiles);
#pragma omp for schedule(static)
    for (int64_t rb = 0; rb < row_blocks; ++rb) {
      const int64_t r0 = rb * tile_rows, r1 = std::min(rows, r0 + tile_rows);
      // Pass 1: amax per column over the block's rows, then per tile.
      std::fill(col_amax.begin(), col_amax.end(), 0.0f);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const float a = std::fabs(x[r * ldx + c]);
          col_amax[c] = (a > col_amax[c] || a != a) ? a : col_amax[c];  // NaN sticks: reported below
        }
      for (int64_t c = 0; c < cols; ++c) non_finite = non_finite || !(col_amax[c] <= 3.4e38f);
      for (int64_t t = 0; t < col_tiles; ++t) {
        float amax = 0.0f;
        for (int64_t c = t * tile_cols; c < std::min(cols, (t + 1) * tile_cols); ++c)
          amax = col_amax[c] > amax ? col_amax[c] : amax;
        scale[t] = shared::fp8_tile_scale(amax, f, options.ue8m0);
      }
      // Pass 2: code = fp8(x / scale), out = decode(code) * scale.
      for (int64_t r = r0; r < r1; ++r) {
        const float* x_row = x + r * ldx;
        float* out_row = out + r * ldo;
        // fp8_round(x / s) == decode(fp8_quantize_value(x, s)) for finite x.
        if (tile_cols == 1) {  // 128x1: a scale per column
          for (int64_t c = 0; c < cols; ++c) out_row[c] = shared::fp8_round(x_row[c] / scale[c], f) * scale[c];
          continue;
        }
        for (int64_t t = 0; t < col_tiles; ++t) {
          const float s = scale[t];
          for (int64_t c = t * tile_cols; c < std::min(cols, (t + 1) * tile_cols); ++c)
            out_row[c] = shared::fp8_round(x_row[c] / s, f) * s;
        }
      }
    }
  }
  MOE_CHECK(!non_finite) << "fp8 quantize: non-finite value in a [" << rows << ", " << cols << "] operand";
}

QuantizedTensor transpose(const QuantizedTensor& q) {
  QuantizedTensor t;
  t.format = q.format;
  t.ue8m0 = q.ue8m0;
  t.granularity = q.granularity == Granularity::tile_1x128   ? Granularity::tile_128x1
                  : q.granularity == Granularity::tile_128x1 ? Granularity::tile_1x128
                                                             : q.granularity;
  t.rows = q.cols;
  t.cols = q.rows;
  t.codes.resize(q.codes.size());
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c) t.codes[c * q.rows + r] = q.codes[r * q.cols + c];
  t.scale_rows = q.scale_cols;
  t.scale_cols = q.scale_rows;
  t.scales.resize(q.scales.size());
  for (int64_t r = 0; r < q.scale_rows; ++r)
    for (int64_t c = 0; c < q.scale_cols; ++c) t.scales[c * q.scale_rows + r] = q.scales[r * q.scale_cols + c];
  return t;
}

// ---- Fprop -----------------------------------------------------------------

void fp8_linear_forward(float* y, int64_t ldy, const float* x, int64_t ldx, int64_t rows, const float* w, int64_t n,
                        int64_t k, const Fp8LinearOptions& options, float beta) {
  options.validate();
  if (rows == 0 || n == 0) return;
  if (is_fast(options)) {
    std::vector<float> xq(rows * k), wq(n * k);  // [R, K], [N, K]
    fake_quantize(xq.data(), k, x, ldx, rows, k, quant(options, Granularity::tile_1x128));
    fake_quantize(wq.data(), k, w, k, n, k, quant(options, Granularity::block_128x128));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, k, 1.0f, xq.data(), k, wq.data(), k, beta, y, ldy);
    return;
  }
  std::vector<float> storage;
  const QuantizedTensor qx = quantize(contiguous(x, ldx, rows, k, storage), rows, k,
                                      quant(options, Granularity::tile_1x128));
  const QuantizedTensor qw = quantize(w, n, k, quant(options, Granularity::block_128x128));
  accumulate(y, ldy, beta, fp8_gemm(qx, qw, {options.acc_bits, options.promote}), rows, n);
}

// ---- Dgrad and Wgrad -------------------------------------------------------

void fp8_linear_backward(float* dx, int64_t lddx, float beta_dx, float* dw, const float* dy, int64_t lddy,
                         const float* x, int64_t ldx, int64_t rows, const float* w, int64_t n, int64_t k,
                         const Fp8LinearOptions& options) {
  options.validate();
  if (rows == 0 || n == 0 || k == 0) {
    if (dx && rows > 0 && k > 0 && n == 0) accumulate(dx, lddx, beta_dx, std::vector<float>(rows * k, 0.0f), rows, k);
    return;
  }
  const Granularity dgrad_dy = options.dgrad_blockwise ? Granularity::block_128x128 : Granularity::tile_1x128;
  if (is_fast(options)) {
    if (dx) {
      std::vector<float> dyq(rows * n), wq(n * k);  // [R, N], [N, K]
      fake_quantize(dyq.data(), n, dy, lddy, rows, n, quant(options, dgrad_dy));
      fake_quantize(wq.data(), k, w, k, n, k, quant(options, Granularity::block_128x128));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, k, n, 1.0f, dyq.data(), n, wq.data(), k, beta_dx,
                  dx, lddx);
    }
    std::vector<float> dyq(rows * n), xq(rows * k);  // both 128x1: scales along the reduced token axis
    fake_quantize(dyq.data(), n, dy, lddy, rows, n, quant(options, Granularity::tile_128x1));
    fake_quantize(xq.data(), k, x, ldx, rows, k, quant(options, Granularity::tile_128x1));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, rows, 1.0f, dyq.data(), n, xq.data(), k, 1.0f, dw, k);
    return;
  }
  const Fp8GemmOptions gemm{options.acc_bits, options.promote};
  std::vector<float> dy_storage, x_storage;
  const float* dy_c = contiguous(dy, lddy, rows, n, dy_storage);
  const float* x_c = contiguous(x, ldx, rows, k, x_storage);
  if (dx) {
    const QuantizedTensor qdy = quantize(dy_c, rows, n, quant(options, dgrad_dy));                 // [R, N]
    const QuantizedTensor qwt = transpose(quantize(w, n, k, quant(options, Granularity::block_128x128)));  // [K, N]
    accumulate(dx, lddx, beta_dx, fp8_gemm(qdy, qwt, gemm), rows, k);
  }
  const QuantizedTensor qdyt = transpose(quantize(dy_c, rows, n, quant(options, Granularity::tile_128x1)));  // [N, R]
  const QuantizedTensor qxt = transpose(quantize(x_c, rows, k, quant(options, Granularity::tile_128x1)));    // [K, R]
  accumulate(dw, k, 1.0f, fp8_gemm(qdyt, qxt, gemm), n, k);
}

}  // namespace moelab::numerics
