#include "train/checkpoint.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "io/safetensors.hpp"

namespace moelab::train {

namespace {

Tensor<float> as_tensor(const std::vector<float>& values, const Shape& shape) { return Tensor<float>(shape, values); }

int64_t metadata_step(const std::string& path) {
  auto file = st::SafetensorsFile::open(path);
  const auto& meta = file->header().metadata;
  auto it = meta.find("step");
  MOE_CHECK(it != meta.end()) << path << ": no 'step' in the metadata (not a moelab training checkpoint)";
  return std::stoll(it->second);
}

}  // namespace

void save_checkpoint(const std::string& dir, const ModelParams<float>& params, const AdamW& optimizer,
                     int64_t next_step) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  MOE_CHECK(!ec) << dir << ": cannot create the checkpoint directory (" << ec.message() << ")";
  st::SafetensorsWriter model;
  for (const auto& p : params.all()) model.add_f32(p.name, p.value);
  model.set_metadata("step", std::to_string(next_step));
  model.set_metadata("format", "pt");
  model.write(dir + "/model.safetensors");

  st::SafetensorsWriter opt;
  const auto& slots = optimizer.slots();
  for (size_t i = 0; i < slots.size(); ++i) {
    const Shape shape = {slots[i].numel};
    opt.add_f32(slots[i].name + ".exp_avg", as_tensor(optimizer.moment1(i), shape));
    opt.add_f32(slots[i].name + ".exp_avg_sq", as_tensor(optimizer.moment2(i), shape));
  }
  opt.set_metadata("step", std::to_string(next_step));
  opt.set_metadata("optimizer_step", std::to_string(optimizer.step_count()));
  opt.write(dir + "/optimizer.safetensors");
}

int64_t load_checkpoint(const std::string& dir, ModelParams<float>& params, AdamW& optimizer) {
  const std::string model_path = dir + "/model.safetensors", opt_path = dir + "/optimizer.safetensors";
  MOE_CHECK(std::filesystem::exists(model_path) && std::filesystem::exists(opt_path))
      << dir << ": not a training checkpoint (expected model.safetensors and optimizer.safetensors)";
  st::Checkpoint model = st::Checkpoint::open(model_path);
  for (auto& p : params.all()) {
    MOE_CHECK(model.has(p.name)) << model_path << ": missing tensor " << p.name
                                 << " (a checkpoint of another model configuration?)";
    model.read_float_into(p.name, p.value.shape, p.value.ptr());
  }
  st::Checkpoint opt = st::Checkpoint::open(opt_path);
  const auto& slots = optimizer.slots();
  std::vector<std::vector<float>> m(slots.size()), v(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    m[i] = opt.read_float(slots[i].name + ".exp_avg", {slots[i].numel}).data;
    v[i] = opt.read_float(slots[i].name + ".exp_avg_sq", {slots[i].numel}).data;
  }
  auto opt_file = st::SafetensorsFile::open(opt_path);
  const auto& meta = opt_file->header().metadata;
  auto it = meta.find("optimizer_step");
  MOE_CHECK(it != meta.end()) << opt_path << ": no 'optimizer_step' in the metadata";
  optimizer.set_state(std::stoll(it->second), m, v);
  const int64_t step = metadata_step(model_path);
  MOE_CHECK(step == metadata_step(opt_path)) << dir << ": model and optimizer files are of different steps";
  return step;
}

}  // namespace moelab::train
