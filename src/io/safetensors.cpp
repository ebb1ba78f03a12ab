// Memory-mapped safetensors files, checkpoints over one file / an index /
// a directory, FP8 block dequantisation on load, and the writer.
// The header parser and element decoders are in safetensors_header.cpp.
#include "io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/bf16.hpp"
#include "numerics/quantize.hpp"

namespace moelab::st {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- one file ----------------------------------------------------------------

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  MOE_CHECK(fd >= 0) << path << ": cannot open safetensors file: " << std::strerror(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    MOE_FAIL() << path << ": not a regular file";
  }
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int mmap_errno = errno;
    ::close(fd);
    MOE_CHECK(p != MAP_FAILED) << path << ": cannot memory-map " << f->size_ << " bytes: " << std::strerror(mmap_errno);
    f->map_ = static_cast<const uint8_t*>(p);
  } else {
    ::close(fd);
  }
  // Parsing may throw; the destructor unmaps.
  static const uint8_t kEmpty[1] = {0};
  f->header_ = parse_header(f->map_ ? f->map_ : kEmpty, f->size_, path);
  for (size_t i = 0; i < f->header_.tensors.size(); ++i) f->by_name_[f->header_.tensors[i].name] = i;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), size_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &header_.tensors[it->second];
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, index] : by_name_) out.push_back(name);
  return out;
}

std::span<const uint8_t> SafetensorsFile::bytes(const TensorInfo& info) const {
  if (info.nbytes() == 0) return {};
  return {map_ + header_.data_offset + info.begin, static_cast<size_t>(info.nbytes())};
}

// ---- checkpoint --------------------------------------------------------------

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MOE_CHECK(in.good()) << path << ": cannot open: " << std::strerror(errno);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint c;
  c.path_ = path;
  std::error_code ec;
  MOE_CHECK(fs::exists(path, ec)) << path << ": checkpoint not found";

  auto add_file = [&](const std::string& file_path) -> std::shared_ptr<SafetensorsFile> {
    for (const auto& f : c.files_)
      if (f->path() == file_path) return f;
    c.files_.push_back(SafetensorsFile::open(file_path));
    return c.files_.back();
  };
  auto add_all = [&](const std::shared_ptr<SafetensorsFile>& f) {
    for (const TensorInfo& t : f->header().tensors) {
      auto [it, inserted] = c.where_.emplace(t.name, Location{f, &t});
      MOE_CHECK(inserted) << f->path() << ": tensor '" << t.name << "' is also in " << it->second.file->path();
    }
  };

  std::string index_path;
  if (fs::is_directory(path, ec)) {
    const fs::path candidate = fs::path(path) / "model.safetensors.index.json";
    if (fs::exists(candidate, ec)) {
      index_path = candidate.string();
    } else {
      std::vector<std::string> shards;
      for (const auto& entry : fs::directory_iterator(path, ec))
        if (entry.is_regular_file() && entry.path().extension() == ".safetensors") shards.push_back(entry.path());
      MOE_CHECK(!ec) << path << ": cannot list directory: " << ec.message();
      MOE_CHECK(!shards.empty()) << path << ": directory holds no *.safetensors file and no model.safetensors.index.json";
      std::sort(shards.begin(), shards.end());
      for (const auto& s : shards) add_all(add_file(s));
      return c;
    }
  } else if (ends_with(path, ".json")) {
    index_path = path;
  } else {
    add_all(add_file(path));
    return c;
  }

  // model.safetensors.index.json: weight_map {tensor: file}.
  json index;
  try {
    index = json::parse(read_text(index_path));
  } catch (const json::exception& e) {
    MOE_FAIL() << index_path << ": malformed index JSON: " << e.what();
  }
  MOE_CHECK(index.is_object() && index.contains("weight_map") && index.at("weight_map").is_object())
      << index_path << ": expected an object with a \"weight_map\" object (tensor name -> file)";
  const fs::path dir = fs::path(index_path).parent_path();
  for (const auto& [name, file] : index.at("weight_map").items()) {
    MOE_CHECK(file.is_string()) << index_path << ": weight_map entry of tensor '" << name
                                << "' is not a file name: " << file.dump();
    const std::string file_path = (dir / file.get<std::string>()).string();
    auto f = add_file(file_path);
    const TensorInfo* info = f->find(name);
    MOE_CHECK(info != nullptr) << file_path << ": tensor '" << name << "' listed in " << index_path
                               << " is not in the file";
    c.where_.emplace(name, Location{f, info});
  }
  return c;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, loc] : where_) out.push_back(name);
  return out;
}

const Checkpoint::Location& Checkpoint::locate(const std::string& name) const {
  auto it = where_.find(name);
  MOE_CHECK(it != where_.end()) << path_ << ": tensor '" << name << "' missing from the checkpoint";
  return it->second;
}

const TensorInfo& Checkpoint::info(const std::string& name) const { return *locate(name).info; }
const std::string& Checkpoint::file_of(const std::string& name) const { return locate(name).file->path(); }

std::span<const uint8_t> Checkpoint::raw(const std::string& name) const {
  const Location& loc = locate(name);
  return loc.file->bytes(*loc.info);
}

Tensor<float> Checkpoint::read_float(const std::string& name, const Shape& expected_shape) const {
  Tensor<float> t(expected_shape);
  read_float_into(name, expected_shape, t.ptr());
  return t;
}

void Checkpoint::read_float_into(const std::string& name, const Shape& expected_shape, float* out) const {
  auto it = where_.find(name);
  MOE_CHECK(it != where_.end()) << path_ << ": tensor '" << name << "' missing from the checkpoint (expected "
                                << shape_str(expected_shape) << ")";
  const Location& loc = it->second;
  const TensorInfo& info = *loc.info;
  const std::string where = loc.file->path() + ": tensor '" + name + "'";
  MOE_CHECK(info.shape == expected_shape) << where << ": shape " << shape_str(info.shape) << ", expected "
                                          << shape_str(expected_shape);
  const std::span<const uint8_t> data = loc.file->bytes(info);
  decode_to_float(info.dtype, data.data(), info.numel(), out, where);
  if (info.dtype != Dtype::F8_E4M3 && info.dtype != Dtype::F8_E5M2) return;

  // FP8 weight: multiply each 128x128 block by its scale (the product rounded
  // once to float, as the reference dequantisation in float32 does).
  MOE_CHECK(info.shape.size() == 2) << where << ": " << dtype_name(info.dtype) << " tensor of shape "
                                    << shape_str(info.shape)
                                    << " (only 2-D FP8 weights with block scales can be read)";
  const std::string scale_name = name + "_scale_inv";
  MOE_CHECK(has(scale_name)) << where << ": " << dtype_name(info.dtype) << " weight without its block scales '"
                             << scale_name << "' in " << path_;
  const int64_t rows = info.shape[0], cols = info.shape[1];
  const int64_t br = fp8_block_rows, bc = fp8_block_cols;
  const Shape scale_shape = {(rows + br - 1) / br, (cols + bc - 1) / bc};
  const Location& sloc = locate(scale_name);
  MOE_CHECK(sloc.info->dtype == Dtype::F32 || sloc.info->dtype == Dtype::BF16)
      << sloc.file->path() << ": tensor '" << scale_name << "': block scales of dtype "
      << dtype_name(sloc.info->dtype) << ", expected F32 (or BF16)";
  const Tensor<float> scales = read_float(scale_name, scale_shape);
  for (int64_t r = 0; r < rows; ++r) {
    const float* srow = scales.ptr() + (r / br) * scale_shape[1];
    float* orow = out + r * cols;
    for (int64_t c = 0; c < cols; ++c) orow[c] *= srow[c / bc];
  }
}

std::vector<int64_t> Checkpoint::layer_indices() const {
  static const std::string prefix = "model.layers.";
  std::set<int64_t> layers;
  for (const auto& [name, loc] : where_) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    size_t i = prefix.size();
    int64_t layer = 0;
    size_t digits = 0;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9' && digits < 12) {
      layer = layer * 10 + (name[i] - '0');
      ++i, ++digits;
    }
    if (digits > 0 && i < name.size() && name[i] == '.') layers.insert(layer);
  }
  return {layers.begin(), layers.end()};
}

// ---- writer ------------------------------------------------------------------

void SafetensorsWriter::add(const std::string& name, Dtype dtype, const Shape& shape, std::vector<uint8_t> bytes) {
  MOE_CHECK(!name.empty() && name != "__metadata__") << "safetensors writer: invalid tensor name '" << name << "'";
  MOE_CHECK(!has(name)) << "safetensors writer: tensor '" << name << "' added twice";
  for (int64_t d : shape) MOE_CHECK(d >= 0) << "safetensors writer: tensor '" << name << "': negative dimension";
  MOE_CHECK(static_cast<int64_t>(bytes.size()) == shape_numel(shape) * dtype_size(dtype))
      << "safetensors writer: tensor '" << name << "': " << bytes.size() << " bytes for " << dtype_name(dtype) << " "
      << shape_str(shape);
  entries_.push_back({name, dtype, shape, std::move(bytes)});
}

void SafetensorsWriter::add_f32(const std::string& name, const Tensor<float>& t) {
  std::vector<uint8_t> bytes(t.data.size() * 4);
  if (!bytes.empty()) std::memcpy(bytes.data(), t.ptr(), bytes.size());
  add(name, Dtype::F32, t.shape, std::move(bytes));
}

void SafetensorsWriter::add_bf16(const std::string& name, const Tensor<float>& t) {
  std::vector<uint8_t> bytes(t.data.size() * 2);
  for (size_t i = 0; i < t.data.size(); ++i) {
    const uint16_t b = float_to_bf16_bits(t.data[i]);
    std::memcpy(bytes.data() + 2 * i, &b, 2);
  }
  add(name, Dtype::BF16, t.shape, std::move(bytes));
}

void SafetensorsWriter::add_fp8_e4m3(const std::string& name, const Tensor<float>& t, int64_t block_rows,
                                     int64_t block_cols) {
  MOE_CHECK(t.rank() == 2) << "safetensors writer: FP8 tensor '" << name << "' must be 2-D, got "
                           << shape_str(t.shape);
  MOE_CHECK(block_rows == numerics::kFp8TileSize && block_cols == numerics::kFp8TileSize)
      << "safetensors writer: FP8 blocks must be " << numerics::kFp8TileSize << "x" << numerics::kFp8TileSize;
  numerics::QuantizeOptions opts;
  opts.format = numerics::Fp8Kind::e4m3;
  opts.granularity = numerics::Granularity::block_128x128;
  const numerics::QuantizedTensor q = numerics::quantize(t.ptr(), t.dim(0), t.dim(1), opts);
  add(name, Dtype::F8_E4M3, t.shape, q.codes);
  Tensor<float> scales({q.scale_rows, q.scale_cols}, q.scales);
  add_f32(name + "_scale_inv", scales);
}

bool SafetensorsWriter::has(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
}

std::vector<std::string> SafetensorsWriter::names() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.name);
  return out;
}

uint64_t SafetensorsWriter::data_bytes() const {
  uint64_t n = 0;
  for (const Entry& e : entries_) n += e.bytes.size();
  return n;
}

void SafetensorsWriter::write(const std::string& path) const {
  json header = json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Entry& e : entries_) {
    header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the
  // reference implementation does.
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    MOE_CHECK(out.good()) << tmp << ": cannot create: " << std::strerror(errno);
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const Entry& e : entries_)
      out.write(reinterpret_cast<const char*>(e.bytes.data()), static_cast<std::streamsize>(e.bytes.size()));
    out.flush();
    MOE_CHECK(out.good()) << tmp << ": write failed: " << std::strerror(errno);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  MOE_CHECK(!ec) << path << ": cannot rename " << tmp << ": " << ec.message();
}

void write_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                 uint64_t total_size) {
  json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    MOE_CHECK(out.good()) << tmp << ": cannot create: " << std::strerror(errno);
    out << index.dump(2) << "\n";
    out.flush();
    MOE_CHECK(out.good()) << tmp << ": write failed";
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  MOE_CHECK(!ec) << path << ": cannot rename " << tmp << ": " << ec.message();
}

}  // namespace moelab::st
