// The cost model; see cost_model.hpp for the calibrations and their sources.
#include "sim/cost_model.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "model/config.hpp"

namespace moelab::sim {

double EfficiencyCurve::at(double x) const {
  MOE_CHECK(!points.empty()) << "efficiency curve " << name << " has no points";
  if (x <= points.front().log2_work) return points.front().efficiency;
  if (x >= points.back().log2_work) return points.back().efficiency;
  for (size_t i = 1; i < points.size(); ++i) {
    if (x <= points[i].log2_work) {
      const auto& a = points[i - 1];
      const auto& b = points[i];
      const double t = (x - a.log2_work) / (b.log2_work - a.log2_work);
      return a.efficiency + t * (b.efficiency - a.efficiency);
    }
  }
  return points.back().efficiency;
}

namespace {

constexpr double kH800Fp8PeakTflops = 1978.9;
constexpr double kH800Bf16PeakTflops = 989.4;
constexpr double kH800HbmGBps = 3350.0;

CalibrationPoint gemm_point(int64_t m, int64_t n, int64_t k, double tflops) {
  return {std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k),
          std::log2(static_cast<double>(m) * n * k), tflops / kH800Fp8PeakTflops};
}

void sort_points(EfficiencyCurve& c) {
  std::sort(c.points.begin(), c.points.end(),
            [](const CalibrationPoint& a, const CalibrationPoint& b) { return a.log2_work < b.log2_work; });
}

}  // namespace

Calibration default_calibration(const Hardware& hw) {
  Calibration cal;
  cal.dense_gemm.name = "deepgemm-dense-fp8-h800";
  cal.dense_gemm.source =
      "deepseek-ai/DeepGEMM README, H800, NVCC 12.8: dense normal GEMMs at 8002b76 (4096x7168x16384 1426, "
      "4096x4096x7168 1265, 4096x2112x7168 1009, 128x7168x16384 645 TFLOPS) and a6d97a1 (64x2112x7168 206 "
      "TFLOPS); efficiency = TFLOPS / 1979";
  cal.dense_gemm.points = {gemm_point(4096, 7168, 16384, 1426), gemm_point(4096, 4096, 7168, 1265),
                           gemm_point(4096, 2112, 7168, 1009), gemm_point(128, 7168, 16384, 645),
                           gemm_point(64, 2112, 7168, 206)};
  sort_points(cal.dense_gemm);
  cal.grouped_gemm.name = "deepgemm-grouped-fp8-h800";
  cal.grouped_gemm.source =
      "deepseek-ai/DeepGEMM README, H800: grouped contiguous 4 x 8192x4096x7168 1346, 8 x 4096x7168x2048 1214 "
      "TFLOPS (8002b76); grouped masked 1 x 1024x4096x7168 1233, 4 x 256x7168x2048 815 TFLOPS; per-group work";
  cal.grouped_gemm.points = {gemm_point(8192, 4096, 7168, 1346), gemm_point(4096, 7168, 2048, 1214),
                             gemm_point(1024, 4096, 7168, 1233), gemm_point(256, 7168, 2048, 815)};
  sort_points(cal.grouped_gemm);
  // profile-data: one layer's FlashAttention forward 1.2 ms, backward 3.7 ms at
  // 4096 tokens of 4K sequences (one sequence per micro-batch, as DeepEP's
  // 4096-token training setting), DeepSeek-V3 MLA dims (nh 128, Dqk 192, Dv 128).
  // The trace ran with 20 of 132 SMs held by DeepEP, so the kernels had 112
  // SMs: efficiency against the full-chip peak = measured / (112/132).
  const double attn_fwd_flops = 4096.0 * 4096.0 * 128.0 * (192.0 + 128.0);
  const double trace_sm_fraction = 112.0 / 132.0;
  cal.attention_fwd_eff = attn_fwd_flops / 1.2e-3 / (kH800Bf16PeakTflops * 1e12 * trace_sm_fraction);
  cal.attention_bwd_eff = 2.5 * attn_fwd_flops / 3.7e-3 / (kH800Bf16PeakTflops * 1e12 * trace_sm_fraction);
  cal.attention_source =
      "deepseek-ai/profile-data 4496024 train.json (H800, EP64, 4K sequence, 112 of 132 SMs for compute): "
      "FlashAttention fwd ~1.2 ms, bwd ~3.7 ms per layer; ASSUMED one 4096-token sequence per micro-batch; "
      "efficiency flat in shape";
  cal.memory_eff = 3000.0 / kH800HbmGBps;
  cal.memory_source = "deepseek-ai/FlashMLA README: up to 3000 GB/s memory-bound on H800 SXM5 (3.35 TB/s peak)";
  if (hw.name == "cpu-local") {
    cal.transfer_note =
        "cpu-local: the peak is a measured sgemm rate, so GEMM efficiency 1; attention 0.5 (the CPU reference "
        "computes the masked half too); memory efficiency 1";
    for (auto* c : {&cal.dense_gemm, &cal.grouped_gemm})
      for (auto& p : c->points) p.efficiency = 1.0;
    // The CPU reference attention computes the full S x S scores and masks
    // them (backend/cpu/attention.hpp): half of its work is the masked half.
    cal.attention_fwd_eff = cal.attention_bwd_eff = 0.5;
    cal.memory_eff = 1.0;
  } else if (hw.name != "h800") {
    cal.transfer_note = "efficiencies measured on H800 applied as fractions of " + hw.name +
                        "'s own peaks (ASSUMED; no published DeepGEMM/DeepEP figures used for it)";
  } else {
    cal.transfer_note = "H800: the calibration hardware itself";
  }
  return cal;
}

PassTimes op_time(const cost::OpWork& op, const Hardware& hw, const Calibration& cal, double rows_per_group,
                  double sm_fraction) {
  PassTimes t;
  const double mem_Bps = hw.hbm_GBps.value * 1e9 * cal.memory_eff;
  auto mem = [&](double bytes) { return bytes / mem_Bps; };
  switch (op.op_class) {
    case cost::OpClass::memory: {
      t.fwd_s = mem(op.fwd_bytes);
      t.dgrad_s = mem(op.dgrad_bytes);
      t.wgrad_s = mem(op.wgrad_bytes);
      t.recompute_s = mem(op.recompute_bytes);
      return t;
    }
    case cost::OpClass::attention: {
      const double peak = hw.peak_bf16_tflops.value * 1e12 * sm_fraction;
      t.fwd_s = std::max(op.fwd_flops / (peak * cal.attention_fwd_eff), mem(op.fwd_bytes));
      t.dgrad_s = std::max(op.dgrad_flops / (peak * cal.attention_bwd_eff), mem(op.dgrad_bytes));
      return t;
    }
    case cost::OpClass::gemm:
    case cost::OpClass::grouped_gemm: {
      const bool grouped = op.op_class == cost::OpClass::grouped_gemm;
      const double peak_tflops =
          op.precision == cost::Precision::fp8 ? hw.peak_fp8_or_bf16_tflops() : hw.peak_bf16_tflops.value;
      const double m = grouped ? std::max(rows_per_group, 1.0) : static_cast<double>(op.m);
      const double eff = (grouped ? cal.grouped_gemm : cal.dense_gemm).at(std::log2(m * op.n * op.k));
      const double rate = peak_tflops * 1e12 * eff * sm_fraction;
      t.fwd_s = std::max(op.fwd_flops / rate, mem(op.fwd_bytes));
      t.dgrad_s = std::max(op.dgrad_flops / rate, mem(op.dgrad_bytes));
      t.wgrad_s = std::max(op.wgrad_flops / rate, mem(op.wgrad_bytes));
      t.recompute_s = op.recompute_flops > 0 ? std::max(op.recompute_flops / rate, mem(op.recompute_bytes)) : 0.0;
      return t;
    }
  }
  return t;
}

}  // namespace moelab::sim

namespace moelab::sim {

Calibration profile_data_calibration(const Hardware& hw) {
  Calibration cal = default_calibration(hw);
  if (hw.name == "cpu-local") return cal;
  // Price the trace's layer pair with the kernel calibration on H800.
  const Hardware h800 = hardware_entry("h800");
  const Calibration kernels = default_calibration(h800);
  const ModelConfig v3 = model_preset("deepseek-v3");
  cost::WorkOptions opt;  // 4096 tokens, 4K sequences, recomputation on
  const double sm = 112.0 / 132.0, ep = 64;
  const double rows_per_group = 4096.0 * v3.num_experts_per_tok * ep / v3.n_routed_experts;
  double gemm_s = 0, other_s = 0;
  for (const auto& op0 : cost::decoder_layer_work(v3, v3.first_k_dense_replace, opt).ops) {
    const cost::OpWork op = cost::expert_parallel_share(op0, static_cast<int64_t>(ep));
    const PassTimes t = op_time(op, h800, kernels, rows_per_group, sm);
    const double total = t.fwd_s + t.dgrad_s + t.wgrad_s + t.recompute_s;
    if (op.op_class == cost::OpClass::gemm || op.op_class == cost::OpClass::grouped_gemm) gemm_s += total;
    else if (op.op_class == cost::OpClass::memory) other_s += total;
  }
  const double trace_gemm_s = (5.7 + 4.7 + 8.2) * 1e-3, trace_other_s = (31.1 - 18.6 - 4.9) * 1e-3;
  const double gemm_scale = gemm_s / trace_gemm_s, mem_scale = other_s / trace_other_s;
  for (auto* c : {&cal.dense_gemm, &cal.grouped_gemm}) {
    c->name += "-x-profile-data";
    c->source += "; scaled by " + std::to_string(gemm_scale) +
                 " so a V3 MoE layer pair's GEMMs take profile-data's 18.6 ms (H800, 112 SMs)";
    for (auto& p : c->points) p.efficiency *= gemm_scale;
  }
  cal.memory_eff *= mem_scale;
  cal.memory_source += "; scaled by " + std::to_string(mem_scale) +
                       " so a V3 MoE layer pair's memory-bound ops take profile-data's 7.6 ms (31.1 - 18.6 GEMM "
                       "- 4.9 attention; H800, 112 SMs)";
  return cal;
}

Calibration make_calibration(const Hardware& hw, const std::string& kind) {
  if (kind == "kernels") return default_calibration(hw);
  if (kind == "profile-data") return profile_data_calibration(hw);
  MOE_CHECK(false) << "--calibration '" << kind << "': expected kernels or profile-data";
  return {};
}

}  // namespace moelab::sim
