// Hugging Face .safetensors checkpoints: read (memory-mapped), write, and
// checkpoints split over several files with a model.safetensors.index.json,
// as the DeepSeek-V3 release is.
//
// File layout (https://huggingface.co/docs/safetensors, "Format"):
//   [8 bytes]  N, little-endian uint64: size of the JSON header
//   [N bytes]  JSON object, UTF-8: { "__metadata__": {str: str, ...},
//              "<tensor name>": {"dtype": "F32", "shape": [2, 3],
//                                "data_offsets": [begin, end]}, ... }
//              (space-padded; offsets are relative to the data section)
//   [rest]     data section: each tensor row-major, little-endian.
//
// DeepSeek-V3's FP8 weights: "X.weight" is F8_E4M3 [R, C] and
// "X.weight_scale_inv" is F32 [ceil(R/128), ceil(C/128)], one scale per
// 128x128 block (partial at the right and bottom edges); the weight is
// code(r, c) * scale_inv(r / 128, c / 128) (README_WEIGHTS.md of the release;
// inference/kernel.py weight_dequant). read_float() dequantises on load.
//
// Every bad input (missing file or tensor, truncated file, malformed header,
// offsets out of range, unknown or unreadable dtype, wrong shape) is one
// moelab::Error whose message names the file and the tensor. The header
// parser is fuzzed (tests/fuzz, scripts/fuzz.sh).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace moelab::st {

// The dtypes of the safetensors format. Reading to float supports F32, F16,
// BF16, F64 and F8_E4M3 / F8_E5M2 (FP8 2-D weights need their block scales).
enum class Dtype { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E4M3, F8_E5M2 };

const char* dtype_name(Dtype dtype);  // "F32"
bool parse_dtype(const std::string& name, Dtype& dtype);  // false for an unknown name
int64_t dtype_size(Dtype dtype);                          // bytes per element

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
  int64_t numel() const { return shape_numel(shape); }
  uint64_t nbytes() const { return end - begin; }
};

struct Header {
  uint64_t header_bytes = 0;  // N
  uint64_t data_offset = 0;   // 8 + N: where the data section starts in the file
  uint64_t data_bytes = 0;    // size of the data section
  std::map<std::string, std::string> metadata;
  std::vector<TensorInfo> tensors;  // sorted by begin offset
};

// Largest JSON header accepted (the reference implementation's limit).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Parses and validates the header of a whole file's bytes [0, size): header
// length within the file, JSON an object, every entry a dtype, a shape of
// non-negative integers and data_offsets [begin, end] with end - begin =
// numel * dtype size, inside the data section, tensors not overlapping.
// `file` names the file in errors. This is the function the fuzzer drives.
Header parse_header(const uint8_t* bytes, size_t size, const std::string& file);

// Converts count elements of `dtype` at `data` to float. F32/F16/BF16/F8
// exactly; F64 rounded to nearest. Throws for integer and bool dtypes.
void decode_to_float(Dtype dtype, const uint8_t* data, int64_t count, float* out, const std::string& where);

// One .safetensors file, memory-mapped read-only.
class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const Header& header() const { return header_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr when absent
  std::vector<std::string> names() const;                  // sorted
  std::span<const uint8_t> bytes(const TensorInfo& info) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
  Header header_;
  std::map<std::string, size_t> by_name_;  // index into header_.tensors
};

// A checkpoint: one .safetensors file, a model.safetensors.index.json (its
// weight_map names the file of each tensor, relative to the index), or a
// directory (its index.json if present, otherwise every *.safetensors in it).
class Checkpoint {
 public:
  static Checkpoint open(const std::string& path);

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  std::vector<std::string> names() const;  // sorted
  const TensorInfo& info(const std::string& name) const;
  const std::string& file_of(const std::string& name) const;
  std::span<const uint8_t> raw(const std::string& name) const;  // the stored bytes

  // The tensor as float, checked against the expected shape. FP8 2-D weights
  // are dequantised with their "<name>_scale_inv" block scales (block size
  // fp8_block, [128, 128] by default).
  Tensor<float> read_float(const std::string& name, const Shape& expected_shape) const;
  void read_float_into(const std::string& name, const Shape& expected_shape, float* out) const;

  // Decoder layers present: the i of every "model.layers.{i}." name, sorted.
  std::vector<int64_t> layer_indices() const;

  int64_t fp8_block_rows = 128, fp8_block_cols = 128;

 private:
  struct Location {
    std::shared_ptr<SafetensorsFile> file;
    const TensorInfo* info;
  };
  const Location& locate(const std::string& name) const;
  std::string path_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, Location> where_;
};

// Builds a .safetensors file in memory and writes it (to PATH.tmp, then
// renamed, so a failed write never leaves a file that looks complete).
class SafetensorsWriter {
 public:
  // Raw bytes of `dtype` (numel(shape) * dtype_size(dtype) of them).
  void add(const std::string& name, Dtype dtype, const Shape& shape, std::vector<uint8_t> bytes);
  void add_f32(const std::string& name, const Tensor<float>& t);
  void add_bf16(const std::string& name, const Tensor<float>& t);  // rounded to nearest even
  // A 2-D weight as F8_E4M3 with F32 block scales "<name>_scale_inv"
  // (amax / 448 per block_rows x block_cols block, partial at the edges).
  void add_fp8_e4m3(const std::string& name, const Tensor<float>& t, int64_t block_rows = 128,
                    int64_t block_cols = 128);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  bool has(const std::string& name) const;
  std::vector<std::string> names() const;  // in insertion order
  uint64_t data_bytes() const;
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    Dtype dtype;
    Shape shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// model.safetensors.index.json: {"metadata": {"total_size": N},
// "weight_map": {tensor name: file name relative to the index}}.
void write_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                 uint64_t total_size);

}  // namespace moelab::st
