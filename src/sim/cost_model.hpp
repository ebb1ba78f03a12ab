// The cost model: the work model of src/model/cost.hpp (FLOPs and bytes per
// op) turned into time on a hardware entry through efficiency curves per op
// class, each calibrated from a named, published kernel measurement and never
// from the end-to-end figure the planner is validated against:
//
//   dense FP8 GEMM    DeepGEMM dense GEMMs on H800 (8002b76 table; 64x2112x7168 from a6d97a1):
//                     TFLOP/s / 1979 against log2(M*N*K), interpolated, clamped
//   grouped FP8 GEMM  DeepGEMM grouped contiguous / masked GEMMs on H800, against log2 of one
//                     group's M*N*K
//   BF16 GEMM         the dense curve on the BF16 peak (ASSUMED: no DeepGEMM BF16 figure)
//   attention         deepseek-ai/profile-data train.json (H800, EP64, 4K sequence):
//                     FlashAttention forward ~1.2 ms, backward ~3.7 ms per layer
//   memory-bound      FlashMLA README: up to 3000 GB/s memory-bound on H800 SXM5 (3.35 TB/s)
//   EP all-to-all     DeepEP normal kernels (hardware.cpp: link efficiencies)
//
// Every op takes max(compute time, HBM time) (roofline). Other hardware keep
// the H800 fractions of their own peaks (ASSUMED, said in the results file).
#pragma once

#include <string>
#include <vector>

#include "model/cost.hpp"
#include "sim/hardware.hpp"

namespace moelab::sim {

struct CalibrationPoint {
  std::string label;  // "4096x7168x16384"
  double log2_work;   // log2(M*N*K) (per group for grouped GEMMs)
  double efficiency;  // achieved / peak
};

struct EfficiencyCurve {
  std::string name;    // "deepgemm-dense-fp8-h800"
  std::string source;  // where the points come from
  std::vector<CalibrationPoint> points;  // sorted by log2_work
  // Piecewise linear in log2(work), clamped to the end points.
  double at(double log2_work) const;
};

struct Calibration {
  EfficiencyCurve dense_gemm, grouped_gemm;
  double attention_fwd_eff = 0, attention_bwd_eff = 0;
  std::string attention_source;
  double memory_eff = 0;
  std::string memory_source;
  std::string transfer_note;  // what is assumed when the hardware is not an H800
};

// The calibration (the same published H800 figures for every entry; cpu-local
// uses efficiency 1 because its peak is already a measured GEMM rate).
Calibration default_calibration(const Hardware& hw);

// The in-situ variant ("profile-data"): deepseek-ai/profile-data's H800
// training trace measures 124.3 ms of compute kernels for 4 overlapped MoE
// layer pairs (31.1 ms per pair, 112 SMs): FP8 GEMMs 18.6 ms (5.7 grouped +
// 4.7 + 8.2), FlashAttention 4.9 ms, the rest (casts, norms, SwiGLU, adds)
// 7.6 ms. Starting from the kernel calibration, GEMM efficiencies are scaled
// so one DeepSeek-V3 MoE layer pair's GEMMs take 18.6 ms and memory-bound
// efficiency so its other ops take 7.6 ms (EP64, 4096 tokens, 112 of 132 SMs).
Calibration profile_data_calibration(const Hardware& hw);

// "kernels" (default_calibration) or "profile-data".
Calibration make_calibration(const Hardware& hw, const std::string& kind);

// Time of one pass of an op on one GPU. For grouped GEMMs `rows_per_group`
// is the rows one expert processes on its GPU; `sm_fraction` is the share of
// SMs left to compute (1 - reserved communication SMs while overlapped).
struct PassTimes {
  double fwd_s = 0, dgrad_s = 0, wgrad_s = 0, recompute_s = 0;
};
PassTimes op_time(const cost::OpWork& op, const Hardware& hw, const Calibration& cal, double rows_per_group = 0,
                  double sm_fraction = 1.0);

}  // namespace moelab::sim
