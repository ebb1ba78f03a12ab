// moelab init-weights: writes a randomly initialised checkpoint of a model's
// decoder layers under the Hugging Face names, in F32, BF16 or the FP8 layout
// of the DeepSeek-V3 release, plus optionally a random hidden state, so that
// `moelab forward` can be tried (and its file handling tested) without the
// real 671B weights.
//
// Values match ModelParams::init(seed, std): weight ~ N(0, std) from a stream
// seeded by (seed, HF name), RMSNorm weights 1, e_score_correction_bias 0.
#include <filesystem>
#include <map>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/hdf5.hpp"
#include "io/safetensors.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"

namespace moelab {

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ULL;
  return h;
}

Tensor<float> init_value(const WeightSpec& spec, uint64_t seed, double std) {
  Tensor<float> t(spec.shape);
  if (spec.name.ends_with("norm.weight")) {
    std::fill(t.data.begin(), t.data.end(), 1.0f);
  } else if (!spec.name.ends_with("e_score_correction_bias")) {
    Rng rng(seed * 0x9e3779b97f4a7c15ULL ^ fnv1a(spec.name));
    for (auto& v : t.data) v = static_cast<float>(std * rng.normal());
  }
  return t;
}

// As the FP8 release stores it: quantizable linears F8_E4M3 + F32 block
// scales, the bias F32, everything else BF16.
void add_tensor(st::SafetensorsWriter& w, const WeightSpec& spec, const Tensor<float>& value,
                const std::string& dtype) {
  const bool is_bias = spec.name.ends_with("e_score_correction_bias");
  if (dtype == "f32" || is_bias) {
    w.add_f32(spec.name, value);
  } else if (dtype == "bf16" || !spec.fp8_quantized) {
    w.add_bf16(spec.name, value);
  } else {
    w.add_fp8_e4m3(spec.name, value);
  }
}

std::pair<int64_t, int64_t> parse_range(const std::string& text, int64_t num_layers) {
  const size_t dash = text.find('-');
  auto number = [&](const std::string& s) {
    const int64_t v = parse_index(s);
    MOE_CHECK(v >= 0) << "--layers '" << text << "': expected A-B or A";
    return v;
  };
  const int64_t a = number(text.substr(0, dash));
  const int64_t b = dash == std::string::npos ? a : number(text.substr(dash + 1));
  MOE_CHECK(a <= b && b < num_layers) << "--layers '" << text << "': expected a range within 0-" << num_layers - 1;
  return {a, b};
}

}  // namespace

int cmd_init_weights(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts(
      "init-weights", "--model v3-tiny --out tiny.safetensors [--dtype f32|bf16|fp8] [--layers A-B] [--input IN.h5]",
      "Writes a randomly initialised checkpoint of the model's decoder layers under their Hugging Face names\n"
      "(weights ~ N(0, std) seeded by name as ModelParams::init, RMSNorm weights 1, router bias 0).\n"
      "--out FILE.safetensors writes one file; --out DIR/model.safetensors.index.json writes one shard per\n"
      "layer beside the index, as the DeepSeek-V3 release is split. --dtype fp8 stores the linear weights as\n"
      "F8_E4M3 with F32 weight_scale_inv 128x128 block scales, the router bias F32 and the rest BF16.\n"
      "--input also writes a random hidden state [tokens, hidden_size] float32 for moelab forward.");
  opts.add()("model", po::value<std::string>()->default_value("v3-tiny"), "model preset or config.json")  //
      ("out", po::value<std::string>()->value_name("PATH"), "FILE.safetensors, or DIR/model.safetensors.index.json")  //
      ("dtype", po::value<std::string>()->default_value("f32"), "stored dtype: f32, bf16 or fp8")  //
      ("layers", po::value<std::string>()->value_name("A-B"), "decoder layers to write (default: all)")  //
      ("seed", po::value<uint64_t>()->default_value(1), "random seed")  //
      ("std", po::value<double>()->default_value(0.02), "weight standard deviation (HF initializer_range 0.02)")  //
      ("input", po::value<std::string>()->value_name("IN.h5"), "also write hidden [tokens, hidden_size] here")  //
      ("tokens", po::value<int64_t>()->default_value(16), "tokens of the --input hidden state");
  if (!opts.parse(args, ctx)) return 0;
  MOE_CHECK(opts.sweep_points().size() == 1) << "moelab init-weights: --sweep is not supported (one run per call)";
  MOE_CHECK(opts.has("out")) << "moelab init-weights: --out is required (see --help)";
  const ModelConfig config = load_model_config(opts.get<std::string>("model"));
  config.validate();
  const std::string dtype = opts.get<std::string>("dtype");
  MOE_CHECK(dtype == "f32" || dtype == "bf16" || dtype == "fp8") << "--dtype '" << dtype
                                                                 << "': expected f32, bf16 or fp8";
  const uint64_t seed = opts.get<uint64_t>("seed");
  const double std = opts.get<double>("std");
  MOE_CHECK(std >= 0 && std::isfinite(std)) << "--std " << std << ": expected a finite value >= 0";
  int64_t first = 0, last = config.num_hidden_layers - 1;
  if (opts.has("layers")) std::tie(first, last) = parse_range(opts.get<std::string>("layers"), config.num_hidden_layers);

  const std::string out = opts.get<std::string>("out");
  const bool sharded = out.ends_with(".json");
  MOE_CHECK(sharded || out.ends_with(".safetensors"))
      << "--out '" << out << "': expected FILE.safetensors or DIR/model.safetensors.index.json";
  const std::filesystem::path dir = std::filesystem::path(out).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);

  st::SafetensorsWriter single;
  std::map<std::string, std::string> weight_map;
  uint64_t total_bytes = 0;
  int64_t num_params = 0;
  const int64_t num_files = last - first + 1;
  for (int64_t layer = first; layer <= last; ++layer) {
    st::SafetensorsWriter shard;
    st::SafetensorsWriter& w = sharded ? shard : single;
    for (const WeightSpec& spec : layer_weights(config, layer)) {
      add_tensor(w, spec, init_value(spec, seed, std), dtype);
      num_params += shape_numel(spec.shape);
    }
    if (!sharded) continue;
    char name[64];
    std::snprintf(name, sizeof name, "model-%05lld-of-%05lld.safetensors", static_cast<long long>(layer - first + 1),
                  static_cast<long long>(num_files));
    shard.set_metadata("format", "pt");
    shard.write((dir / name).string());
    for (const auto& n : shard.names()) weight_map[n] = name;
    total_bytes += shard.data_bytes();
  }
  if (sharded) {
    st::write_index(out, weight_map, total_bytes);
  } else {
    single.set_metadata("format", "pt");
    single.write(out);
    total_bytes = single.data_bytes();
  }
  ctx.print() << "wrote " << out << ": layers " << first << "-" << last << " of " << config.name << ", "
              << num_params << " parameters, " << total_bytes << " bytes of " << dtype << " data"
              << (sharded ? " in " + std::to_string(num_files) + " shards" : std::string()) << "\n";

  if (opts.has("input")) {
    const int64_t tokens = opts.get<int64_t>("tokens");
    MOE_CHECK(tokens >= 1) << "--tokens " << tokens << ": expected >= 1";
    Tensor<float> hidden({tokens, config.hidden_size});
    Rng rng(seed ^ 0x68696464656eULL);  // "hidden"
    for (auto& v : hidden.data) v = static_cast<float>(rng.normal());
    const std::string in_path = opts.get<std::string>("input");
    h5::File f = h5::File::create(in_path, true);
    f.write("hidden", hidden);
    ctx.print() << "wrote " << in_path << ": hidden " << shape_str(hidden.shape) << " float32\n";
  }
  return 0;
}

}  // namespace moelab
