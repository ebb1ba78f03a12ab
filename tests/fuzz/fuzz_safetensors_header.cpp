// libFuzzer target: arbitrary bytes as a whole .safetensors file through the
// header parser, then every readable tensor through the element decoders.
// The only acceptable outcome for bad bytes is a moelab::Error; anything else
// (a crash, a sanitizer report, another exception type) is a bug.
//   scripts/fuzz.sh [seconds]     build with clang -fsanitize=fuzzer and run
//   ctest -R fuzz_corpus          replay tests/fuzz/corpus with the normal build
#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moelab::st;
  try {
    const Header h = parse_header(data, size, "fuzz.safetensors");
    std::vector<float> out;
    for (const TensorInfo& t : h.tensors) {
      // Everything the parser accepted must lie inside the buffer.
      if (h.data_offset + t.end > size) __builtin_trap();
      if (t.numel() > (1 << 16)) continue;
      out.resize(static_cast<size_t>(t.numel()));
      try {
        decode_to_float(t.dtype, data + h.data_offset + t.begin, t.numel(), out.data(), t.name);
      } catch (const moelab::Error&) {
        // integer dtypes are not readable as float: a clean error
      }
    }
  } catch (const moelab::Error&) {
  }
  return 0;
}
