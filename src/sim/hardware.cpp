// The hardware catalog; see hardware.hpp. Sources, cited in each entry:
//   [NV-H100]  NVIDIA H100 Tensor Core GPU datasheet (SXM5 column): BF16 989 TFLOPS and FP8 1,979 TFLOPS
//              dense (the datasheet's 1,979 / 3,958 are with sparsity), 80 GB HBM3 at 3.35 TB/s,
//              NVLink 900 GB/s (bidirectional), 132 SMs.
//   [NV-H800]  NVIDIA H800 SXM5: the H100 SXM5 die with NVLink cut to 400 GB/s bidirectional.
//   [NV-H200]  NVIDIA H200 datasheet (SXM): 141 GB HBM3e at 4.8 TB/s, compute as H100 SXM, NVLink 900 GB/s.
//   [NV-A100]  NVIDIA A100 datasheet (SXM4 80GB): BF16 312 TFLOPS dense, no FP8, 80 GB HBM2e at 2,039 GB/s,
//              NVLink 600 GB/s (bidirectional), 108 SMs; DGX A100: 8x ConnectX-6 HDR 200 Gb/s.
//   [NV-B200]  NVIDIA DGX/HGX B200 datasheet: per GPU FP8 4.5 PFLOPS and BF16 2.25 PFLOPS dense (the
//              system table's 72 PF FP8 for 8 GPUs is with sparsity), 180 GB HBM3e usable at 8 TB/s,
//              NVLink 5 at 1.8 TB/s (bidirectional), 8x ConnectX-7 400 Gb/s; 148 SMs.
//   [DGX-H100] NVIDIA DGX H100/H200 user guide: 8 GPUs, 8x ConnectX-7 400 Gb/s (one NIC per GPU).
//   [P]        DeepSeek-V3 technical report (arXiv 2412.19437) §3.1-3.2: 2048 H800, 8 per node, NVLink +
//              NVSwitch in the node, IB 50 GB/s per GPU across nodes, NVLink 160 GB/s achievable; §3.5.1:
//              "20 out of the 132 SMs".
//   [EP1]      deepseek-ai/DeepEP README at 2be0d4f: normal kernels on H800 + CX7 400 Gb/s, 4096 tokens,
//              hidden 7168, top-8 of 256, top-4 groups, FP8 dispatch / BF16 combine: intranode EP8
//              153 / 158 GB/s (NVLink); internode EP64 51 / 50 GB/s (RDMA, "logical": the sender's own node
//              counted in the bytes).
//   [bench_gemm] moelab experiments/micro/bench_gemm on this machine (2 cores, AMD EPYC, KVM), fp32
//              4096x128x256 (v3-small's expert shape), real-time FLOP/s, 2026-12-02, shared with other jobs.
#include "sim/hardware.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace moelab::sim {

namespace {

constexpr const char* kAssumedLatencyNvl =
    "ASSUMED: order of NVLink small-message latency (nccl-tests), not calibrated; latencies are "
    "negligible next to the multi-MB transfers priced here";
constexpr const char* kAssumedLatencyIb =
    "ASSUMED: order of IB RDMA small-message latency, not calibrated; negligible next to MB transfers";

// DeepEP's internode "logical" bandwidth counts the sender's own node among
// the (token, node) pairs. With M = 4 of 8 nodes per token (EP64, node-limited
// routing) the own node is among them with probability 4/8, so the bytes that
// really cross IB are (4 - 0.5)/4 of the logical ones: NIC efficiency =
// mean(51, 50) GB/s / 50 GB/s x 3.5/4 = 0.884.
constexpr double kDeepEpScaleoutEff = (51.0 + 50.0) / 2.0 / 50.0 * (3.5 / 4.0);
constexpr const char* kDeepEpScaleoutSrc =
    "[EP1] DeepEP 2be0d4f internode EP64 on H800+CX7: dispatch 51, combine 50 GB/s logical RDMA; the own "
    "node's share (0.5 of 4 nodes per token) removed: mean(51,50)/50 x 3.5/4";
// Intranode EP8: 153 / 158 GB/s against H800's 200 GB/s per direction.
constexpr double kDeepEpNvlEff = (153.0 + 158.0) / 2.0 / 200.0;
constexpr const char* kDeepEpNvlSrc =
    "[EP1] DeepEP 2be0d4f intranode EP8 on H800: dispatch 153, combine 158 GB/s against 200 GB/s per "
    "direction; mean/200";
constexpr const char* kTransferred =
    " (measured on H800; the same fraction ASSUMED on this system, no published DeepEP figure)";

Hardware h800() {
  Hardware h;
  h.name = "h800";
  h.description = "NVIDIA H800 SXM5 80GB, 8 per node (NVSwitch), 1x ConnectX-7 400 Gb/s IB per GPU";
  h.peak_bf16_tflops = {989.4, "[NV-H100] SXM5 dense BF16; H800 keeps the H100 SXM5 compute [NV-H800]"};
  h.peak_fp8_tflops = {1978.9, "[NV-H100] SXM5 dense FP8 (3,958 with sparsity); [NV-H800]"};
  h.num_sms = {132, "[P] §3.5.1 '20 out of the 132 SMs'; profile-data train.json numSms 132"};
  h.hbm_gb = {80, "[NV-H800] 80 GB HBM3"};
  h.hbm_GBps = {3350, "[NV-H100] SXM5 3.35 TB/s, same memory on H800 SXM5"};
  h.nvlink_GBps = {200, "[NV-H800] NVLink 400 GB/s bidirectional = 200 GB/s per direction ([P] §3.2.2: 160 "
                        "GB/s achievable)"};
  h.scaleout_GBps = {50, "[P] §3.2.2 IB 50 GB/s per GPU; [EP1] one CX7 400 Gb/s NIC per GPU"};
  h.gpus_per_node = {8, "[P] §3.1: 8 GPUs per node, NVLink + NVSwitch"};
  h.nvlink_latency_us = {3, kAssumedLatencyNvl};
  h.scaleout_latency_us = {5, kAssumedLatencyIb};
  h.nvlink_efficiency = {kDeepEpNvlEff, kDeepEpNvlSrc};
  h.scaleout_efficiency = {kDeepEpScaleoutEff, kDeepEpScaleoutSrc};
  return h;
}

Hardware h100() {
  Hardware h = h800();
  h.name = "h100";
  h.description = "NVIDIA H100 SXM5 80GB, 8 per node (NVSwitch), 1x ConnectX-7 400 Gb/s per GPU (DGX H100)";
  h.peak_bf16_tflops = {989.4, "[NV-H100] SXM5 dense BF16"};
  h.peak_fp8_tflops = {1978.9, "[NV-H100] SXM5 dense FP8 (3,958 with sparsity)"};
  h.num_sms = {132, "[NV-H100] H100 SXM5: 132 SMs"};
  h.hbm_gb = {80, "[NV-H100] 80 GB HBM3"};
  h.hbm_GBps = {3350, "[NV-H100] 3.35 TB/s"};
  h.nvlink_GBps = {450, "[NV-H100] NVLink 900 GB/s bidirectional = 450 GB/s per direction"};
  h.scaleout_GBps = {50, "[DGX-H100] ConnectX-7 400 Gb/s per GPU"};
  h.gpus_per_node = {8, "[DGX-H100] 8 GPUs per node"};
  h.nvlink_efficiency.source += kTransferred;
  h.scaleout_efficiency.source += kTransferred;
  return h;
}

Hardware h200() {
  Hardware h = h100();
  h.name = "h200";
  h.description = "NVIDIA H200 SXM 141GB, 8 per node (NVSwitch), 1x ConnectX-7 400 Gb/s per GPU (DGX H200)";
  h.peak_bf16_tflops.source = "[NV-H200] same compute as H100 SXM: dense BF16";
  h.peak_fp8_tflops.source = "[NV-H200] same compute as H100 SXM: dense FP8";
  h.hbm_gb = {141, "[NV-H200] 141 GB HBM3e"};
  h.hbm_GBps = {4800, "[NV-H200] 4.8 TB/s"};
  h.nvlink_GBps.source = "[NV-H200] NVLink 900 GB/s bidirectional = 450 GB/s per direction";
  return h;
}

Hardware a100() {
  Hardware h = h800();
  h.name = "a100";
  h.description = "NVIDIA A100 SXM4 80GB, 8 per node (NVSwitch), 1x ConnectX-6 HDR 200 Gb/s per GPU (DGX A100)";
  h.peak_bf16_tflops = {312, "[NV-A100] SXM4 dense BF16"};
  h.peak_fp8_tflops = {0, "[NV-A100] no FP8 tensor cores: FP8 GEMMs priced at the BF16 rate"};
  h.num_sms = {108, "[NV-A100] 108 SMs"};
  h.hbm_gb = {80, "[NV-A100] 80 GB HBM2e"};
  h.hbm_GBps = {2039, "[NV-A100] SXM4 80GB 2,039 GB/s"};
  h.nvlink_GBps = {300, "[NV-A100] NVLink 600 GB/s bidirectional = 300 GB/s per direction"};
  h.scaleout_GBps = {25, "[NV-A100] DGX A100: ConnectX-6 HDR 200 Gb/s per GPU"};
  h.gpus_per_node = {8, "[NV-A100] DGX A100: 8 GPUs"};
  h.nvlink_efficiency.source += kTransferred;
  h.scaleout_efficiency.source += kTransferred;
  return h;
}

Hardware b200() {
  Hardware h = h800();
  h.name = "b200";
  h.description = "NVIDIA B200 180GB, 8 per node (NVLink 5 switch), 1x ConnectX-7 400 Gb/s per GPU (DGX B200)";
  h.peak_bf16_tflops = {2250, "[NV-B200] dense BF16 per GPU"};
  h.peak_fp8_tflops = {4500, "[NV-B200] dense FP8 per GPU (9 PF with sparsity)"};
  h.num_sms = {148, "[NV-B200] 148 SMs"};
  h.hbm_gb = {180, "[NV-B200] DGX B200 1,440 GB for 8 GPUs"};
  h.hbm_GBps = {8000, "[NV-B200] 8 TB/s per GPU (DGX B200 64 TB/s for 8)"};
  h.nvlink_GBps = {900, "[NV-B200] NVLink 5 1.8 TB/s bidirectional = 900 GB/s per direction"};
  h.scaleout_GBps = {50, "[NV-B200] DGX B200: ConnectX-7 400 Gb/s per GPU"};
  h.gpus_per_node = {8, "[NV-B200] 8 GPUs per DGX/HGX B200"};
  h.nvlink_efficiency.source += kTransferred;
  h.scaleout_efficiency.source += kTransferred;
  return h;
}

Hardware cpu_local() {
  Hardware h;
  h.name = "cpu-local";
  h.description = "this machine: 2 AMD EPYC cores (KVM), 23 GB RAM, MPI ranks over shared memory";
  h.peak_bf16_tflops = {0.115, "[bench_gemm] fp32 sgemm at v3-small's expert shape 4096x128x256, real time: "
                              "230 GFLOP/s on the 2 cores of the idle machine (median of 3), so 115 per "
                               "rank with one rank per core (gpus_per_node 2); the CPU backend's bf16 mode "
                               "rounds inputs and runs sgemm, so the same rate"};
  h.peak_fp8_tflops = {0, "the CPU backend emulates FP8: priced at the sgemm rate"};
  h.num_sms = {2, "cores (lscpu)"};
  h.hbm_gb = {23, "RAM (free -g)"};
  h.hbm_GBps = {20, "ASSUMED: no moelab memory-bandwidth benchmark yet; DDR5 share of 2 vCPUs"};
  h.nvlink_GBps = {5, "ASSUMED: MPI shared-memory copy rate between ranks on one host; no moelab benchmark yet"};
  h.scaleout_GBps = {5, "ASSUMED: one host, ranks talk over shared memory"};
  h.gpus_per_node = {2, "cores: one MPI rank per core"};
  h.nvlink_latency_us = {1, "ASSUMED: shared-memory MPI latency order"};
  h.scaleout_latency_us = {1, "ASSUMED: shared-memory MPI latency order"};
  h.nvlink_efficiency = {1.0, "ASSUMED: the link rate is already an achieved rate"};
  h.scaleout_efficiency = {1.0, "ASSUMED: the link rate is already an achieved rate"};
  return h;
}

using Maker = Hardware (*)();
const std::vector<std::pair<std::string, Maker>>& catalog() {
  static const std::vector<std::pair<std::string, Maker>> table = {
      {"h800", h800}, {"h100", h100}, {"h200", h200}, {"a100", a100}, {"b200", b200}, {"cpu-local", cpu_local}};
  return table;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::vector<std::tuple<std::string, double, std::string>> Hardware::figures() const {
  auto* self = const_cast<Hardware*>(this);
  std::vector<std::tuple<std::string, double, std::string>> out;
  for (const char* key : {"peak_bf16_tflops", "peak_fp8_tflops", "num_sms", "hbm_gb", "hbm_GBps", "nvlink_GBps",
                          "scaleout_GBps", "gpus_per_node", "nvlink_latency_us", "scaleout_latency_us",
                          "nvlink_efficiency", "scaleout_efficiency"}) {
    const Figure* f = self->figure(key);
    out.emplace_back(key, f->value, f->source);
  }
  return out;
}

Figure* Hardware::figure(const std::string& key) {
  if (key == "peak_bf16_tflops") return &peak_bf16_tflops;
  if (key == "peak_fp8_tflops") return &peak_fp8_tflops;
  if (key == "num_sms") return &num_sms;
  if (key == "hbm_gb") return &hbm_gb;
  if (key == "hbm_GBps") return &hbm_GBps;
  if (key == "nvlink_GBps") return &nvlink_GBps;
  if (key == "scaleout_GBps") return &scaleout_GBps;
  if (key == "gpus_per_node") return &gpus_per_node;
  if (key == "nvlink_latency_us") return &nvlink_latency_us;
  if (key == "scaleout_latency_us") return &scaleout_latency_us;
  if (key == "nvlink_efficiency") return &nvlink_efficiency;
  if (key == "scaleout_efficiency") return &scaleout_efficiency;
  return nullptr;
}

std::vector<std::string> hardware_names() {
  std::vector<std::string> names;
  for (const auto& [name, make] : catalog()) names.push_back(name);
  return names;
}

bool is_hardware_name(const std::string& name) {
  for (const auto& [n, make] : catalog())
    if (n == name) return true;
  return false;
}

Hardware hardware_entry(const std::string& name) {
  for (const auto& [n, make] : catalog())
    if (n == name) return make();
  std::string known;
  for (const auto& n : hardware_names()) known += (known.empty() ? "" : ", ") + n;
  MOE_CHECK(false) << "unknown hardware '" << name << "' (catalog: " << known << "; or a path to an INI file)";
  return {};
}

Hardware hardware_from_ini_text(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  std::string line;
  Hardware h;
  bool have_base = false;
  int line_no = 0;
  std::vector<std::pair<std::string, std::string>> pairs;
  while (std::getline(in, line)) {
    ++line_no;
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    const auto eq = line.find('=');
    MOE_CHECK(eq != std::string::npos) << source << ":" << line_no << ": expected 'key = value', got '" << line << "'";
    const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (key == "base") {
      h = hardware_entry(value);
      have_base = true;
    } else {
      pairs.emplace_back(key, value);
    }
  }
  MOE_CHECK(have_base) << source << ": missing 'base = NAME' (one of the catalog entries)";
  h.name = source;
  // Values first, then sources, so `key.source` wins over "overridden in" in any order.
  std::stable_partition(pairs.begin(), pairs.end(), [](const auto& p) {
    return !(p.first.size() > 7 && p.first.substr(p.first.size() - 7) == ".source");
  });
  for (const auto& [key, value] : pairs) {
    if (key == "name") {
      h.name = value;
      continue;
    }
    if (key == "description") {
      h.description = value;
      continue;
    }
    const bool is_source = key.size() > 7 && key.substr(key.size() - 7) == ".source";
    const std::string fkey = is_source ? key.substr(0, key.size() - 7) : key;
    Figure* f = h.figure(fkey);
    MOE_CHECK(f) << source << ": unknown key '" << key << "'";
    if (is_source) {
      f->source = value;
    } else {
      size_t used = 0;
      double v = 0;
      try {
        v = std::stod(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      MOE_CHECK(used == value.size() && used > 0 && v >= 0)
          << source << ": key '" << key << "': expected a non-negative number, got '" << value << "'";
      f->value = v;
      f->source = "overridden in " + source;
    }
  }
  return h;
}

Hardware load_hardware(const std::string& name_or_path) {
  if (is_hardware_name(name_or_path)) return hardware_entry(name_or_path);
  std::ifstream in(name_or_path);
  if (!in.good()) return hardware_entry(name_or_path);  // names the catalog in its error
  std::stringstream ss;
  ss << in.rdbuf();
  return hardware_from_ini_text(ss.str(), name_or_path);
}

}  // namespace moelab::sim
