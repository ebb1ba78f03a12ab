// moelab forward: runs the decoder layers of a safetensors checkpoint on a
// given hidden state, one layer after another, and writes every layer's
// output and routing. The file contract (also in --help):
//
//   IN.h5    hidden                 [T, hidden_size] float32  (one sequence,
//                                   positions 0..T-1, causal attention)
//   OUT.h5   layers/{i}/output      [T, hidden_size] float32  (i = the real layer index)
//            layers/{i}/topk_idx    [T, k] int32   (MoE layers only)
//            layers/{i}/topk_weight [T, k] float32 (MoE layers only)
//            root attributes: moelab_version, command_line, model, weights, layers
//
// Weights are read by their Hugging Face names (model.layers.{i}....) from a
// .safetensors file, a model.safetensors.index.json or a directory, and
// up-cast exactly to float32 (FP8 E4M3 dequantised with its 128x128 block
// scales). Math is FP32 (--precision fp32); tests/reference holds an
// independent NumPy reference and run_layer_case.py checks this command
// against it (relative Frobenius error <= 2e-5, identical expert choices).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <sstream>

#include "backend/device.hpp"
#ifdef MOELAB_HAVE_CUDA
#include "backend/cuda/experts.hpp"
#endif
#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "core/version.hpp"
#include "io/hdf5.hpp"
#include "io/safetensors.hpp"
#include "model/model.hpp"
#include "model/weights.hpp"

namespace moelab {

namespace {

// "3-5", "4" or "3,7-8" -> sorted unique indices.
std::vector<int64_t> parse_layer_range(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  auto number = [&](const std::string& s) {
    const int64_t v = parse_index(s);
    MOE_CHECK(v >= 0) << "--layers '" << text << "': expected layer indices like 3-5 or 3,7 (got '" << s << "')";
    return v;
  };
  while (std::getline(in, item, ',')) {
    const size_t dash = item.find('-');
    const int64_t a = number(item.substr(0, dash));
    const int64_t b = dash == std::string::npos ? a : number(item.substr(dash + 1));
    MOE_CHECK(a <= b) << "--layers '" << text << "': range " << a << "-" << b << " is empty";
    for (int64_t i = a; i <= b; ++i) out.push_back(i);
  }
  MOE_CHECK(!out.empty()) << "--layers '" << text << "': no layer given";
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

GemmPrecision parse_precision(const std::string& name) {
  if (name == "fp32") return GemmPrecision::fp32;
  if (name == "bf16") return GemmPrecision::bf16;
  MOE_FAIL() << "--precision '" << name << "': expected fp32 or bf16";
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  return s;
}

// One decoder layer's weights, read from the checkpoint by HF name.
struct LayerWeights {
  std::deque<Param<float>> params;  // deque: stable addresses for BlockParams
  std::map<std::string, Param<float>*> by_name;
};

void load_layer(LayerWeights& lw, const st::Checkpoint& ckpt, const ModelConfig& config, int64_t layer) {
  for (const WeightSpec& spec : layer_weights(config, layer)) {
    Param<float>& p = lw.params.emplace_back();
    p.name = spec.name;
    p.trainable = false;
    p.value.resize(spec.shape);  // no grad buffer: forward only
    ckpt.read_float_into(spec.name, spec.shape, p.value.ptr());
    for (int64_t i = 0; i < p.value.numel(); ++i)
      MOE_CHECK(std::isfinite(p.value.data[i])) << ckpt.file_of(spec.name) << ": tensor '" << spec.name
                                                << "': non-finite value at flat index " << i;
    lw.by_name[spec.name] = &p;
  }
}

}  // namespace

int cmd_forward(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts(
      "forward", "--model config.json --weights FILE.safetensors|index.json|DIR --input IN.h5 --out OUT.h5 [--layers 3-5]",
      "Runs the decoder layers held by a safetensors checkpoint on a hidden state, in order, each taking the\n"
      "previous one's output, and writes every layer's output and routing.\n"
      "\n"
      "Files:\n"
      "  IN.h5   hidden                 [T, hidden_size] float32: one sequence, positions 0..T-1, causal\n"
      "  OUT.h5  layers/{i}/output      [T, hidden_size] float32, i = the layer's real index\n"
      "          layers/{i}/topk_idx    [T, num_experts_per_tok] int32    (MoE layers only)\n"
      "          layers/{i}/topk_weight [T, num_experts_per_tok] float32  (MoE layers only;\n"
      "                                 unbiased gate scores, normalised, times routed_scaling_factor)\n"
      "          root attributes moelab_version, command_line, model, weights, layers, precision\n"
      "Weights are read under their Hugging Face names (model.layers.{i}.self_attn.q_a_proj.weight, ...,\n"
      "mlp.gate.e_score_correction_bias, mlp.experts.{e}.gate_proj.weight, mlp.shared_experts...) from one\n"
      "file, a model.safetensors.index.json or a directory; F32, BF16 and F8_E4M3 (with weight_scale_inv\n"
      "128x128 block scales) are up-cast exactly to float32 and the math is FP32. The checkpoint may hold\n"
      "any subset of layers; without --layers every decoder layer in it runs (MTP layers excluded).\n"
      "Checked against an independent NumPy reference: tests/reference/run_layer_case.py.");
  opts.add()("model", po::value<std::string>()->value_name("config.json"),
             "model: a Hugging Face config.json (or a preset name)")  //
      ("weights", po::value<std::string>()->value_name("PATH"),
       "checkpoint: FILE.safetensors, model.safetensors.index.json, or a directory")  //
      ("input", po::value<std::string>()->value_name("IN.h5"), "HDF5 file with dataset hidden [T, hidden_size]")  //
      ("out", po::value<std::string>()->value_name("OUT.h5"), "HDF5 file to write (see Files above)")  //
      ("layers", po::value<std::string>()->value_name("A-B"),
       "layers to run, e.g. 3-5 or 3,7 (default: every decoder layer in the checkpoint)")  //
      ("precision", po::value<std::string>()->default_value("fp32"),
       "GEMM precision: fp32 (the file contract) or bf16 (inputs rounded to bf16, FP32 accumulation)")  //
      ("force", po::bool_switch()->default_value(false), "overwrite OUT.h5 if it exists")  //
      ("device", po::value<std::string>()->default_value("cpu"),
       "cpu, or cuda: the routed experts (permute, gate/up/down GEMMs through cuBLAS, SwiGLU, weighted "
       "unpermute) run on the GPU; attention, router, norms and shared experts stay on the CPU. Needs a GPU "
       "(exit 2 without one)");
  if (!opts.parse(args, ctx)) return 0;
  const Device device = parse_device(opts.get<std::string>("device"));
  require_device(device);
  MOE_CHECK(opts.sweep_points().size() == 1) << "moelab forward: --sweep is not supported (one run per call)";
  for (const char* key : {"model", "weights", "input", "out"})
    MOE_CHECK(opts.has(key)) << "moelab forward: --" << key << " is required (see --help)";

  const ModelConfig config = load_model_config(opts.get<std::string>("model"));
  config.validate();
  const std::string weights_path = opts.get<std::string>("weights");
  st::Checkpoint ckpt = st::Checkpoint::open(weights_path);
  if (config.quantization_config.weight_block_size.size() == 2) {
    ckpt.fp8_block_rows = config.quantization_config.weight_block_size[0];
    ckpt.fp8_block_cols = config.quantization_config.weight_block_size[1];
  }
  ModelContext<float> model_ctx;
  model_ctx.precision = parse_precision(opts.get<std::string>("precision"));
#ifdef MOELAB_HAVE_CUDA
  if (device == Device::cuda) model_ctx.make_experts = cuda::cuda_experts_factory();
#endif

  // Which layers: those asked for, each of which must be in the checkpoint.
  std::vector<int64_t> present;
  for (int64_t i : ckpt.layer_indices())
    if (i < config.num_hidden_layers) present.push_back(i);
  std::vector<int64_t> layers = present;
  if (opts.has("layers")) {
    layers = parse_layer_range(opts.get<std::string>("layers"));
    for (int64_t i : layers) {
      MOE_CHECK(i < config.num_hidden_layers) << "--layers: layer " << i << " is beyond the model's "
                                              << config.num_hidden_layers << " decoder layers";
      MOE_CHECK(std::binary_search(present.begin(), present.end(), i))
          << weights_path << ": layer " << i << " is not in the checkpoint (it holds layers "
          << (present.empty() ? std::string("none") : join(present)) << ")";
    }
  }
  MOE_CHECK(!layers.empty()) << weights_path << ": the checkpoint holds no decoder layer (no model.layers.{i}. "
                             << "tensor with i < " << config.num_hidden_layers << ")";

  // The input hidden state.
  const std::string input_path = opts.get<std::string>("input");
  Tensor<float> x;
  {
    h5::File in = h5::File::open_read(input_path);
    MOE_CHECK(in.has("hidden")) << input_path << ": no dataset 'hidden' (expected [T, " << config.hidden_size
                                << "] float32)";
    x = in.read<float>("hidden");
  }
  MOE_CHECK(x.rank() == 2 && x.dim(1) == config.hidden_size && x.dim(0) > 0)
      << input_path << ":hidden: shape " << shape_str(x.shape) << ", expected [T, " << config.hidden_size
      << "] with T >= 1";
  for (int64_t i = 0; i < x.numel(); ++i)
    MOE_CHECK(std::isfinite(x.data[i])) << input_path << ":hidden: non-finite value at token " << i / x.dim(1)
                                        << ", channel " << i % x.dim(1);
  const int64_t num_tokens = x.dim(0);
  const SeqShape shape{1, num_tokens};
  const MlaRope<float> rope = make_mla_rope<float>(config, num_tokens);

  // Written to OUT.h5.tmp and renamed at the end: a failed run leaves no
  // file that looks complete.
  const std::string out_path = opts.get<std::string>("out");
  MOE_CHECK(opts.get<bool>("force") || !std::filesystem::exists(out_path))
      << out_path << ": exists (use --force to overwrite)";
  const std::string tmp_path = out_path + ".tmp";
  {
    h5::File out = h5::File::create(tmp_path, true);
    out.set_attr("moelab_version", std::string(kMoelabVersion));
    out.set_attr("git_commit", std::string(kMoelabGitCommit));
    out.set_attr("command_line", ctx.command_line);
    out.set_attr("device", device_name(device));
    out.set_attr("model", opts.get<std::string>("model"));
    out.set_attr("weights", weights_path);
    out.set_attr("layers", layers);
    out.set_attr("precision", opts.get<std::string>("precision"));

    ctx.print() << "moelab forward: " << num_tokens << " tokens through layers " << join(layers) << " of "
                << weights_path << "\n";
    Tensor<float> y;
    for (int64_t layer : layers) {
      Timer timer;
      LayerWeights lw;
      load_layer(lw, ckpt, config, layer);
      const double load_s = timer.seconds();
      const BlockParams<float> bp = bind_block_params<float>(config, layer, [&](const std::string& name) {
        auto it = lw.by_name.find(name);
        return it == lw.by_name.end() ? nullptr : it->second;
      });
      BlockSaved<float> saved;
      block_forward(y, saved, bp, x, config, shape, rope, model_ctx);
      h5::Group g = out.group("layers/" + std::to_string(layer));
      g.write("output", y);
      if (bp.is_moe) {
        g.write("topk_idx", saved.moe.router.topk_idx);
        g.write("topk_weight", saved.moe.router.topk_weight);
      }
      char line[160];
      std::snprintf(line, sizeof line, "  layer %lld (%s): weights read in %.3f s, forward %.3f s\n",
                    static_cast<long long>(layer), bp.is_moe ? "MoE" : "dense", load_s, timer.seconds() - load_s);
      ctx.print() << line;
      std::swap(x, y);
    }
    out.flush();
  }
  std::error_code ec;
  std::filesystem::rename(tmp_path, out_path, ec);
  MOE_CHECK(!ec) << out_path << ": cannot rename " << tmp_path << ": " << ec.message();
  ctx.print() << "wrote " << out_path << "\n";
  return 0;
}

}  // namespace moelab
