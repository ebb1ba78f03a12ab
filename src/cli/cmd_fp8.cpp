// moelab fp8 {quantize, gemm, errcurve}: FP8 numerics from the command line
// (DeepSeek-V3 §3.3; shared/reference/fp8-accumulation.md). The arithmetic is
// in src/numerics; this file reads and writes HDF5 and prints tables.
//   quantize  IN.h5 dataset -> codes, scales and TE-style statistics
//   gemm      IN.h5 a [M,K], w [N,K] -> emulated c and exact c_exact with error figures
//   errcurve  error against K for accumulator widths and promotion intervals
// Results: /runs/<quantize|gemm|errcurve>/fp8/... (results/README.md, "fp8").
#include <cstdio>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "core/error.hpp"
#include "numerics/errcurve.hpp"
#include "numerics/fp8_gemm.hpp"
#include "backend/device.hpp"
#ifdef MOELAB_HAVE_CUDA
#include "backend/cuda/fp8_gemm.hpp"
#endif
#include "numerics/quantize.hpp"

namespace moelab {

namespace {

using namespace numerics;

std::vector<std::string> split_list(const std::string& text, const std::string& option) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    MOE_CHECK(!item.empty()) << "--" << option << " '" << text << "': empty item in the comma-separated list";
    items.push_back(item);
  }
  MOE_CHECK(!items.empty()) << "--" << option << ": expected a comma-separated list";
  return items;
}

int64_t parse_int(const std::string& text, const std::string& option) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MOE_CHECK(used == text.size() && used > 0) << "--" << option << " '" << text << "': expected an integer";
  return value;
}

// A 2-D view [rows, cols] of a dataset of any rank >= 1 (leading axes folded).
Tensor<float> read_matrix(const std::string& path, const std::string& name, int64_t& rows, int64_t& cols) {
  h5::File file = h5::File::open_read(path);
  MOE_CHECK(file.has(name)) << path << ": no dataset '" << name << "'";
  Tensor<float> t = file.read<float>(name);
  MOE_CHECK(t.rank() >= 1) << path << ":" << name << ": expected an array, got a scalar";
  cols = t.dim(-1);
  rows = cols ? t.numel() / cols : 0;
  return t;
}

std::shared_ptr<ResultsFile> create_results(const CommandOptions& opts, const CommandContext& ctx) {
  return ResultsFile::create(opts.get<std::string>("out"), opts.get<bool>("force"), ctx.command_line,
                             ctx.world_size);
}

// ---- quantize --------------------------------------------------------------

void set_stats_attrs(h5::Group& g, const QuantStats& s) {
  g.set_attr("numel", s.numel);
  g.set_attr("underflow_count", s.underflow_count);
  g.set_attr("underflow_pct", s.underflow_pct);
  g.set_attr("saturated_count", s.saturated_count);
  g.set_attr("saturated_pct", s.saturated_pct);
  g.set_attr("amax", s.amax);
  g.set_attr("scale_min", s.scale_min);
  g.set_attr("scale_max", s.scale_max);
  g.set_attr("mse", s.mse);
  g.set_attr("rel_rms_error", s.rel_rms_error);
}

int fp8_quantize_cmd(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts("fp8 quantize",
                      "--input IN.h5 --dataset NAME [--format e4m3|e5m2] [--granularity G] [--ue8m0] --out OUT.h5",
                      "Quantize one float dataset to FP8 with fine-grained scales (DeepSeek-V3 §3.3.2):\n"
                      "scale = fp32(max(amax, 1e-4) / max_finite) per tile, code = fp8(fp32(x / scale)), RNE,\n"
                      "satfinite. The last axis is the channel axis K; leading axes are folded into rows.\n"
                      "Writes /runs/quantize/fp8/codes (uint8, the input's shape), fp8/scales (float32:\n"
                      "[1,1] tensor, [rows, ceil(K/128)] 1x128, [ceil(rows/128), K] 128x1,\n"
                      "[ceil(rows/128), ceil(K/128)] 128x128; absent for none) and the statistics as\n"
                      "attributes of fp8/ (underflow_pct, saturated_pct, scale_min/max, mse, rel_rms_error).");
  opts.add()("input", po::value<std::string>()->value_name("IN.h5"), "HDF5 file holding the tensor")  //
      ("dataset", po::value<std::string>()->value_name("NAME"), "dataset to quantize (any float type, rank >= 1)")  //
      ("format", po::value<std::string>()->default_value("e4m3"), "FP8 format: e4m3 (max 448) or e5m2 (max 57344)")  //
      ("granularity", po::value<std::string>()->default_value("1x128"),
       "none (no scale), tensor, 1x128 (per row per 128 channels; Transformer Engine Float8BlockScaling 1D), "
       "128x1 (backward tiles), 128x128 (weights; TE 2D blocks)")  //
      ("ue8m0", po::bool_switch(), "power-of-two scales 2^ceil(log2 s) (UE8M0, as DeepSeek-V3.1's scale_fmt)")  //
      ("out", po::value<std::string>()->value_name("OUT.h5"), "results file to write")  //
      ("force", po::bool_switch(), "overwrite --out if it exists");
  if (!opts.parse(args, ctx)) return 0;
  MOE_CHECK(opts.has("input") && opts.has("dataset") && opts.has("out"))
      << "moelab fp8 quantize: --input, --dataset and --out are required (see --help)";
  const QuantizeOptions qopts{parse_fp8_kind(opts.get<std::string>("format")),
                              parse_granularity(opts.get<std::string>("granularity")), opts.get<bool>("ue8m0")};
  int64_t rows = 0, cols = 0;
  const Tensor<float> x = read_matrix(opts.get<std::string>("input"), opts.get<std::string>("dataset"), rows, cols);
  const QuantizedTensor q = quantize(x.ptr(), rows, cols, qopts);
  const QuantStats stats = quant_stats(x.ptr(), q);

  char line[256];
  std::snprintf(line, sizeof line,
                "%s %s -> %s %s%s: underflow %.4f%%  saturated %.4f%%  scale [%.4g, %.4g]  mse %.4g  rel_rms %.4g\n",
                opts.get<std::string>("dataset").c_str(), shape_str(x.shape).c_str(), fp8_name(q.format).c_str(),
                granularity_name(q.granularity).c_str(), q.ue8m0 ? " ue8m0" : "", stats.underflow_pct,
                stats.saturated_pct, stats.scale_min, stats.scale_max, stats.mse, stats.rel_rms_error);
  ctx.print() << line;
  if (!ctx.is_root()) return 0;
  auto results = create_results(opts, ctx);
  ResultsRun run = results->new_run("quantize", opts.resolved());
  h5::Group g = run.group().group("fp8");
  g.write<uint8_t>("codes", x.shape, q.codes.data());
  if (!q.scales.empty()) g.write<float>("scales", {q.scale_rows, q.scale_cols}, q.scales.data());
  g.set_attr("format", fp8_name(q.format));
  g.set_attr("granularity", granularity_name(q.granularity));
  g.set_attr("ue8m0", static_cast<int64_t>(q.ue8m0));
  set_stats_attrs(g, stats);
  run.complete();
  ctx.print() << "wrote " << results->path() << "\n";
  return 0;
}

// ---- gemm ------------------------------------------------------------------

int fp8_gemm_cmd(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts("fp8 gemm", "--input IN.h5 --out OUT.h5 [--acc-bits 13] [--promote 128] [--quant block|tensor]",
                      "Emulated FP8 GEMM c = a · wᵀ with Hopper's tensor-core accumulation (MMA steps of 32\n"
                      "products aligned to the largest exponent, truncated to acc-bits fraction bits) and\n"
                      "promotion to FP32 every --promote K elements (DeepSeek-V3 §3.3.2, §3.5.2).\n"
                      "IN.h5 holds a [M,K] and w [N,K] (float). a is quantized E4M3 per 1x128 tile, w per\n"
                      "128x128 block (--quant block) or both per tensor (--quant tensor).\n"
                      "Writes /runs/gemm/fp8/c [M,N] float32 (emulated), fp8/c_exact [M,N] float64 (the\n"
                      "product of the same dequantized inputs in float64) and the error figures normwise,\n"
                      "max_err_over_rms, mean_rel, max_rel as attributes of fp8/.");
  opts.add()("input", po::value<std::string>()->value_name("IN.h5"), "HDF5 file with datasets a [M,K] and w [N,K]")  //
      ("out", po::value<std::string>()->value_name("OUT.h5"), "results file to write")  //
      ("acc-bits", po::value<std::string>()->default_value("13"),
       "tensor-core accumulator fraction bits 1..23 (H800/H100 FP8 wgmma: 13, i.e. 14 significant bits), or fp32 "
       "for an FP32 accumulator (block-wise BLAS)")  //
      ("promote", po::value<int>()->default_value(128),
       "N_C: K elements between promotions to FP32, a multiple of 32; 0 = never (needs --quant tensor). "
       "CUTLASS calls 4 wgmmas (= 128) mma_promotion_interval; Triton max_num_imprecise_acc")  //
      ("quant", po::value<std::string>()->default_value("block"), "block (a 1x128, w 128x128) or tensor")  //
      ("device", po::value<std::string>()->default_value("cpu"),
       "cpu (vectorised emulation) or cuda (the same emulation as a CUDA kernel, bit-identical; needs a GPU)")  //
      ("force", po::bool_switch(), "overwrite --out if it exists");
  if (!opts.parse(args, ctx)) return 0;
  MOE_CHECK(opts.has("input") && opts.has("out")) << "moelab fp8 gemm: --input and --out are required (see --help)";
  const Device device = parse_device(opts.get<std::string>("device"));
  require_device(device);
  const Fp8GemmOptions gopts{parse_acc_bits(opts.get<std::string>("acc-bits")), opts.get<int>("promote")};
  const GemmQuant quant = parse_gemm_quant(opts.get<std::string>("quant"));
  const std::string input = opts.get<std::string>("input");
  int64_t m = 0, k = 0, n = 0, kw = 0;
  const Tensor<float> a = read_matrix(input, "a", m, k);
  const Tensor<float> w = read_matrix(input, "w", n, kw);
  MOE_CHECK(a.rank() == 2 && w.rank() == 2) << input << ": a and w must be 2-D, got a " << shape_str(a.shape)
                                            << " and w " << shape_str(w.shape);
  MOE_CHECK(k == kw) << input << ": a " << shape_str(a.shape) << " and w " << shape_str(w.shape)
                     << " must share K (a [M,K], w [N,K])";
  const QuantizedTensor qa = quantize_gemm_a(a.ptr(), m, k, quant);
  const QuantizedTensor qw = quantize_gemm_w(w.ptr(), n, k, quant);
#ifdef MOELAB_HAVE_CUDA
  const std::vector<float> c = device == Device::cuda ? cuda_backend::fp8_gemm(qa, qw, gopts) : fp8_gemm(qa, qw, gopts);
#else
  const std::vector<float> c = fp8_gemm(qa, qw, gopts);
#endif
  const std::vector<double> c_exact = fp8_gemm_exact(qa, qw);
  const GemmErrors e = gemm_errors(c.data(), c_exact.data(), m * n);

  char line[256];
  std::snprintf(line, sizeof line,
                "c [%lld, %lld] = a · wᵀ, K %lld, acc_bits %s, promote %d, quant %s: normwise %.4e  max/rms %.4e  "
                "mean_rel %.4e  max_rel %.4e\n",
                static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k),
                acc_bits_name(gopts.acc_bits).c_str(), gopts.promote, gemm_quant_name(quant).c_str(), e.normwise,
                e.max_err_over_rms, e.mean_rel, e.max_rel);
  ctx.print() << line;
  if (!ctx.is_root()) return 0;
  auto results = create_results(opts, ctx);
  ResultsRun run = results->new_run("gemm", opts.resolved());
  h5::Group g = run.group().group("fp8");
  g.write<float>("c", {m, n}, c.data());
  g.write<double>("c_exact", {m, n}, c_exact.data());
  g.set_attr("normwise", e.normwise);
  g.set_attr("max_err_over_rms", e.max_err_over_rms);
  g.set_attr("mean_rel", e.mean_rel);
  g.set_attr("max_rel", e.max_rel);
  run.complete();
  ctx.print() << "wrote " << results->path() << "\n";
  return 0;
}

// ---- errcurve --------------------------------------------------------------

int fp8_errcurve_cmd(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts("fp8 errcurve",
                      "[--k 256,1024,4096,16384] [--acc-bits 13,14,fp32] [--promote 0,128] [--dist normal|uniform01] "
                      "[--trials T] [--out OUT.h5]",
                      "Error of the emulated FP8 GEMM against the exact product of the same dequantized inputs,\n"
                      "as a function of K, for every (acc-bits, promote) pair: the experiment of DeepSeek-V3\n"
                      "§3.3.2 (K = 4096, 13 fraction bits, no promotion: ~2% maximum error; promotion every\n"
                      "128 fixes it). Per K and trial, a [M,K] and w [N,K] are drawn from --dist, quantized to\n"
                      "E4M3 (--quant) and multiplied under each setting. Columns: normwise ||c-c*||/||c*||,\n"
                      "max|c-c*|/rms(c*), mean and max elementwise |c-c*|/|c*|, averaged over trials.\n"
                      "--out writes /runs/errcurve/fp8/errcurve/<column> datasets, one row per setting;\n"
                      "scripts/plot.py OUT.h5 draws error against K (scripts/plots/fp8.py).");
  opts.add()("k", po::value<std::string>()->default_value("256,1024,4096,16384"), "inner dimensions K, comma-separated")  //
      ("acc-bits", po::value<std::string>()->default_value("13,14,fp32"),
       "accumulator fraction bits (1..23; 13 is the H800/H100 FP8 tensor core) or fp32, comma-separated")  //
      ("promote", po::value<std::string>()->default_value("0,128"),
       "promotion intervals N_C (multiples of 32; 0 = never), comma-separated")  //
      ("dist", po::value<std::string>()->default_value("normal"),
       "input distribution: normal (N(0,1), zero-mean: random truncation errors) or uniform01 (U[0,1), same "
       "sign: systematic truncation toward zero)")  //
      ("quant", po::value<std::string>()->default_value("tensor"),
       "tensor (per-tensor scales; allows promote 0) or block (a 1x128, w 128x128; promote must divide 128)")  //
      ("trials", po::value<int>()->default_value(4), "random draws per K")  //
      ("m", po::value<int64_t>()->default_value(256), "rows of a (output rows)")  //
      ("n", po::value<int64_t>()->default_value(256), "rows of w (output columns)")  //
      ("seed", po::value<int64_t>()->default_value(0), "random seed")  //
      ("out", po::value<std::string>()->value_name("OUT.h5"), "also write the table to this results file")  //
      ("force", po::bool_switch(), "overwrite --out if it exists");
  if (!opts.parse(args, ctx)) return 0;
  ErrCurveOptions e;
  e.k_values.clear();
  for (const auto& s : split_list(opts.get<std::string>("k"), "k")) e.k_values.push_back(parse_int(s, "k"));
  e.acc_bits.clear();
  for (const auto& s : split_list(opts.get<std::string>("acc-bits"), "acc-bits")) e.acc_bits.push_back(parse_acc_bits(s));
  e.promote.clear();
  for (const auto& s : split_list(opts.get<std::string>("promote"), "promote"))
    e.promote.push_back(static_cast<int>(parse_int(s, "promote")));
  e.dist = parse_input_dist(opts.get<std::string>("dist"));
  e.quant = parse_gemm_quant(opts.get<std::string>("quant"));
  e.trials = opts.get<int>("trials");
  e.m = opts.get<int64_t>("m");
  e.n = opts.get<int64_t>("n");
  e.seed = static_cast<uint64_t>(opts.get<int64_t>("seed"));
  e.validate();
  std::shared_ptr<ResultsFile> results;  // created before the work, so a bad path fails fast
  if (opts.has("out") && ctx.is_root()) results = create_results(opts, ctx);

  const std::vector<ErrCurveRow> rows = fp8_errcurve(e);
  ctx.print() << "# dist " << input_dist_name(e.dist) << ", quant " << gemm_quant_name(e.quant) << ", c [" << e.m
              << ", " << e.n << "], " << e.trials << " trials\n"
              << format_errcurve_table(rows);
  if (!results) return 0;
  ResultsRun run = results->new_run("errcurve", opts.resolved());
  h5::Group g = run.group().group("fp8/errcurve");
  const int64_t count = static_cast<int64_t>(rows.size());
  std::vector<int64_t> k(count), acc_bits(count), promote(count);
  std::vector<double> normwise(count), max_over_rms(count), mean_rel(count), max_rel(count), worst(count);
  for (int64_t i = 0; i < count; ++i) {
    k[i] = rows[i].k;
    acc_bits[i] = rows[i].acc_bits;
    promote[i] = rows[i].promote;
    normwise[i] = rows[i].mean.normwise;
    max_over_rms[i] = rows[i].mean.max_err_over_rms;
    mean_rel[i] = rows[i].mean.mean_rel;
    max_rel[i] = rows[i].mean.max_rel;
    worst[i] = rows[i].max_rel_worst;
  }
  g.write<int64_t>("k", {count}, k.data());
  g.write<int64_t>("acc_bits", {count}, acc_bits.data());
  g.set_attr("acc_bits_fp32", static_cast<int64_t>(kAccFp32));
  g.write<int64_t>("promote", {count}, promote.data());
  g.write<double>("normwise", {count}, normwise.data());
  g.write<double>("max_err_over_rms", {count}, max_over_rms.data());
  g.write<double>("mean_rel", {count}, mean_rel.data());
  g.write<double>("max_rel", {count}, max_rel.data());
  g.write<double>("max_rel_worst", {count}, worst.data());
  g.set_attr("dist", input_dist_name(e.dist));
  run.complete();
  ctx.print() << "wrote " << results->path() << " (plot: scripts/plot.py " << results->path() << ")\n";
  return 0;
}

const char* kFp8Usage =
    "usage: moelab fp8 <quantize|gemm|errcurve> [options]  (moelab fp8 <sub> --help for each)\n\n"
    "  quantize   quantize a dataset to E4M3/E5M2 with tensor, 1x128, 128x1 or 128x128 scales; statistics\n"
    "  gemm       emulated FP8 GEMM with limited-precision accumulation and FP32 promotion; error figures\n"
    "  errcurve   error of the emulated GEMM against K for accumulator widths and promotion intervals\n\n"
    "Each takes --config FILE.ini and --set KEY=VALUE like every moelab command.\n";

}  // namespace

int cmd_fp8(const std::vector<std::string>& args, const CommandContext& ctx) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    ctx.print() << kFp8Usage;
    return 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "quantize") return fp8_quantize_cmd(rest, ctx);
  if (args[0] == "gemm") return fp8_gemm_cmd(rest, ctx);
  if (args[0] == "errcurve") return fp8_errcurve_cmd(rest, ctx);
  MOE_FAIL() << "moelab fp8: unknown subcommand '" << args[0] << "' (expected quantize, gemm or errcurve)";
  return 2;
}

}  // namespace moelab
