// The linear layer in each numerics mode (numerics.gemm = fp32 | bf16 | fp8)
// checked against its own forward: the backward of each mode is the exact
// gradient of the forward's bilinear map on that mode's rounded operands
// (straight-through: rounding/quantization is the identity in backward), so
// Fprop, Dgrad and Wgrad are compared with float64 products of the operands
// as the mode rounds them (BF16: x, W, dy rounded to BF16; FP8: E4M3 with
// 1x128 / 128x128 / 128x1 scales as src/numerics/fp8_linear.hpp). Then the
// whole v3-tiny model in FP8 (fast and emulated accumulators, experts
// included) against FP32: loss and gradients stay close.
#include <gtest/gtest.h>

#include <cblas.h>

#include <cmath>
#include <vector>

#include "core/bf16.hpp"
#include "core/rng.hpp"
#include "model/linear.hpp"
#include "model/model.hpp"
#include "numerics/fp8_linear.hpp"
#include "train/numerics_options.hpp"

using namespace moelab;
using numerics::Granularity;

namespace {

std::vector<float> random_vector(int64_t n, uint64_t seed, double stddev) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal() * stddev);
  return v;
}

// The operand as the mode rounds it, in double.
std::vector<double> rounded(const std::vector<float>& x, int64_t rows, int64_t cols, GemmPrecision p, Granularity g) {
  if (p == GemmPrecision::fp8)
    return numerics::dequantize_f64(numerics::quantize(x.data(), rows, cols, {numerics::Fp8Kind::e4m3, g, false}));
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = p == GemmPrecision::bf16 ? round_to_bf16(x[i]) : x[i];
  return out;
}

std::vector<double> dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const std::vector<double>& a,
                          const std::vector<double>& b) {
  std::vector<double> c(m * n);
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a.data(),
              ta ? m : k, b.data(), tb ? k : n, 0.0, c.data(), n);
  return c;
}

double normwise(const std::vector<float>& got, const std::vector<double>& ref) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    err += (got[i] - ref[i]) * (got[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return std::sqrt(err / norm);
}

const char* name(GemmPrecision p) {
  return p == GemmPrecision::fp32 ? "fp32" : p == GemmPrecision::bf16 ? "bf16" : "fp8";
}

}  // namespace

TEST(LinearPrecision, EachModesBackwardIsTheExactGradientOfItsForward) {
  const int64_t rows = 150, n = 136, k = 260;
  Param<float> w;
  w.name = "w";
  w.value = Tensor<float>({n, k}, random_vector(n * k, 1, 0.05));
  const Tensor<float> x({rows, k}, random_vector(rows * k, 2, 1.0));
  const Tensor<float> dy({rows, n}, random_vector(rows * n, 3, 1e-2));
  for (GemmPrecision p : {GemmPrecision::fp32, GemmPrecision::bf16, GemmPrecision::fp8}) {
    SCOPED_TRACE(name(p));
    const auto w_fwd = rounded(w.value.data, n, k, p, Granularity::block_128x128);
    const auto y_ref = dgemm(false, true, rows, n, k, rounded(x.data, rows, k, p, Granularity::tile_1x128), w_fwd);
    const auto dx_ref = dgemm(false, false, rows, k, n, rounded(dy.data, rows, n, p, Granularity::tile_1x128), w_fwd);
    const auto dw_ref = dgemm(true, false, n, k, rows, rounded(dy.data, rows, n, p, Granularity::tile_128x1),
                              rounded(x.data, rows, k, p, Granularity::tile_128x1));
    Tensor<float> y, dx;
    w.grad = Tensor<float>({n, k});
    linear_forward(y, x, w, p);
    linear_backward(&dx, w, dy, x, p);
    // FP32 accumulation over K <= 260 (the FP8 default is acc_bits fp32).
    EXPECT_LT(normwise(y.data, y_ref), 1e-6) << "Fprop";
    EXPECT_LT(normwise(dx.data, dx_ref), 1e-6) << "Dgrad";
    EXPECT_LT(normwise(w.grad.data, dw_ref), 1e-6) << "Wgrad";
  }
}

namespace {

struct TinyRun {
  double loss = 0;
  std::vector<std::vector<float>> grads;
  std::vector<std::string> names;
};

TinyRun run_tiny(GemmPrecision precision) {
  const ModelConfig c = model_preset("v3-tiny");
  ModelParams<float> params(c, /*with_mtp=*/false);
  params.init(11, 0.05);
  const int64_t batch = 2, seq_len = 16;
  Rng rng(5);
  std::vector<int32_t> ids, targets;
  for (int64_t i = 0; i < batch * seq_len; ++i) ids.push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
  for (int64_t i = 0; i < batch * seq_len; ++i)
    targets.push_back(i % seq_len + 1 < seq_len ? ids[i + 1] : -100);
  ModelContext<float> ctx;
  ctx.precision = precision;
  ModelSaved<float> saved;
  TinyRun r;
  r.loss = model_forward(saved, params, c, ids, targets, batch, seq_len, 0.0, ctx).total;
  model_backward(params, saved, c, ctx);
  for (auto& p : params.all()) {
    r.names.push_back(p.name);
    r.grads.push_back(p.grad.data);
  }
  return r;
}

}  // namespace

TEST(LinearPrecision, TinyModelInFp8StaysCloseToFp32) {
  const TinyRun fp32 = run_tiny(GemmPrecision::fp32);
  for (int acc_bits : {numerics::kAccFp32, 13}) {
    numerics::Fp8LinearOptions o;
    o.acc_bits = acc_bits;
    numerics::set_fp8_linear_options(o);
    const TinyRun fp8 = run_tiny(GemmPrecision::fp8);
    SCOPED_TRACE("acc_bits " + numerics::acc_bits_name(acc_bits));
    EXPECT_NE(fp8.loss, fp32.loss) << "FP8 must show in the loss";
    EXPECT_NEAR(fp8.loss, fp32.loss, 0.01 * fp32.loss);
    double err = 0, norm = 0;
    for (size_t i = 0; i < fp32.grads.size(); ++i) {
      for (size_t j = 0; j < fp32.grads[i].size(); ++j) {
        const double d = fp8.grads[i][j] - fp32.grads[i][j];
        err += d * d;
        norm += double(fp32.grads[i][j]) * fp32.grads[i][j];
      }
    }
    // E4M3 keeps 3 mantissa bits (relative rounding error up to 2^-4 per
    // element); over many products the gradients agree to a few percent.
    EXPECT_LT(std::sqrt(err / norm), 0.1);
  }
  numerics::set_fp8_linear_options({});
}

namespace {

// A stand-in for cli's CommandOptions: get<T>(key) over parsed values.
struct FakeOptions {
  boost::program_options::variables_map vm;
  template <typename T>
  T get(const std::string& key) const {
    return vm[key].as<T>();
  }
};

FakeOptions parse_numerics(const std::vector<std::string>& args) {
  boost::program_options::options_description d;
  train::declare_numerics_options(d.add_options());
  FakeOptions o;
  std::vector<const char*> argv{"moelab"};
  for (const auto& a : args) argv.push_back(a.c_str());
  boost::program_options::store(
      boost::program_options::parse_command_line(static_cast<int>(argv.size()), argv.data(), d), o.vm);
  boost::program_options::notify(o.vm);
  return o;
}

}  // namespace

TEST(NumericsOptions, DefaultsParseAndRejectionsNameTheKey) {
  const train::NumericsConfig defaults = train::numerics_config_from(parse_numerics({}));
  EXPECT_EQ(defaults.precision(), GemmPrecision::fp32);
  EXPECT_EQ(defaults.fp8.acc_bits, numerics::kAccFp32);
  EXPECT_EQ(defaults.fp8.promote, 128);
  const train::NumericsConfig c = train::numerics_config_from(
      parse_numerics({"--numerics.gemm=fp8", "--numerics.acc_bits=13", "--numerics.promote=0",
                      "--numerics.ue8m0=true", "--numerics.dgrad_blockwise=true"}));
  EXPECT_EQ(c.precision(), GemmPrecision::fp8);
  EXPECT_EQ(c.fp8.acc_bits, 13);
  EXPECT_EQ(c.fp8.promote, 0);
  EXPECT_TRUE(c.fp8.ue8m0 && c.fp8.dgrad_blockwise);
  try {
    train::numerics_config_from(parse_numerics({"--numerics.gemm=fp16"}));
    FAIL() << "fp16 must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("numerics.gemm"), std::string::npos) << e.what();
  }
  EXPECT_THROW(train::numerics_config_from(parse_numerics({"--numerics.acc_bits=13", "--numerics.promote=0"})),
               Error);
}
