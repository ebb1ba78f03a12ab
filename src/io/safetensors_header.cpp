// The safetensors header parser and the element decoders: everything that
// reads untrusted bytes. Kept apart from the file mapping and the writer so
// the libFuzzer target (tests/fuzz/fuzz_safetensors_header.cpp) builds from
// this file, core/error.cpp and nlohmann-json alone.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/bf16.hpp"
#include "io/safetensors.hpp"
#include "kernels/shared/fp8.hpp"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; so must the host be");

namespace moelab::st {

namespace {

using json = nlohmann::json;

struct DtypeEntry {
  Dtype dtype;
  const char* name;
  int64_t size;
};

constexpr std::array<DtypeEntry, 15> kDtypes = {{
    {Dtype::BOOL, "BOOL", 1},  {Dtype::U8, "U8", 1},   {Dtype::I8, "I8", 1},
    {Dtype::I16, "I16", 2},    {Dtype::U16, "U16", 2}, {Dtype::F16, "F16", 2},
    {Dtype::BF16, "BF16", 2},  {Dtype::I32, "I32", 4}, {Dtype::U32, "U32", 4},
    {Dtype::F32, "F32", 4},    {Dtype::F64, "F64", 8}, {Dtype::I64, "I64", 8},
    {Dtype::U64, "U64", 8},    {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::F8_E5M2, "F8_E5M2", 1},
}};

// Nesting deeper than this is not a safetensors header (the format needs 3).
constexpr int kMaxJsonDepth = 8;

// IEEE binary16 to float, exactly.
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const int exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ffu;
  float magnitude;
  if (exp == 0) {
    magnitude = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    magnitude = mant == 0 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  } else {
    magnitude = std::ldexp(static_cast<float>(mant | 0x400u), exp - 25);
  }
  uint32_t bits;
  std::memcpy(&bits, &magnitude, 4);
  bits |= sign;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

const std::array<float, 256>& fp8_table(bool e4m3) {
  static const std::array<float, 256> e4m3_table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = shared::e4m3_to_float(static_cast<uint8_t>(c));
    return t;
  }();
  static const std::array<float, 256> e5m2_table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = shared::e5m2_to_float(static_cast<uint8_t>(c));
    return t;
  }();
  return e4m3 ? e4m3_table : e5m2_table;
}

// A header value that must be a non-negative integer fitting in uint64.
bool as_unsigned(const json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

std::string clip(const std::string& text, size_t max_chars = 80) {
  return text.size() <= max_chars ? text : text.substr(0, max_chars) + "...";
}

TensorInfo parse_entry(const std::string& name, const json& entry, uint64_t data_bytes, const std::string& file) {
  const std::string where = file + ": tensor '" + clip(name) + "'";
  MOE_CHECK(!name.empty()) << file << ": malformed safetensors header: a tensor with an empty name";
  MOE_CHECK(entry.is_object()) << where << ": header entry is not an object (" << clip(entry.dump()) << ")";
  for (const auto& [key, value] : entry.items()) {
    MOE_CHECK(key == "dtype" || key == "shape" || key == "data_offsets")
        << where << ": unexpected key '" << clip(key) << "' in its header entry";
  }
  MOE_CHECK(entry.contains("dtype") && entry.contains("shape") && entry.contains("data_offsets"))
      << where << ": header entry needs dtype, shape and data_offsets (" << clip(entry.dump()) << ")";

  TensorInfo info;
  info.name = name;
  const json& dtype = entry.at("dtype");
  MOE_CHECK(dtype.is_string() && parse_dtype(dtype.get<std::string>(), info.dtype))
      << where << ": unknown dtype " << clip(dtype.dump());

  const json& shape = entry.at("shape");
  MOE_CHECK(shape.is_array()) << where << ": shape is not an array (" << clip(shape.dump()) << ")";
  // Checked against overflow over the non-zero dimensions too, so that
  // shape_numel() (int64 arithmetic) is safe on every accepted shape.
  uint64_t nonzero_product = 1;
  bool has_zero = false, overflow = false;
  for (const json& d : shape) {
    uint64_t dim = 0;
    MOE_CHECK(as_unsigned(d, dim) && dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        << where << ": shape " << clip(shape.dump()) << " is not a list of non-negative integers";
    info.shape.push_back(static_cast<int64_t>(dim));
    if (dim == 0) has_zero = true;
    else overflow = overflow || __builtin_mul_overflow(nonzero_product, dim, &nonzero_product);
  }
  uint64_t nbytes = 0;
  overflow = overflow || nonzero_product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
             __builtin_mul_overflow(nonzero_product, static_cast<uint64_t>(dtype_size(info.dtype)), &nbytes);
  MOE_CHECK(!overflow) << where << ": shape " << clip(shape.dump()) << " overflows 64-bit byte counts";
  if (has_zero) nbytes = 0;

  const json& offsets = entry.at("data_offsets");
  MOE_CHECK(offsets.is_array() && offsets.size() == 2 && as_unsigned(offsets[0], info.begin) &&
            as_unsigned(offsets[1], info.end))
      << where << ": data_offsets must be two non-negative integers, got " << clip(offsets.dump());
  MOE_CHECK(info.begin <= info.end) << where << ": data_offsets [" << info.begin << ", " << info.end
                                    << "] end before begin";
  MOE_CHECK(info.end <= data_bytes) << where << ": data_offsets [" << info.begin << ", " << info.end
                                    << "] out of range: the data section holds " << data_bytes
                                    << " bytes (file truncated?)";
  MOE_CHECK(info.end - info.begin == nbytes)
      << where << ": data_offsets [" << info.begin << ", " << info.end << "] span " << info.end - info.begin
      << " bytes but " << dtype_name(info.dtype) << " " << shape_str(info.shape) << " needs " << nbytes;
  return info;
}

}  // namespace

const char* dtype_name(Dtype dtype) {
  for (const auto& e : kDtypes)
    if (e.dtype == dtype) return e.name;
  return "?";
}

bool parse_dtype(const std::string& name, Dtype& dtype) {
  for (const auto& e : kDtypes) {
    if (name == e.name) {
      dtype = e.dtype;
      return true;
    }
  }
  return false;
}

int64_t dtype_size(Dtype dtype) {
  for (const auto& e : kDtypes)
    if (e.dtype == dtype) return e.size;
  return 1;
}

Header parse_header(const uint8_t* bytes, size_t size, const std::string& file) {
  MOE_CHECK(size >= 8) << file << ": truncated safetensors file: " << size
                       << " bytes, shorter than the 8-byte header length";
  Header h;
  std::memcpy(&h.header_bytes, bytes, 8);  // little-endian uint64
  MOE_CHECK(h.header_bytes <= kMaxHeaderBytes)
      << file << ": malformed safetensors header: header length " << h.header_bytes << " exceeds the "
      << kMaxHeaderBytes << "-byte limit (not a safetensors file?)";
  MOE_CHECK(h.header_bytes <= size - 8) << file << ": truncated safetensors file: header of " << h.header_bytes
                                        << " bytes runs past the end of the " << size << "-byte file";
  h.data_offset = 8 + h.header_bytes;
  h.data_bytes = size - h.data_offset;

  const char* text = reinterpret_cast<const char*>(bytes + 8);
  json doc;
  try {
    // The callback bounds the nesting depth before values are built.
    json::parser_callback_t depth_guard = [&](int depth, json::parse_event_t, json&) {
      MOE_CHECK(depth <= kMaxJsonDepth) << file << ": malformed safetensors header: JSON nested deeper than "
                                        << kMaxJsonDepth << " levels";
      return true;
    };
    doc = json::parse(text, text + h.header_bytes, depth_guard);
  } catch (const json::exception& e) {
    MOE_FAIL() << file << ": malformed safetensors header (JSON): " << e.what();
  }
  MOE_CHECK(doc.is_object()) << file << ": malformed safetensors header: expected a JSON object, got "
                             << doc.type_name();

  for (const auto& [name, entry] : doc.items()) {
    if (name == "__metadata__") {
      MOE_CHECK(entry.is_object()) << file << ": malformed safetensors header: __metadata__ is not an object";
      for (const auto& [key, value] : entry.items()) {
        MOE_CHECK(value.is_string()) << file << ": malformed safetensors header: __metadata__ value of '"
                                     << clip(key) << "' is not a string";
        h.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    h.tensors.push_back(parse_entry(name, entry, h.data_bytes, file));
  }

  // Tensors must not overlap (zero-sized ones may sit anywhere in range).
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : h.tensors) {
    if (t.nbytes() == 0) continue;
    MOE_CHECK(previous == nullptr || previous->end <= t.begin)
        << file << ": tensor '" << clip(t.name) << "': data_offsets [" << t.begin << ", " << t.end
        << "] overlap tensor '" << clip(previous->name) << "' [" << previous->begin << ", " << previous->end << "]";
    previous = &t;
  }
  return h;
}

void decode_to_float(Dtype dtype, const uint8_t* data, int64_t count, float* out, const std::string& where) {
  switch (dtype) {
    case Dtype::F32:
      if (count > 0) std::memcpy(out, data, static_cast<size_t>(count) * 4);  // empty: data may be null
      return;
    case Dtype::F64:
      for (int64_t i = 0; i < count; ++i) {
        double v;
        std::memcpy(&v, data + 8 * i, 8);
        out[i] = static_cast<float>(v);
      }
      return;
    case Dtype::BF16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t v;
        std::memcpy(&v, data + 2 * i, 2);
        out[i] = bf16_bits_to_float(v);
      }
      return;
    case Dtype::F16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t v;
        std::memcpy(&v, data + 2 * i, 2);
        out[i] = half_to_float(v);
      }
      return;
    case Dtype::F8_E4M3:
    case Dtype::F8_E5M2: {
      const auto& table = fp8_table(dtype == Dtype::F8_E4M3);
      for (int64_t i = 0; i < count; ++i) out[i] = table[data[i]];
      return;
    }
    default:
      MOE_FAIL() << where << ": dtype " << dtype_name(dtype)
                 << " cannot be read as float (expected F32, BF16, F16, F64 or F8_E4M3)";
  }
}

}  // namespace moelab::st
