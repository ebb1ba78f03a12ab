// The hardware catalog: one entry per GPU system (H800, H100 SXM, H200,
// A100, B200) and `cpu-local` (this machine, calibrated from moelab's own
// micro-benchmarks). Every number carries its provenance: a vendor
// datasheet, the DeepSeek-V3 paper, a published kernel measurement, or
// "ASSUMED" with a reason. The provenance is printed by `moelab plan
// --list-hardware` and written as attributes of the results file.
//
// An entry can also be read from an INI file (experiments/capacity/hardware/
// *.ini): `base = h800` then `key = value` and `key.source = text` lines.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sim/units.hpp"

namespace moelab::sim {

// One figure and where it comes from.
struct Figure {
  double value = 0;
  std::string source;
};

struct Hardware {
  std::string name;         // catalog key: "h800"
  std::string description;  // "NVIDIA H800 SXM5 80GB, 8 per node, 1x CX7 400Gb/s IB per GPU"
  // Per GPU compute (dense, no sparsity).
  Figure peak_bf16_tflops;
  Figure peak_fp8_tflops;  // 0: no FP8 tensor cores (FP8 GEMMs run at the BF16 rate)
  Figure num_sms;
  // Per GPU memory.
  Figure hbm_gb;  // GB = 1e9 bytes
  Figure hbm_GBps;
  // Interconnect, per GPU and per direction.
  Figure nvlink_GBps;    // scale-up (NVLink/NVSwitch) link rate
  Figure scaleout_GBps;  // scale-out (IB/RoCE) NIC rate
  Figure gpus_per_node;
  Figure nvlink_latency_us;
  Figure scaleout_latency_us;
  // Measured fractions of the link rates that collective kernels reach.
  Figure nvlink_efficiency;    // DeepEP intranode bottleneck bandwidth / link rate
  Figure scaleout_efficiency;  // DeepEP internode RDMA bandwidth / NIC rate (see cost_model.cpp)

  double peak_fp8_or_bf16_tflops() const {
    return peak_fp8_tflops.value > 0 ? peak_fp8_tflops.value : peak_bf16_tflops.value;
  }
  // (key, value, source) for every figure, in declaration order.
  std::vector<std::tuple<std::string, double, std::string>> figures() const;
  Figure* figure(const std::string& key);
};

std::vector<std::string> hardware_names();
bool is_hardware_name(const std::string& name);
Hardware hardware_entry(const std::string& name);
// A catalog name, or a path to an INI file (`base = NAME` plus overrides).
Hardware load_hardware(const std::string& name_or_path);
Hardware hardware_from_ini_text(const std::string& text, const std::string& source);

}  // namespace moelab::sim
