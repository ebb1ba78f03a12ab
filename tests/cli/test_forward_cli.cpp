// moelab forward as a user meets it: --help documents the file contract, the
// output holds what the contract says, and bad input (missing or truncated
// checkpoint, a tensor of the wrong shape, a missing tensor, a bad input
// file, a layer not in the checkpoint) is one line naming the file and
// tensor, exit status 2, and no output file. The numbers themselves are
// checked against the NumPy reference by the forward_<case> tests.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli/run_command.hpp"
#include "io/hdf5.hpp"
#include "io/safetensors.hpp"

namespace fs = std::filesystem;
using namespace moelab;

namespace {

const std::string kCases = std::string(MOELAB_TEST_FIXTURES) + "/layer_cases/";

fs::path temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("moelab_forward_cli_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::string forward_args(const std::string& config, const std::string& weights, const std::string& input,
                         const std::string& out) {
  return "forward --model " + config + " --weights " + weights + " --input " + input + " --out " + out;
}

void expect_one_line_error(const CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

}  // namespace

TEST(ForwardCli, HelpDocumentsTheFileContract) {
  const CommandResult r = run_command("forward --help");
  EXPECT_EQ(r.status, 0);
  for (const char* s : {"hidden", "[T, hidden_size] float32", "layers/{i}/output", "layers/{i}/topk_idx",
                        "layers/{i}/topk_weight", "int32", "--layers", "model.safetensors.index.json", "F8_E4M3"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

TEST(ForwardCli, WritesTheContractAndRunsALayerSubset) {
  const fs::path dir = temp_dir();
  const std::string out = (dir / "sub.h5").string();
  fs::remove(out);
  const CommandResult r = run_command(forward_args(kCases + "bf16/config.json", kCases + "bf16/model.safetensors",
                                                   kCases + "bf16/input.h5", out) +
                                      " --layers 4");
  ASSERT_EQ(r.status, 0) << r.err;
  h5::File f = h5::File::open_read(out);
  EXPECT_FALSE(f.has("layers/3"));
  EXPECT_EQ(f.dataset_shape("layers/4/output"), (Shape{12, 32}));
  EXPECT_EQ(f.dataset_type_name("layers/4/output"), "float32");
  EXPECT_EQ(f.dataset_shape("layers/4/topk_idx"), (Shape{12, 3}));
  EXPECT_EQ(f.dataset_type_name("layers/4/topk_idx"), "int32");
  EXPECT_EQ(f.dataset_type_name("layers/4/topk_weight"), "float32");
  // Refuses to overwrite without --force.
  const CommandResult again = run_command(forward_args(kCases + "bf16/config.json", kCases + "bf16/model.safetensors",
                                                       kCases + "bf16/input.h5", out));
  expect_one_line_error(again, "exists (use --force");
  fs::remove_all(dir);
}

TEST(ForwardCli, BadInputIsOneLineNamingFileAndTensor) {
  const fs::path dir = temp_dir();
  const std::string out = (dir / "out.h5").string();
  const std::string cfg = kCases + "f32/config.json", w = kCases + "f32/model.safetensors",
                    in = kCases + "f32/input.h5";

  // A checkpoint missing one tensor (the layer-4 expert 5 up_proj).
  const std::string holey = (dir / "holey.safetensors").string();
  {
    const st::Checkpoint c = st::Checkpoint::open(w);
    st::SafetensorsWriter writer;
    for (const auto& name : c.names()) {
      if (name == "model.layers.4.mlp.experts.5.up_proj.weight") continue;
      const auto raw = c.raw(name);
      writer.add(name, c.info(name).dtype, c.info(name).shape, std::vector<uint8_t>(raw.begin(), raw.end()));
    }
    writer.write(holey);
  }
  expect_one_line_error(run_command(forward_args(cfg, holey, in, out)),
                        "tensor 'model.layers.4.mlp.experts.5.up_proj.weight' missing from the checkpoint");

  // A truncated checkpoint file.
  const std::string cut = (dir / "cut.safetensors").string();
  fs::copy_file(w, cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, fs::file_size(w) - 100);
  expect_one_line_error(run_command(forward_args(cfg, cut, in, out)), "cut.safetensors: tensor '");

  // A config whose shapes do not match the checkpoint (kv_lora_rank 16 -> 12).
  std::ifstream cfg_in(cfg);
  std::string text((std::istreambuf_iterator<char>(cfg_in)), {});
  text.replace(text.find("\"kv_lora_rank\": 16"), 18, "\"kv_lora_rank\": 12");
  const std::string cfg2 = (dir / "config.json").string();
  std::ofstream(cfg2) << text;
  expect_one_line_error(run_command(forward_args(cfg2, w, in, out)),
                        "model.safetensors: tensor 'model.layers.3.self_attn.kv_a_proj_with_mqa.weight': shape [24, 32], "
                        "expected [20, 32]");

  // Input without `hidden`, and a layer the checkpoint lacks.
  const std::string bad_in = (dir / "in.h5").string();
  {
    h5::File f = h5::File::create(bad_in, true);
    f.write("x", Tensor<float>({2, 32}));
  }
  expect_one_line_error(run_command(forward_args(cfg, w, bad_in, out)), "in.h5: no dataset 'hidden'");
  expect_one_line_error(run_command(forward_args(cfg, w, in, out) + " --layers 1-3"),
                        "layer 1 is not in the checkpoint (it holds layers 3,4)");
  expect_one_line_error(run_command(forward_args(cfg, (dir / "none.safetensors").string(), in, out)),
                        "none.safetensors: checkpoint not found");
  EXPECT_FALSE(fs::exists(out)) << "a failed run leaves no output file";
  fs::remove_all(dir);
}

// The README's worked example: a random v3-tiny checkpoint in the FP8 layout,
// split per layer with an index, through moelab forward.
TEST(ForwardCli, InitWeightsThenForward) {
  const fs::path dir = temp_dir() / "tiny";
  fs::remove_all(dir);
  const std::string index = (dir / "model.safetensors.index.json").string(), in = (dir / "in.h5").string(),
                    out = (dir / "out.h5").string();
  const CommandResult init =
      run_command("init-weights --model v3-tiny --dtype fp8 --out " + index + " --input " + in + " --tokens 8");
  ASSERT_EQ(init.status, 0) << init.err;
  EXPECT_TRUE(fs::exists(dir / "model-00001-of-00002.safetensors"));
  const st::Checkpoint c = st::Checkpoint::open(index);
  EXPECT_EQ(c.layer_indices(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(c.info("model.layers.1.mlp.experts.3.up_proj.weight").dtype, st::Dtype::F8_E4M3);
  EXPECT_EQ(c.info("model.layers.1.mlp.gate.weight").dtype, st::Dtype::BF16);
  EXPECT_EQ(c.info("model.layers.1.mlp.gate.e_score_correction_bias").dtype, st::Dtype::F32);

  const CommandResult fwd = run_command("forward --model v3-tiny --weights " + index + " --input " + in + " --out " + out);
  ASSERT_EQ(fwd.status, 0) << fwd.err;
  h5::File f = h5::File::open_read(out);
  EXPECT_EQ(f.dataset_shape("layers/0/output"), (Shape{8, 32}));
  EXPECT_FALSE(f.has("layers/0/topk_idx"));
  EXPECT_EQ(f.dataset_shape("layers/1/topk_idx"), (Shape{8, 2}));
  fs::remove_all(dir);
}
