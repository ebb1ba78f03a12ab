// Safetensors: write -> read back bit for bit (F32, BF16, FP8 with 128x128
// block scales incl. partial edge blocks), sharded checkpoints via an index
// and a directory, layer indices, and one clear error (file and tensor named)
// for every kind of bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/bf16.hpp"
#include "io/safetensors.hpp"
#include "numerics/quantize.hpp"

namespace fs = std::filesystem;
using namespace moelab;
using namespace moelab::st;

namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("moelab_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

Tensor<float> random_tensor(Shape shape, uint64_t seed, float scale = 1.0f) {
  Tensor<float> t(std::move(shape));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& v : t.data) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    v = scale * (static_cast<float>(s >> 40) / static_cast<float>(1ull << 24) * 2.0f - 1.0f);
  }
  return t;
}

std::vector<uint8_t> file_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& p, const std::vector<uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A file made of a given header text and `data_bytes` zero bytes of data.
std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> bytes(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return bytes;
}

// The error message of `fn`, or "" when it does not throw.
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_F(SafetensorsTest, RoundTripF32Bf16SameBits) {
  Tensor<float> a = random_tensor({3, 5}, 1);
  a.data[0] = -0.0f;
  a.data[1] = std::numeric_limits<float>::denorm_min();
  a.data[2] = std::numeric_limits<float>::infinity();
  a.data[3] = std::numeric_limits<float>::max();
  const Tensor<float> b = random_tensor({7}, 2, 100.0f);
  const Tensor<float> scalar({}, std::vector<float>{42.5f});
  const Tensor<float> empty({0, 4});
  SafetensorsWriter w;
  w.add_f32("model.layers.7.a", a);
  w.add_bf16("model.layers.3.b", b);
  w.add_f32("scalar", scalar);
  w.add_f32("empty", empty);
  w.set_metadata("format", "pt");
  w.write(path("m.safetensors"));
  EXPECT_FALSE(fs::exists(path("m.safetensors.tmp")));

  const Checkpoint c = Checkpoint::open(path("m.safetensors"));
  EXPECT_EQ(c.names(), (std::vector<std::string>{"empty", "model.layers.3.b", "model.layers.7.a", "scalar"}));
  EXPECT_EQ(c.layer_indices(), (std::vector<int64_t>{3, 7}));
  const Tensor<float> a2 = c.read_float("model.layers.7.a", {3, 5});
  EXPECT_EQ(std::memcmp(a.ptr(), a2.ptr(), 15 * 4), 0) << "F32 must come back bit for bit";
  const auto raw = c.raw("model.layers.7.a");
  ASSERT_EQ(raw.size(), 60u);
  EXPECT_EQ(std::memcmp(raw.data(), a.ptr(), 60), 0);

  EXPECT_EQ(c.info("model.layers.3.b").dtype, Dtype::BF16);
  const Tensor<float> b2 = c.read_float("model.layers.3.b", {7});
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(b2.data[i], round_to_bf16(b.data[i])) << i;
    uint16_t stored;
    std::memcpy(&stored, c.raw("model.layers.3.b").data() + 2 * i, 2);
    EXPECT_EQ(stored, float_to_bf16_bits(b.data[i])) << i;
  }
  EXPECT_EQ(c.read_float("scalar", {}).data[0], 42.5f);
  EXPECT_EQ(c.read_float("empty", {0, 4}).numel(), 0);

  // The header is 8-byte aligned and parses to what was written.
  const auto bytes = file_bytes(path("m.safetensors"));
  const Header h = parse_header(bytes.data(), bytes.size(), "m");
  EXPECT_EQ(h.header_bytes % 8, 0u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.data_bytes, 60u + 14u + 4u);
}

TEST_F(SafetensorsTest, RoundTripFp8BlockScalesWithPartialEdgeBlocks) {
  // 200 x 300: blocks of 128x128, 72 rows and 44 columns in the edge blocks.
  const Tensor<float> w = random_tensor({200, 300}, 3, 0.05f);
  Tensor<float> w_scaled = w;
  for (int64_t r = 128; r < 200; ++r)
    for (int64_t c = 256; c < 300; ++c) w_scaled.data[r * 300 + c] *= 40.0f;  // a distinct corner scale
  SafetensorsWriter writer;
  writer.add_fp8_e4m3("model.layers.0.mlp.down_proj.weight", w_scaled);
  writer.write(path("fp8.safetensors"));

  const Checkpoint c = Checkpoint::open(path("fp8.safetensors"));
  const TensorInfo& info = c.info("model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(info.dtype, Dtype::F8_E4M3);
  const TensorInfo& sinfo = c.info("model.layers.0.mlp.down_proj.weight_scale_inv");
  EXPECT_EQ(sinfo.dtype, Dtype::F32);
  EXPECT_EQ(sinfo.shape, (Shape{2, 3}));

  numerics::QuantizeOptions opts;
  opts.granularity = numerics::Granularity::block_128x128;
  const numerics::QuantizedTensor q = numerics::quantize(w_scaled.ptr(), 200, 300, opts);
  ASSERT_EQ(c.raw("model.layers.0.mlp.down_proj.weight").size(), q.codes.size());
  EXPECT_EQ(std::memcmp(c.raw("model.layers.0.mlp.down_proj.weight").data(), q.codes.data(), q.codes.size()), 0);
  EXPECT_EQ(std::memcmp(c.raw("model.layers.0.mlp.down_proj.weight_scale_inv").data(), q.scales.data(), 24), 0);

  // Dequantised on load: code * scale of its block, rounded once to float.
  const Tensor<float> got = c.read_float("model.layers.0.mlp.down_proj.weight", {200, 300});
  const std::vector<float> expected = numerics::dequantize(q);
  EXPECT_EQ(std::memcmp(got.ptr(), expected.data(), expected.size() * 4), 0);
  EXPECT_EQ(got.data[199 * 300 + 299], numerics::fp8_decode(q.codes[199 * 300 + 299], numerics::Fp8Kind::e4m3) *
                                           q.scales[1 * 3 + 2]);
  // The corner block's scale is its own amax / 448.
  float amax = 0;
  for (int64_t r = 128; r < 200; ++r)
    for (int64_t col = 256; col < 300; ++col) amax = std::max(amax, std::fabs(w_scaled.data[r * 300 + col]));
  EXPECT_FLOAT_EQ(q.scales[5], amax / 448.0f);
  // Close to the input (E4M3 has 3 mantissa bits: relative step 1/16).
  for (size_t i = 0; i < expected.size(); i += 97)
    EXPECT_NEAR(got.data[i], w_scaled.data[i], std::fabs(w_scaled.data[i]) / 15.0f + q.scales[0] * 0.01f);
}

TEST_F(SafetensorsTest, IndexAndDirectoryCheckpoints) {
  SafetensorsWriter s1, s2;
  s1.add_f32("model.layers.3.input_layernorm.weight", random_tensor({4}, 4));
  s2.add_bf16("model.layers.4.input_layernorm.weight", random_tensor({4}, 5));
  s2.add_fp8_e4m3("model.layers.4.mlp.gate_proj.weight", random_tensor({6, 4}, 6));
  fs::create_directories(path("sharded"));
  s1.write(path("sharded/model-00001-of-00002.safetensors"));
  s2.write(path("sharded/model-00002-of-00002.safetensors"));
  std::map<std::string, std::string> weight_map;
  for (const auto& n : s1.names()) weight_map[n] = "model-00001-of-00002.safetensors";
  for (const auto& n : s2.names()) weight_map[n] = "model-00002-of-00002.safetensors";
  write_index(path("sharded/model.safetensors.index.json"), weight_map, s1.data_bytes() + s2.data_bytes());

  for (const std::string& p : {path("sharded/model.safetensors.index.json"), path("sharded")}) {
    const Checkpoint c = Checkpoint::open(p);
    EXPECT_EQ(c.layer_indices(), (std::vector<int64_t>{3, 4})) << p;
    EXPECT_EQ(c.names().size(), 4u) << p;
    EXPECT_EQ(fs::path(c.file_of("model.layers.4.mlp.gate_proj.weight")).filename(),
              "model-00002-of-00002.safetensors");
    EXPECT_EQ(c.read_float("model.layers.4.mlp.gate_proj.weight", {6, 4}).numel(), 24);
  }
  // A directory without an index: every *.safetensors file in it.
  fs::remove(path("sharded/model.safetensors.index.json"));
  EXPECT_EQ(Checkpoint::open(path("sharded")).names().size(), 4u);
  // The same tensor in two files is an error naming both.
  s2.write(path("sharded/copy.safetensors"));
  const std::string e = error_of([&] { Checkpoint::open(path("sharded")); });
  EXPECT_NE(e.find("is also in"), std::string::npos) << e;
}

TEST_F(SafetensorsTest, ReadErrorsNameFileAndTensor) {
  SafetensorsWriter w;
  w.add_f32("model.layers.0.self_attn.o_proj.weight", random_tensor({2, 3}, 7));
  w.add("ints", Dtype::I64, {2}, std::vector<uint8_t>(16, 0));
  w.add("fp8_no_scales", Dtype::F8_E4M3, {2, 2}, std::vector<uint8_t>(4, 0x38));
  w.add("fp8_bad_scales", Dtype::F8_E4M3, {2, 2}, std::vector<uint8_t>(4, 0x38));
  w.add_f32("fp8_bad_scales_scale_inv", Tensor<float>({2, 1}, 1.0f));
  w.write(path("m.safetensors"));
  const Checkpoint c = Checkpoint::open(path("m.safetensors"));

  std::string e = error_of([&] { c.read_float("model.layers.0.self_attn.q_a_proj.weight", {2, 3}); });
  EXPECT_NE(e.find("m.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("'model.layers.0.self_attn.q_a_proj.weight' missing"), std::string::npos) << e;

  e = error_of([&] { c.read_float("model.layers.0.self_attn.o_proj.weight", {3, 2}); });
  EXPECT_NE(e.find("m.safetensors: tensor 'model.layers.0.self_attn.o_proj.weight': shape [2, 3], expected [3, 2]"),
            std::string::npos)
      << e;

  e = error_of([&] { c.read_float("ints", {2}); });
  EXPECT_NE(e.find("tensor 'ints': dtype I64 cannot be read as float"), std::string::npos) << e;

  e = error_of([&] { c.read_float("fp8_no_scales", {2, 2}); });
  EXPECT_NE(e.find("tensor 'fp8_no_scales': F8_E4M3 weight without its block scales 'fp8_no_scales_scale_inv'"),
            std::string::npos)
      << e;

  e = error_of([&] { c.read_float("fp8_bad_scales", {2, 2}); });
  EXPECT_NE(e.find("tensor 'fp8_bad_scales_scale_inv': shape [2, 1], expected [1, 1]"), std::string::npos) << e;

  e = error_of([&] { Checkpoint::open(path("nope.safetensors")); });
  EXPECT_NE(e.find("nope.safetensors: checkpoint not found"), std::string::npos) << e;
}

TEST_F(SafetensorsTest, TruncatedAndMalformedFilesAreOneError) {
  SafetensorsWriter w;
  w.add_f32("model.layers.2.w", random_tensor({16, 16}, 8));
  w.write(path("good.safetensors"));
  const auto good = file_bytes(path("good.safetensors"));

  struct Case {
    std::string what;
    std::vector<uint8_t> bytes;
    std::string expect;  // substring of the message
  };
  std::vector<Case> cases;
  cases.push_back({"empty", {}, "truncated safetensors file: 0 bytes"});
  cases.push_back({"5 bytes", {1, 2, 3, 4, 5}, "truncated safetensors file: 5 bytes"});
  cases.push_back({"cut in header", std::vector<uint8_t>(good.begin(), good.begin() + 20), "runs past the end"});
  cases.push_back({"cut in data", std::vector<uint8_t>(good.begin(), good.end() - 1),
                   "tensor 'model.layers.2.w': data_offsets [0, 1024] out of range"});
  cases.push_back({"huge length", {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'}, "exceeds"});
  cases.push_back({"not json", make_file("{\"a\": ", 0), "malformed safetensors header (JSON)"});
  cases.push_back({"array", make_file("[1, 2]", 0), "expected a JSON object, got array"});
  cases.push_back({"bad dtype", make_file(R"({"t": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}})", 4),
                   "tensor 't': unknown dtype \"F33\""});
  cases.push_back({"negative dim", make_file(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
                   "tensor 't': shape [-1] is not a list of non-negative integers"});
  cases.push_back({"float dim", make_file(R"({"t": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4),
                   "not a list of non-negative integers"});
  cases.push_back({"size mismatch", make_file(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", 8),
                   "span 4 bytes but F32 [2] needs 8"});
  cases.push_back({"reversed", make_file(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 8),
                   "end before begin"});
  cases.push_back({"overlap", make_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                           "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                                        8),
                   "overlap tensor 'a'"});
  cases.push_back({"overflow", make_file(R"({"t": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8),
                   "overflows"});
  cases.push_back({"missing key", make_file(R"({"t": {"dtype": "F32", "shape": [1]}})", 4),
                   "needs dtype, shape and data_offsets"});
  cases.push_back({"extra key", make_file(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}})", 4),
                   "unexpected key 'x'"});
  cases.push_back({"bad metadata", make_file(R"({"__metadata__": {"a": 1}})", 0), "__metadata__ value of 'a'"});
  cases.push_back({"deep", make_file(std::string(200, '[') + std::string(200, ']'), 0), "nested deeper"});

  for (const Case& k : cases) {
    write_bytes(path("bad.safetensors"), k.bytes);
    const std::string e = error_of([&] { Checkpoint::open(path("bad.safetensors")); });
    EXPECT_NE(e.find(path("bad.safetensors")), std::string::npos) << k.what << ": " << e;
    EXPECT_NE(e.find(k.expect), std::string::npos) << k.what << ": " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << k.what << ": one line: " << e;
  }
}

TEST_F(SafetensorsTest, IndexErrors) {
  SafetensorsWriter w;
  w.add_f32("a", random_tensor({2}, 9));
  w.write(path("one.safetensors"));
  auto write_text = [&](const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
    return path(name);
  };
  std::string e = error_of([&] { Checkpoint::open(write_text("i1.json", "{\"weight_map\": ")); });
  EXPECT_NE(e.find("i1.json: malformed index JSON"), std::string::npos) << e;
  e = error_of([&] { Checkpoint::open(write_text("i2.json", "{\"weight_map\": {\"b\": \"one.safetensors\"}}")); });
  EXPECT_NE(e.find("one.safetensors: tensor 'b' listed in"), std::string::npos) << e;
  e = error_of([&] { Checkpoint::open(write_text("i3.json", "{\"weight_map\": {\"a\": \"two.safetensors\"}}")); });
  EXPECT_NE(e.find("two.safetensors: cannot open safetensors file"), std::string::npos) << e;
  e = error_of([&] { Checkpoint::open(write_text("i4.json", "{\"weight_map\": {\"a\": 3}}")); });
  EXPECT_NE(e.find("weight_map entry of tensor 'a' is not a file name"), std::string::npos) << e;
  fs::create_directories(path("emptydir"));
  e = error_of([&] { Checkpoint::open(path("emptydir")); });
  EXPECT_NE(e.find("holds no *.safetensors file"), std::string::npos) << e;
}

TEST(SafetensorsDecode, Fp16AndFp8Tables) {
  const uint16_t halfs[] = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00};
  float out[5];
  decode_to_float(Dtype::F16, reinterpret_cast<const uint8_t*>(halfs), 5, out, "x");
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -24));
  EXPECT_EQ(out[3], 65504.0f);
  EXPECT_TRUE(std::isinf(out[4]));
  const uint8_t codes[] = {0x38, 0x7e, 0x01, 0xb8};  // E4M3: 1, 448, 2^-9, -1
  decode_to_float(Dtype::F8_E4M3, codes, 4, out, "x");
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 448.0f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -9));
  EXPECT_EQ(out[3], -1.0f);
}

// The layer cases written by tests/reference/make_layer_cases.py (NumPy, not
// this code): the same master weights stored as F32, BF16 and FP8 shards.
TEST(SafetensorsFixtures, ReadsTheNumpyWrittenLayerCases) {
  const std::string root = std::string(MOELAB_TEST_FIXTURES) + "/layer_cases/";
  const Checkpoint f32 = Checkpoint::open(root + "f32/model.safetensors");
  const Checkpoint bf16 = Checkpoint::open(root + "bf16");
  const Checkpoint fp8 = Checkpoint::open(root + "fp8/model.safetensors.index.json");
  for (const Checkpoint* c : {&f32, &bf16, &fp8}) EXPECT_EQ(c->layer_indices(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(fs::path(fp8.file_of("model.layers.4.mlp.experts.15.down_proj.weight")).filename(),
            "model-00002-of-00002.safetensors");

  // intermediate_size 136: two row blocks, the second one partial (8 rows).
  const std::string name = "model.layers.3.mlp.gate_proj.weight";
  EXPECT_EQ(fp8.info(name).dtype, Dtype::F8_E4M3);
  EXPECT_EQ(fp8.info(name + "_scale_inv").shape, (Shape{2, 1}));
  const Tensor<float> master = f32.read_float(name, {136, 32});
  const Tensor<float> w_bf16 = bf16.read_float(name, {136, 32});
  const Tensor<float> w_fp8 = fp8.read_float(name, {136, 32});
  const Tensor<float> scales = fp8.read_float(name + "_scale_inv", {2, 1});
  for (int64_t i = 0; i < master.numel(); ++i) {
    ASSERT_EQ(w_bf16.data[i], round_to_bf16(master.data[i])) << i;
    const float s = scales.data[(i / 32) / 128];
    ASSERT_NEAR(w_fp8.data[i], master.data[i], std::fabs(master.data[i]) / 16 + s * std::ldexp(1.0f, -9)) << i;
  }
  // Each block's scale is its amax / 448: the largest weight maps to code 448.
  float amax = 0;
  for (int64_t i = 128 * 32; i < master.numel(); ++i) amax = std::max(amax, std::fabs(master.data[i]));
  EXPECT_FLOAT_EQ(scales.data[1], amax / 448.0f);
}
