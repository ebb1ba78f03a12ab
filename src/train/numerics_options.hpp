// The [numerics] keys of `moelab train`: the precision of the model's linear
// layers and DeepSeek-V3's FP8 recipe (§3.3; src/numerics/fp8_linear.hpp).
//   numerics.gemm             fp32 | bf16 | fp8
//   numerics.acc_bits         tensor-core accumulator fraction bits (13 = H800) or fp32
//   numerics.promote          N_C: K elements between promotions to FP32 (0 = never)
//   numerics.dgrad_blockwise  activation gradients in 128x128 blocks for Dgrad (Appendix B.2)
//   numerics.ue8m0            power-of-two scales
// Header-only: declared and read by train_options, applied by the loop.
// The paper's exclusions are the model's: embedding, output head (BF16 in
// fp8 mode), MoE gate (FP32), norms and the attention core never use FP8.
#pragma once

#include <boost/program_options.hpp>
#include <string>

#include "backend/cpu/gemm.hpp"
#include "core/error.hpp"
#include "numerics/fp8_linear.hpp"

namespace moelab::train {

struct NumericsConfig {
  std::string gemm = "fp32";
  numerics::Fp8LinearOptions fp8;

  cpu::GemmPrecision precision() const {
    if (gemm == "bf16") return cpu::GemmPrecision::bf16;
    if (gemm == "fp8") return cpu::GemmPrecision::fp8;
    return cpu::GemmPrecision::fp32;
  }
  void validate() const {
    MOE_CHECK(gemm == "fp32" || gemm == "bf16" || gemm == "fp8")
        << "numerics.gemm '" << gemm << "': expected fp32, bf16 or fp8";
    fp8.validate();
  }
  // Installs the FP8 options for model/linear.cpp's fp8 branch.
  void apply() const {
    validate();
    numerics::set_fp8_linear_options(fp8);
  }
};

inline void declare_numerics_options(boost::program_options::options_description_easy_init add) {
  namespace po = boost::program_options;
  add("numerics.gemm", po::value<std::string>()->default_value("fp32"),
      "precision of the linear layers' GEMMs: fp32, bf16 (inputs rounded to BF16, FP32 accumulation) or fp8 "
      "(DeepSeek-V3 §3.3: Fprop, Dgrad and Wgrad in E4M3 with 1x128 activation tiles, 128x128 weight blocks, "
      "128x1 tiles for Wgrad; the embedding, output head (BF16), MoE gate, norms and attention core stay in "
      "higher precision)")  //
      ("numerics.acc_bits", po::value<std::string>()->default_value("fp32"),
       "fp8: tensor-core accumulator fraction bits 1..23 (H800/H100: 13, the bit-faithful emulation) or fp32 (an "
       "FP32 accumulator: block-wise BLAS on dequantized tiles, quantization error only, fast)")  //
      ("numerics.promote", po::value<int>()->default_value(128),
       "fp8: N_C, K elements between promotions of the tensor-core partial sum to FP32 (a multiple of 32 "
       "dividing 128; 0 = never, which needs numerics.ue8m0); CUTLASS mma_promotion_interval, Triton "
       "max_num_imprecise_acc")  //
      ("numerics.dgrad_blockwise", po::value<bool>()->default_value(false),
       "fp8: quantize activation gradients for Dgrad in 128x128 blocks instead of 1x128 tiles (DeepSeek-V3 "
       "Appendix B.2, where it diverged)")  //
      ("numerics.ue8m0", po::value<bool>()->default_value(false),
       "fp8: power-of-two (UE8M0) scales 2^ceil(log2(amax/448)); folded exactly into the emulated tensor core, "
       "so numerics.promote 0 can keep fine-grained tiles");
}

// Reads the keys back; Opts has get<T>(key) (cli's CommandOptions).
template <typename Opts>
NumericsConfig numerics_config_from(const Opts& o) {
  NumericsConfig c;
  c.gemm = o.template get<std::string>("numerics.gemm");
  c.fp8.acc_bits = numerics::parse_acc_bits(o.template get<std::string>("numerics.acc_bits"));
  c.fp8.promote = o.template get<int>("numerics.promote");
  c.fp8.dgrad_blockwise = o.template get<bool>("numerics.dgrad_blockwise");
  c.fp8.ue8m0 = o.template get<bool>("numerics.ue8m0");
  c.validate();
  return c;
}

}  // namespace moelab::train
