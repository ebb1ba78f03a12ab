// The FP8 linear layer (DeepSeek-V3 Figure 6): Fprop, Dgrad and Wgrad checked
// against float64 products of the same quantized operands (1x128 / 128x128 /
// 128x1 as fp8_linear.hpp derives them), for the FP32-accumulator fast path
// and the bit-faithful emulation (F = 13, promote 128), with 1x128 or
// 128x128 (Appendix B.2) activation gradients in Dgrad; the fast path's fake
// quantization bit for bit against quantize + dequantize; quantized transposes.
#include <gtest/gtest.h>

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "numerics/fp8_linear.hpp"

using namespace moelab;
using namespace moelab::numerics;

namespace {

std::vector<float> random_vector(int64_t n, uint64_t seed, double stddev, bool outliers = false) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal() * stddev * (outliers ? std::exp(1.5 * rng.normal()) : 1.0));
  return v;
}

// c [m, n] (float64) = op(a) · op(b): a [m, kk] or, when trans_a, [kk, m]; b [kk, n] or, when trans_b, [n, kk].
std::vector<double> dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t kk, const std::vector<double>& a,
                          const std::vector<double>& b) {
  std::vector<double> c(m * n);
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, kk, 1.0,
              a.data(), trans_a ? m : kk, b.data(), trans_b ? kk : n, 0.0, c.data(), n);
  return c;
}

std::vector<double> dq(const std::vector<float>& x, int64_t rows, int64_t cols, Granularity g) {
  return dequantize_f64(quantize(x.data(), rows, cols, {Fp8Kind::e4m3, g, false}));
}

// ||got - ref|| / ||ref||.
double normwise(const float* got, int64_t ld, const std::vector<double>& ref, int64_t rows, int64_t cols,
                double offset = 0.0) {
  double err = 0, norm = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double e = (got[r * ld + c] - offset) - ref[r * cols + c];
      err += e * e;
      norm += ref[r * cols + c] * ref[r * cols + c];
    }
  return std::sqrt(err / norm);
}

struct Mode {
  const char* name;
  Fp8LinearOptions options;
  double tolerance;  // normwise, against the float64 product of the quantized operands
};

}  // namespace

TEST(Fp8Linear, FakeQuantizeEqualsDequantizeOfQuantize) {
  const int64_t rows = 200, cols = 300, ld = 305;  // partial tiles, strided input
  const auto x = random_vector(rows * ld, 1, 2.0, /*outliers=*/true);
  std::vector<float> contiguous(rows * cols), out(rows * ld, -1.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) contiguous[r * cols + c] = x[r * ld + c];
  for (Fp8Kind kind : {Fp8Kind::e4m3, Fp8Kind::e5m2})
    for (bool ue8m0 : {false, true})
      for (Granularity g : {Granularity::none, Granularity::tensor, Granularity::tile_1x128, Granularity::tile_128x1,
                            Granularity::block_128x128}) {
        const QuantizeOptions o{kind, g, ue8m0};
        const auto ref = dequantize(quantize(contiguous.data(), rows, cols, o));
        fake_quantize(out.data(), ld, x.data(), ld, rows, cols, o);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c)
            ASSERT_EQ(std::memcmp(&out[r * ld + c], &ref[r * cols + c], 4), 0)
                << fp8_name(kind) << " " << granularity_name(g) << (ue8m0 ? " ue8m0" : "") << " at [" << r << ", "
                << c << "]: " << out[r * ld + c] << " vs " << ref[r * cols + c];
        EXPECT_EQ(out[cols], -1.0f) << "wrote past the row";
      }
  std::vector<float> bad = contiguous;
  bad[7] = NAN;
  EXPECT_THROW(fake_quantize(out.data(), cols, bad.data(), cols, rows, cols, {}), Error);
}

TEST(Fp8Linear, TransposeEqualsQuantizingTheTranspose) {
  const int64_t rows = 260, cols = 150;
  const auto x = random_vector(rows * cols, 2, 1.0, true);
  std::vector<float> xt(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) xt[c * rows + r] = x[r * cols + c];
  const std::pair<Granularity, Granularity> pairs[] = {{Granularity::tile_1x128, Granularity::tile_128x1},
                                                       {Granularity::tile_128x1, Granularity::tile_1x128},
                                                       {Granularity::block_128x128, Granularity::block_128x128},
                                                       {Granularity::tensor, Granularity::tensor}};
  for (const auto& [g, gt] : pairs) {
    const QuantizedTensor t = transpose(quantize(x.data(), rows, cols, {Fp8Kind::e4m3, g, false}));
    const QuantizedTensor direct = quantize(xt.data(), cols, rows, {Fp8Kind::e4m3, gt, false});
    EXPECT_EQ(t.granularity, direct.granularity);
    EXPECT_EQ(t.rows, direct.rows);
    EXPECT_EQ(t.scale_rows, direct.scale_rows);
    EXPECT_EQ(t.scale_cols, direct.scale_cols);
    EXPECT_EQ(t.codes, direct.codes) << granularity_name(g);
    EXPECT_EQ(t.scales, direct.scales) << granularity_name(g);
  }
}

// Fprop, Dgrad and Wgrad of each mode against float64 products of the same
// quantized operands; dx honours beta, dW accumulates.
TEST(Fp8Linear, ThreeGemmsEqualExactProductsOfTheirQuantizedOperands) {
  const int64_t rows = 200, n = 136, k = 300;  // partial 128-tiles along every axis
  const int64_t ldx = k + 3, ldy = n + 5;
  const auto x = random_vector(rows * ldx, 3, 1.0, true);
  const auto w = random_vector(n * k, 4, 0.05);
  const auto dy = random_vector(rows * ldy, 5, 1e-3, true);
  std::vector<float> x_c(rows * k), dy_c(rows * n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < k; ++c) x_c[r * k + c] = x[r * ldx + c];
    for (int64_t c = 0; c < n; ++c) dy_c[r * n + c] = dy[r * ldy + c];
  }
  // The exact references (straight-through: quantization is the identity in backward).
  const auto w_blocks = dq(w, n, k, Granularity::block_128x128);
  const auto y_exact = dgemm(false, true, rows, n, k, dq(x_c, rows, k, Granularity::tile_1x128), w_blocks);
  const auto dx_exact = dgemm(false, false, rows, k, n, dq(dy_c, rows, n, Granularity::tile_1x128), w_blocks);
  const auto dx_exact_blockwise =
      dgemm(false, false, rows, k, n, dq(dy_c, rows, n, Granularity::block_128x128), w_blocks);
  const auto dw_exact = dgemm(true, false, n, k, rows, dq(dy_c, rows, n, Granularity::tile_128x1),
                              dq(x_c, rows, k, Granularity::tile_128x1));
  // FP32 GEMMs of the unquantized operands, to see that quantization shows.
  std::vector<double> x64(x_c.begin(), x_c.end()), w64(w.begin(), w.end()), dy64(dy_c.begin(), dy_c.end());
  const auto y_fp32 = dgemm(false, true, rows, n, k, x64, w64);

  Fp8LinearOptions fast, emulated, emulated_blockwise;
  emulated.acc_bits = emulated_blockwise.acc_bits = 13;
  emulated_blockwise.dgrad_blockwise = true;
  // Tolerances: FP32 accumulation over K <= 300 is ~1e-7; F = 13 with
  // promotion every 128 is ~1e-4 normwise (results/README.md fp8 table).
  const Mode modes[] = {{"acc fp32", fast, 1e-6}, {"acc 13, promote 128", emulated, 1e-3},
                        {"acc 13, dgrad 128x128", emulated_blockwise, 1e-3}};
  for (const Mode& mode : modes) {
    SCOPED_TRACE(mode.name);
    std::vector<float> y(rows * ldy, 0.5f);
    fp8_linear_forward(y.data(), ldy, x.data(), ldx, rows, w.data(), n, k, mode.options, /*beta=*/2.0f);
    EXPECT_LT(normwise(y.data(), ldy, y_exact, rows, n, /*offset=*/1.0), mode.tolerance) << "Fprop";
    EXPECT_GT(normwise(y.data(), ldy, y_fp32, rows, n, 1.0), 1e-3) << "Fprop shows no quantization";

    // Offsets as powers of two near the gradients' size, so the check sees
    // the GEMM's error rather than the rounding of a large offset.
    const float offset = std::ldexp(1.0f, -10);
    std::vector<float> dx(rows * ldx, offset / 4), dw(n * k, offset);
    fp8_linear_backward(dx.data(), ldx, /*beta_dx=*/4.0f, dw.data(), dy.data(), ldy, x.data(), ldx, rows, w.data(),
                        n, k, mode.options);
    const auto& dx_ref = mode.options.dgrad_blockwise ? dx_exact_blockwise : dx_exact;
    EXPECT_LT(normwise(dx.data(), ldx, dx_ref, rows, k, offset), mode.tolerance) << "Dgrad";
    EXPECT_LT(normwise(dw.data(), k, dw_exact, n, k, offset), mode.tolerance) << "Wgrad";
    std::vector<float> dw_only(n * k, 0.0f);
    fp8_linear_backward(nullptr, 0, 0.0f, dw_only.data(), dy.data(), ldy, x.data(), ldx, rows, w.data(), n, k,
                        mode.options);
    for (int64_t i = 0; i < n * k; ++i) ASSERT_EQ(dw_only[i] + offset, dw[i]) << "dW must accumulate (+=) at " << i;
  }
  // The blockwise Dgrad quantizes differently from the tiled one.
  EXPECT_GT(normwise(std::vector<float>(dx_exact.begin(), dx_exact.end()).data(), k, dx_exact_blockwise, rows, k),
            1e-3);
}

TEST(Fp8Linear, EmulatedFprop13MatchesTheEmulatedGemmBitForBit) {
  const int64_t rows = 64, n = 96, k = 256;
  const auto x = random_vector(rows * k, 6, 1.0), w = random_vector(n * k, 7, 0.05);
  Fp8LinearOptions o;
  o.acc_bits = 13;
  std::vector<float> y(rows * n);
  fp8_linear_forward(y.data(), n, x.data(), k, rows, w.data(), n, k, o);
  const auto expect = fp8_gemm(quantize(x.data(), rows, k, {Fp8Kind::e4m3, Granularity::tile_1x128, false}),
                               quantize(w.data(), n, k, {Fp8Kind::e4m3, Granularity::block_128x128, false}), {13, 128});
  EXPECT_EQ(y, expect);
}

TEST(Fp8Linear, OptionsNameTheKeyTheyReject) {
  Fp8LinearOptions o;
  o.acc_bits = 13;
  o.promote = 0;
  try {
    o.validate();
    FAIL() << "promote 0 with FP32 tile scales must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("numerics.ue8m0"), std::string::npos) << e.what();
  }
  o.ue8m0 = true;
  EXPECT_NO_THROW(o.validate());
  o.acc_bits = 30;
  EXPECT_THROW(o.validate(), Error);
  EXPECT_THROW(set_fp8_linear_options(o), Error);
  EXPECT_EQ(fp8_linear_options().acc_bits, kAccFp32) << "a rejected setting must not stick";
}
