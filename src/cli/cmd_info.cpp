// moelab info: what a DeepSeek-V3-shaped model costs before it runs —
// parameters per component (total and activated per token), weight memory in
// BF16 and in the FP8 release format, and the MLA KV cache per token.
#include <cstdio>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"

namespace moelab {

namespace {

std::string billions(double n) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%10.3f B", n / 1e9);
  return buffer;
}

std::string row(const std::string& label, const std::string& a, const std::string& b) {
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "  %-26s %14s %16s\n", label.c_str(), a.c_str(), b.c_str());
  return buffer;
}

void print_info(std::ostream& out, const ModelConfig& c, const ParamCounts& pc) {
  out << "model: " << c.name << "\n"
      << "  hidden " << c.hidden_size << ", " << c.num_hidden_layers << " layers (" << c.num_dense_layers()
      << " dense + " << c.num_moe_layers() << " MoE), " << c.num_attention_heads << " heads, MLA q_lora_rank "
      << (c.q_lora_rank ? std::to_string(*c.q_lora_rank) : std::string("none")) << " kv_lora_rank "
      << c.kv_lora_rank << "\n  experts: " << c.n_routed_experts << " routed + " << c.n_shared_experts
      << " shared, top-" << c.num_experts_per_tok << ", " << c.n_group << " groups / top-" << c.topk_group
      << ", " << c.scoring_func << " gate (" << c.topk_method << "), MTP depth " << c.num_nextn_predict_layers
      << "\n\n";
  out << row("component", "total params", "activated/token");
  for (size_t i = 0; i < pc.total.size(); ++i) {
    const Component comp = pc.total[i].first;
    if (comp == Component::mtp) continue;
    out << row(component_name(comp), billions(pc.total[i].second), billions(pc.activated[i].second));
  }
  out << row("total (main model)", billions(pc.total_params), billions(pc.activated_params));
  out << row("  without embedding", "", billions(pc.activated_no_embedding));
  out << row("MTP modules (unique)", billions(pc.mtp_unique_params), "");
  char buffer[256];
  std::snprintf(buffer, sizeof buffer,
                "\nweight memory (main model): BF16 %.2f GB; FP8 E4M3 with 128x128 block scales %.2f GB "
                "(%.1f%% of parameters in FP8)\n",
                pc.bytes_bf16 / 1e9, pc.bytes_fp8 / 1e9, 100.0 * pc.fp8_quantized_params / pc.total_params);
  out << buffer;
  std::snprintf(buffer, sizeof buffer, "MLA KV cache: %lld elements per token = %lld bytes in BF16 (all layers)\n",
                static_cast<long long>(pc.kv_cache_elems_per_token),
                static_cast<long long>(2 * pc.kv_cache_elems_per_token));
  out << buffer;
}

void write_info(ResultsRun& run, const ParamCounts& pc) {
  h5::Group params = run.group().group("params");
  for (size_t i = 0; i < pc.total.size(); ++i) {
    const std::string name = component_name(pc.total[i].first);
    params.set_attr("total_" + name, pc.total[i].second);
    params.set_attr("activated_" + name, pc.activated[i].second);
  }
  params.set_attr("total", pc.total_params);
  params.set_attr("activated", pc.activated_params);
  params.set_attr("activated_without_embedding", pc.activated_no_embedding);
  params.set_attr("mtp_unique", pc.mtp_unique_params);
  params.set_attr("weight_bytes_bf16", pc.bytes_bf16);
  params.set_attr("weight_bytes_fp8", pc.bytes_fp8);
  params.set_attr("kv_cache_elems_per_token", pc.kv_cache_elems_per_token);
}

}  // namespace

int cmd_info(const std::vector<std::string>& args, const CommandContext& ctx) {
  std::string presets;
  for (const auto& n : model_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  CommandOptions opts("info", "[--model PRESET|config.json] [--out FILE.h5]",
                      "Parameter counts per component (total and activated per token), weight memory in BF16\n"
                      "and FP8 (E4M3 + 128x128 block scales, as the DeepSeek-V3 release), and the MLA KV cache.");
  opts.add()("model", po::value<std::string>()->default_value("deepseek-v3"),
             ("model preset (" + presets + ") or a Hugging Face config.json").c_str())  //
      ("out", po::value<std::string>(), "also write the figures to this HDF5 results file (run 'info')")  //
      ("force", po::bool_switch(), "overwrite --out if it exists");
  if (!opts.parse(args, ctx)) return 0;

  const ModelConfig config = load_model_config(opts.get<std::string>("model"));
  const ParamCounts pc = count_params(config);
  print_info(ctx.print(), config, pc);
  if (opts.has("out") && ctx.is_root()) {
    auto results = ResultsFile::create(opts.get<std::string>("out"), opts.get<bool>("force"), ctx.command_line,
                                       ctx.world_size);
    ConfigPairs config_attrs = opts.resolved();
    ResultsRun run = results->new_run("info", config_attrs);
    run.group().set_attr("model_config_json", model_config_to_json(config));
    write_info(run, pc);
    run.complete();
    ctx.print() << "\nwrote " << results->path() << "\n";
  }
  return 0;
}

}  // namespace moelab
