#include "numerics/errcurve.hpp"

#include <cstdio>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace moelab::numerics {

std::string input_dist_name(InputDist d) { return d == InputDist::normal ? "normal" : "uniform01"; }

InputDist parse_input_dist(const std::string& name) {
  if (name == "normal") return InputDist::normal;
  if (name == "uniform01") return InputDist::uniform01;
  MOE_FAIL() << "unknown input distribution '" << name << "' (expected normal or uniform01)";
  return InputDist::normal;
}

std::string gemm_quant_name(GemmQuant q) { return q == GemmQuant::tensor ? "tensor" : "block"; }

GemmQuant parse_gemm_quant(const std::string& name) {
  if (name == "tensor") return GemmQuant::tensor;
  if (name == "block") return GemmQuant::block;
  MOE_FAIL() << "unknown GEMM quantization '" << name << "' (expected block or tensor)";
  return GemmQuant::tensor;
}

QuantizedTensor quantize_gemm_a(const float* a, int64_t m, int64_t k, GemmQuant quant) {
  return quantize(a, m, k,
                  {Fp8Kind::e4m3, quant == GemmQuant::tensor ? Granularity::tensor : Granularity::tile_1x128, false});
}

QuantizedTensor quantize_gemm_w(const float* w, int64_t n, int64_t k, GemmQuant quant) {
  return quantize(w, n, k,
                  {Fp8Kind::e4m3, quant == GemmQuant::tensor ? Granularity::tensor : Granularity::block_128x128, false});
}

void ErrCurveOptions::validate() const {
  MOE_CHECK(!k_values.empty() && !acc_bits.empty() && !promote.empty()) << "errcurve: --k, --acc-bits and --promote "
                                                                           "each need at least one value";
  for (int64_t k : k_values) MOE_CHECK(k > 0) << "errcurve: --k value " << k << " must be positive";
  for (int bits : acc_bits)
    MOE_CHECK(bits == kAccFp32 || (bits >= 1 && bits <= kMaxAccBits))
        << "errcurve: --acc-bits " << bits << " (expected 1.." << kMaxAccBits << " or fp32)";
  for (int p : promote) {
    MOE_CHECK(p >= 0 && p % kMmaK == 0) << "errcurve: --promote " << p << " (expected 0 or a multiple of " << kMmaK
                                        << ")";
    MOE_CHECK(quant == GemmQuant::tensor || (p > 0 && kFp8TileSize % p == 0))
        << "errcurve: --promote " << p << " with --quant block: promote must divide " << kFp8TileSize;
  }
  MOE_CHECK(trials >= 1) << "errcurve: --trials " << trials << " must be at least 1";
  MOE_CHECK(m >= 1 && n >= 1) << "errcurve: --m " << m << " and --n " << n << " must be positive";
}

std::vector<ErrCurveRow> fp8_errcurve(const ErrCurveOptions& options) {
  options.validate();
  std::vector<ErrCurveRow> rows;
  for (size_t ki = 0; ki < options.k_values.size(); ++ki) {
    const int64_t K = options.k_values[ki];
    const size_t first = rows.size();
    for (int bits : options.acc_bits)
      for (int p : options.promote) rows.push_back({K, bits, p, {}, 0});
    for (int trial = 0; trial < options.trials; ++trial) {
      // One stream per (K, trial): adding a K value does not change the others.
      Rng rng(options.seed * 1000003 + ki * 7919 + trial);
      std::vector<float> a(options.m * K), w(options.n * K);
      for (auto* x : {&a, &w})
        for (float& v : *x)
          v = static_cast<float>(options.dist == InputDist::normal ? rng.normal() : rng.uniform());
      const QuantizedTensor qa = quantize_gemm_a(a.data(), options.m, K, options.quant);
      const QuantizedTensor qw = quantize_gemm_w(w.data(), options.n, K, options.quant);
      const std::vector<double> exact = fp8_gemm_exact(qa, qw);
      for (size_t r = first; r < rows.size(); ++r) {
        const std::vector<float> y = fp8_gemm(qa, qw, {rows[r].acc_bits, rows[r].promote});
        const GemmErrors e = gemm_errors(y.data(), exact.data(), options.m * options.n);
        rows[r].mean.normwise += e.normwise / options.trials;
        rows[r].mean.max_err_over_rms += e.max_err_over_rms / options.trials;
        rows[r].mean.mean_rel += e.mean_rel / options.trials;
        rows[r].mean.max_rel += e.max_rel / options.trials;
        rows[r].max_rel_worst = std::max(rows[r].max_rel_worst, e.max_rel);
      }
    }
  }
  return rows;
}

std::string format_errcurve_table(const std::vector<ErrCurveRow>& rows) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line), "%8s %8s %8s | %12s %12s %12s %12s %12s\n", "k", "acc_bits", "promote",
                "normwise", "max/rms", "mean_rel", "max_rel", "max_rel_wst");
  out += line;
  for (const auto& r : rows) {
    std::snprintf(line, sizeof(line), "%8lld %8s %8d | %12.4e %12.4e %12.4e %12.4e %12.4e\n",
                  static_cast<long long>(r.k), acc_bits_name(r.acc_bits).c_str(), r.promote, r.mean.normwise,
                  r.mean.max_err_over_rms, r.mean.mean_rel, r.mean.max_rel, r.max_rel_worst);
    out += line;
  }
  return out;
}

}  // namespace moelab::numerics
