#include "numerics/fp8_gemm.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "numerics/mma_reference.hpp"

namespace moelab::numerics {

namespace {

// ---- vector types: 16 lanes = 16 output columns ----------------------------
constexpr int kLanes = 16;
using vf = float __attribute__((vector_size(4 * kLanes)));
using vi = int32_t __attribute__((vector_size(4 * kLanes)));
using vd = double __attribute__((vector_size(8 * kLanes)));
using vl = int64_t __attribute__((vector_size(8 * kLanes)));

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Nominal power of two of an FP8 value: 2^exponent, with 2^(1-bias) for
// subnormals and 0 for zero, so that 2^ea * 2^eb is the product's nominal
// exponent and zero products drop out of the maximum.
float nominal_pow2(uint8_t code, Fp8Kind kind) {
  const shared::Fp8Format& f = fp8_format(kind);
  if ((code & 0x7F) == 0) return 0.0f;
  const int exp_field = (code >> f.mantissa_bits) & ((1 << f.exponent_bits) - 1);
  return std::ldexp(1.0f, (exp_field == 0 ? 1 : exp_field) - f.bias);
}

// The promotion intervals and the scale of each (row, interval).
struct Intervals {
  int64_t length;  // K elements per interval (a multiple of kMmaK)
  int64_t count;
};

Intervals intervals_of(int64_t k_padded, int promote) {
  const int64_t length = promote > 0 ? promote : std::max<int64_t>(k_padded, kMmaK);
  return {length, std::max<int64_t>(ceil_div(k_padded, length), 1)};
}

// Operands decoded for the kernel. A: [Mp, Kp] row-major. W: panels of 16
// columns, [num_panels, Kp, 16]. Scales: A [Mp, intervals], W [num_panels,
// intervals, 16]. Padding is zero (zero products are excluded everywhere).
struct Packed {
  int64_t m = 0, n = 0, k = 0, m_padded = 0, k_padded = 0, num_panels = 0;
  Intervals intervals{0, 0};
  std::vector<float> a_value, a_pow2, a_scale;
  std::vector<float> w_value, w_pow2, w_scale;
};

constexpr int kRowsPerTile = 4;    // MR
constexpr int kPanelsPerTile = 2;  // NV: 32 output columns per tile

// True when an operand's scales vary within a promotion interval, so they
// must be applied inside the tensor core: exact only for power-of-two
// (UE8M0) scales, which shift every product's exponent and leave each
// truncation unchanged, as Blackwell's block-scaled MMAs do in hardware.
bool folds_scales(const QuantizedTensor& q, int promote) {
  const bool fine = q.granularity == Granularity::tile_1x128 || q.granularity == Granularity::block_128x128;
  return fine && !(promote > 0 && kFp8TileSize % promote == 0);
}

Packed pack(const QuantizedTensor& a, const QuantizedTensor& w, int promote, bool unit_scales) {
  const bool fold_a = !unit_scales && folds_scales(a, promote);
  const bool fold_w = !unit_scales && folds_scales(w, promote);
  Packed p;
  p.m = a.rows;
  p.n = w.rows;
  p.k = a.cols;
  p.m_padded = round_up(std::max<int64_t>(p.m, 1), kRowsPerTile);
  p.k_padded = round_up(std::max<int64_t>(p.k, 1), kMmaK);
  p.num_panels = round_up(ceil_div(std::max<int64_t>(p.n, 1), kLanes), kPanelsPerTile);
  p.intervals = intervals_of(p.k_padded, promote);
  const int64_t Kp = p.k_padded, I = p.intervals.count;
  const auto& a_table = fp8_decode_table(a.format);
  const auto& w_table = fp8_decode_table(w.format);
  p.a_value.assign(p.m_padded * Kp, 0.0f);
  p.a_pow2.assign(p.m_padded * Kp, 0.0f);
  p.a_scale.assign(p.m_padded * I, 0.0f);
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < p.m; ++m) {
    for (int64_t k = 0; k < p.k; ++k) {
      const uint8_t code = a.codes[m * p.k + k];
      const float fold = fold_a ? a.scale_at(m, k) : 1.0f;  // a power of two: exact
      p.a_value[m * Kp + k] = a_table[code] * fold;
      p.a_pow2[m * Kp + k] = nominal_pow2(code, a.format) * fold;
    }
    for (int64_t i = 0; i < I; ++i)
      p.a_scale[m * I + i] =
          unit_scales || fold_a ? 1.0f : a.scale_at(m, std::min(i * p.intervals.length, p.k - 1));
  }
  p.w_value.assign(p.num_panels * Kp * kLanes, 0.0f);
  p.w_pow2.assign(p.num_panels * Kp * kLanes, 0.0f);
  p.w_scale.assign(p.num_panels * I * kLanes, 0.0f);
#pragma omp parallel for schedule(static)
  for (int64_t panel = 0; panel < p.num_panels; ++panel)
    for (int lane = 0; lane < kLanes; ++lane) {
      const int64_t n = panel * kLanes + lane;
      if (n >= p.n) continue;
      for (int64_t k = 0; k < p.k; ++k) {
        const uint8_t code = w.codes[n * p.k + k];
        const float fold = fold_w ? w.scale_at(n, k) : 1.0f;
        p.w_value[(panel * Kp + k) * kLanes + lane] = w_table[code] * fold;
        p.w_pow2[(panel * Kp + k) * kLanes + lane] = nominal_pow2(code, w.format) * fold;
      }
      for (int64_t i = 0; i < I; ++i)
        p.w_scale[(panel * I + i) * kLanes + lane] =
            unit_scales || fold_w ? 1.0f : w.scale_at(n, std::min(i * p.intervals.length, p.k - 1));
    }
  return p;
}

inline vf load(const float* x) {
  vf v;
  __builtin_memcpy(&v, x, sizeof(v));
  return v;
}

// floor(log2 |x|) of normal floats; -127 for zero.
inline vi exponent_of(vf x) { return (((vi)x >> 23) & 0xff) - 127; }

// One tile: kRowsPerTile rows x kPanelsPerTile panels of 16 columns over all
// of K. c_init (optional, [M, N]) gives the tensor-core accumulator's start
// value; y receives the promoted FP32 result.
void tile_kernel(const Packed& p, int F, int64_t m0, int64_t panel0, const float* c_init, float* y) {
  constexpr int R = kRowsPerTile, V = kPanelsPerTile;
  const int64_t Kp = p.k_padded, I = p.intervals.count;
  const float* a_value[R];
  const float* a_pow2[R];
  for (int r = 0; r < R; ++r) {
    a_value[r] = p.a_value.data() + (m0 + r) * Kp;
    a_pow2[r] = p.a_pow2.data() + (m0 + r) * Kp;
  }
  const float* w_value[V];
  const float* w_pow2[V];
  for (int v = 0; v < V; ++v) {
    w_value[v] = p.w_value.data() + (panel0 + v) * Kp * kLanes;
    w_pow2[v] = p.w_pow2.data() + (panel0 + v) * Kp * kLanes;
  }
  vf c[R][V], out[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      out[r][v] = vf{};
      c[r][v] = vf{};
      if (c_init)
        for (int l = 0; l < kLanes; ++l) {
          const int64_t m = m0 + r, n = (panel0 + v) * kLanes + l;
          if (m < p.m && n < p.n) c[r][v][l] = c_init[m * p.n + n];
        }
    }
  const vl fraction_mask = vl{} + ~((int64_t{1} << (52 - F)) - 1);  // keeps F fraction bits of a double
  for (int64_t interval = 0; interval < I; ++interval) {
    const int64_t k_begin = interval * p.intervals.length;
    const int64_t k_end = std::min(k_begin + p.intervals.length, Kp);
    for (int64_t k0 = k_begin; k0 < k_end; k0 += kMmaK) {
      // Pass 1: the alignment exponent E of this step, per output.
      vf pow2_max[R][V] = {};
      for (int64_t k = k0; k < k0 + kMmaK; ++k)
        for (int v = 0; v < V; ++v) {
          const vf wp = load(w_pow2[v] + k * kLanes);
          for (int r = 0; r < R; ++r) {
            const vf t = a_pow2[r][k] * wp;
            pow2_max[r][v] = t > pow2_max[r][v] ? t : pow2_max[r][v];
          }
        }
      vi E[R][V];
      vf scale_up[R][V];  // 2^(F-E)
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) {
          vi e = exponent_of(pow2_max[r][v]);
          const vi ec = exponent_of(c[r][v]);
          e = ec > e ? ec : e;
          e = e > -100 ? e : -100;  // all-zero step: any E works, keep 2^(F-E) finite
          E[r][v] = e;
          scale_up[r][v] = (vf)((F - e + 127) << 23);
        }
      // Pass 2: truncated aligned terms, summed exactly in int32.
      vi sum[R][V] = {};
      for (int64_t k = k0; k < k0 + kMmaK; ++k)
        for (int v = 0; v < V; ++v) {
          const vf wv = load(w_value[v] + k * kLanes);
          for (int r = 0; r < R; ++r)
            sum[r][v] += __builtin_convertvector((a_value[r][k] * wv) * scale_up[r][v], vi);
        }
      // D = RZ_F(S * 2^(E-F)) becomes the next step's C.
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) {
          const vi s = sum[r][v] + __builtin_convertvector(c[r][v] * scale_up[r][v], vi);
          const vd s_truncated = (vd)((vl)__builtin_convertvector(s, vd) & fraction_mask);
          const vd scale_down = (vd)((__builtin_convertvector(E[r][v], vl) - F + 1023) << 52);
          c[r][v] = __builtin_convertvector(s_truncated * scale_down, vf);
        }
    }
    // Promotion: out = fma(fp32(sa * sw), D, out); the tensor core restarts.
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < V; ++v) {
        const float sa = p.a_scale[(m0 + r) * I + interval];
        const float* sw = p.w_scale.data() + ((panel0 + v) * I + interval) * kLanes;
        for (int l = 0; l < kLanes; ++l) out[r][v][l] = std::fma(sa * sw[l], c[r][v][l], out[r][v][l]);
        c[r][v] = vf{};
      }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v)
      for (int l = 0; l < kLanes; ++l) {
        const int64_t m = m0 + r, n = (panel0 + v) * kLanes + l;
        if (m < p.m && n < p.n) y[m * p.n + n] = out[r][v][l];
      }
}

void run_tiles(const Packed& p, int F, const float* c_init, float* y) {
  const int64_t row_tiles = p.m_padded / kRowsPerTile;
  const int64_t col_tiles = p.num_panels / kPanelsPerTile;
  // Column tiles outermost: consecutive work items of a thread share W's panels.
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < row_tiles * col_tiles; ++t) {
    const int64_t col_tile = t / row_tiles, row_tile = t % row_tiles;
    tile_kernel(p, F, row_tile * kRowsPerTile, col_tile * kPanelsPerTile, c_init, y);
  }
}

// acc_bits = fp32: block-wise BLAS on dequantized tiles. Each tile is
// decoded and multiplied by its scale (dequantize: one FP32 rounding of
// code * scale, none for UE8M0), then one sgemm over all of K. With an FP32
// accumulator, promotion into a second FP32 accumulator changes only the
// summation order, so `promote` has no effect here: what remains is the
// quantization error alone.
std::vector<float> gemm_fp32_dequantized(const QuantizedTensor& a, const QuantizedTensor& w) {
  const int64_t M = a.rows, N = w.rows, K = a.cols;
  std::vector<float> y(M * N, 0.0f);
  if (M == 0 || N == 0) return y;
  const std::vector<float> a_value = dequantize(a), w_value = dequantize(w);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a_value.data(), K, w_value.data(), K, 0.0f,
              y.data(), N);
  return y;
}

void check_finite_codes(const QuantizedTensor& q, const char* name) {
  const auto& table = fp8_decode_table(q.format);
  for (size_t i = 0; i < q.codes.size(); ++i)
    MOE_CHECK(std::isfinite(table[q.codes[i]]))
        << "fp8 gemm: operand " << name << " has a NaN/inf code 0x" << std::hex << int(q.codes[i]) << std::dec
        << " at [" << i / q.cols << ", " << i % q.cols << "]";
}

}  // namespace

std::string acc_bits_name(int acc_bits) { return acc_bits == kAccFp32 ? "fp32" : std::to_string(acc_bits); }

int parse_acc_bits(const std::string& text) {
  if (text == "fp32") return kAccFp32;
  size_t used = 0;
  int bits = -2;
  try {
    bits = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MOE_CHECK(used == text.size() && used > 0 && bits >= 1 && bits <= kMaxAccBits)
      << "acc-bits '" << text << "': expected fraction bits 1.." << kMaxAccBits << " or fp32";
  return bits;
}

void validate_fp8_gemm(const QuantizedTensor& a, const QuantizedTensor& w, const Fp8GemmOptions& options) {
  MOE_CHECK(a.cols == w.cols) << "fp8 gemm: a is [" << a.rows << ", " << a.cols << "] and w is [" << w.rows << ", "
                              << w.cols << "]: their K differ (y = a · wᵀ needs a [M, K] and w [N, K])";
  MOE_CHECK(options.acc_bits == kAccFp32 || (options.acc_bits >= 1 && options.acc_bits <= kMaxAccBits))
      << "acc-bits " << options.acc_bits << ": expected 1.." << kMaxAccBits << " or fp32";
  MOE_CHECK(options.promote >= 0 && options.promote % kMmaK == 0)
      << "promote " << options.promote << ": expected 0 (never) or a multiple of the MMA depth " << kMmaK;
  for (const auto* q : {&a, &w}) {
    const char* name = q == &a ? "a" : "w";
    MOE_CHECK(q->granularity != Granularity::tile_128x1)
        << "fp8 gemm: operand " << name << " uses 128x1 tiles, whose scales vary along K; transpose it and "
        << "quantize 1x128 instead";
    if (folds_scales(*q, options.promote) && options.acc_bits != kAccFp32) {
      MOE_CHECK(q->ue8m0) << "promote " << options.promote << " with " << granularity_name(q->granularity)
                          << " FP32 scales on operand " << name << ": the tensor core cannot apply different "
                          << "scales within one accumulation, so promote must divide " << kFp8TileSize
                          << " (or use per-tensor scales, or power-of-two UE8M0 scales, which fold exactly into "
                          << "the products' exponents)";
    }
  }
}

std::vector<float> fp8_gemm(const QuantizedTensor& a, const QuantizedTensor& w, const Fp8GemmOptions& options) {
  validate_fp8_gemm(a, w, options);
  check_finite_codes(a, "a");
  check_finite_codes(w, "w");
  if (a.cols == 0) return std::vector<float>(a.rows * w.rows, 0.0f);
  if (options.acc_bits == kAccFp32) return gemm_fp32_dequantized(a, w);
  const Packed p = pack(a, w, options.promote, /*unit_scales=*/false);
  std::vector<float> y(a.rows * w.rows, 0.0f);
  run_tiles(p, options.acc_bits, nullptr, y.data());
  return y;
}

void fp8_mma_accumulate(const QuantizedTensor& a, const QuantizedTensor& w, int acc_bits, float* c) {
  Fp8GemmOptions options{acc_bits, 0};
  MOE_CHECK(acc_bits >= 1 && acc_bits <= kMaxAccBits) << "fp8_mma_accumulate: acc_bits " << acc_bits;
  MOE_CHECK(a.cols == w.cols) << "fp8_mma_accumulate: K differs (" << a.cols << " vs " << w.cols << ")";
  check_finite_codes(a, "a");
  check_finite_codes(w, "w");
  const Packed p = pack(a, w, options.promote, /*unit_scales=*/true);
  run_tiles(p, acc_bits, c, c);
}

std::vector<float> fp8_gemm_reference(const QuantizedTensor& a, const QuantizedTensor& w,
                                      const Fp8GemmOptions& options) {
  validate_fp8_gemm(a, w, options);
  MOE_CHECK(options.acc_bits != kAccFp32) << "fp8_gemm_reference emulates the tensor core; acc_bits fp32 is BLAS";
  MOE_CHECK(!folds_scales(a, options.promote) && !folds_scales(w, options.promote))
      << "fp8_gemm_reference applies scales at promotion; promote " << options.promote << " must divide "
      << kFp8TileSize << " with fine-grained scales";
  const int64_t M = a.rows, N = w.rows, K = a.cols;
  const int64_t length = options.promote > 0 ? options.promote : std::max<int64_t>(K, 1);
  std::vector<float> y(M * N, 0.0f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float out = 0.0f;
      for (int64_t k0 = 0; k0 < K; k0 += length) {
        float c = 0.0f;
        for (int64_t k = k0; k < std::min(k0 + length, K); k += kMmaK) {
          const int count = static_cast<int>(std::min<int64_t>(kMmaK, K - k));
          c = mma_step_reference(c, &a.codes[m * K + k], a.format, &w.codes[n * K + k], w.format, count,
                                 options.acc_bits);
        }
        out = std::fma(a.scale_at(m, k0) * w.scale_at(n, k0), c, out);
      }
      y[m * N + n] = out;
    }
  return y;
}

std::vector<double> fp8_gemm_exact(const QuantizedTensor& a, const QuantizedTensor& w) {
  MOE_CHECK(a.cols == w.cols) << "fp8_gemm_exact: K differs (" << a.cols << " vs " << w.cols << ")";
  const int64_t M = a.rows, N = w.rows, K = a.cols;
  std::vector<double> y(M * N, 0.0);
  if (M == 0 || N == 0 || K == 0) return y;
  const std::vector<double> a64 = dequantize_f64(a), w64 = dequantize_f64(w);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0, a64.data(), K, w64.data(), K, 0.0, y.data(), N);
  return y;
}

GemmErrors gemm_errors(const float* y, const double* y_exact, int64_t count) {
  GemmErrors e;
  double err_sq = 0, ref_sq = 0, max_abs = 0, rel_sum = 0;
  int64_t rel_count = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double err = std::fabs(static_cast<double>(y[i]) - y_exact[i]);
    err_sq += err * err;
    ref_sq += y_exact[i] * y_exact[i];
    max_abs = std::max(max_abs, err);
    if (y_exact[i] != 0.0) {
      const double rel = err / std::fabs(y_exact[i]);
      rel_sum += rel;
      e.max_rel = std::max(e.max_rel, rel);
      ++rel_count;
    }
  }
  if (ref_sq > 0) {
    e.normwise = std::sqrt(err_sq / ref_sq);
    e.max_err_over_rms = max_abs / std::sqrt(ref_sq / count);
  }
  if (rel_count > 0) e.mean_rel = rel_sum / rel_count;
  return e;
}

}  // namespace moelab::numerics
