// Hot kernels for instruction counting: `callgrind_kernels KERNEL ITERATIONS`
// runs one kernel ITERATIONS times inside moelab_callgrind_region(), the only
// function `moelab bench` has valgrind collect (--collect-atstart=no
// --toggle-collect=moelab_callgrind_region), so input setup is not counted.
// Instructions per call are a figure without timing noise: on a shared,
// loaded machine they are the strict regression gate (results/baselines/).
//
// NOTE: built without -march=native (valgrind 3.19 cannot decode AVX-512) and
// run with OPENBLAS_CORETYPE=Haswell, OMP/OpenBLAS on one thread, so the
// counts depend on the code, not on the host's detected features or timing.
// Shapes are small versions of the micro-benchmarks' (valgrind runs ~50x slower).
//
// Adding a kernel: one line in kKernels below and one line in the suite table
// (src/bench/suite.cpp).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/gemm.hpp"
#include "core/rng.hpp"
#include "numerics/errcurve.hpp"
#include "numerics/fp8_gemm.hpp"
#include "numerics/quantize.hpp"

using namespace moelab;

namespace {

std::vector<float> random_matrix(int64_t n, uint64_t seed, double stddev = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(stddev * rng.normal());
  return v;
}

// A kernel: setup returns the call to count.
struct Kernel {
  const char* name;
  const char* what;
  std::function<std::function<void()>()> setup;
};

std::function<void()> gemm_kernel(cpu::GemmPrecision precision) {
  // v3-small routed expert (inner 128, hidden 256) on 512 tokens: bench_gemm's
  // last case with 8x fewer tokens (valgrind runs AVX2 FMA code ~1000x slower).
  const int64_t m = 512, n = 128, k = 256;
  auto a = std::make_shared<std::vector<float>>(random_matrix(m * k, 1));
  auto b = std::make_shared<std::vector<float>>(random_matrix(n * k, 2));
  auto c = std::make_shared<std::vector<float>>(m * n);
  return [=] { cpu::gemm(false, true, m, n, k, 1.0f, a->data(), k, b->data(), k, 0.0f, c->data(), n, precision); };
}

const std::vector<Kernel>& kernels() {
  static const std::vector<Kernel> table = {
      {"gemm_fp32", "sgemm y[512,128] = x[512,256] W[128,256]^T (OpenBLAS, one thread)",
       [] { return gemm_kernel(cpu::GemmPrecision::fp32); }},
      {"gemm_bf16", "BF16-input GEMM, same shape", [] { return gemm_kernel(cpu::GemmPrecision::bf16); }},
      {"fp8_quantize_1x128", "E4M3 quantize of x[128,7168] with 1x128 tiles",
       [] {
         auto x = std::make_shared<std::vector<float>>(random_matrix(128 * 7168, 3));
         return std::function<void()>([x] {
           auto q = numerics::quantize(x->data(), 128, 7168,
                                       {numerics::Fp8Kind::e4m3, numerics::Granularity::tile_1x128, false});
           if (q.codes.empty()) std::abort();
         });
       }},
      {"fp8_gemm_acc13", "emulated FP8 GEMM [32,128,1024], 13-bit accumulator, promotion every 128",
       [] {
         const int64_t m = 32, n = 128, k = 1024;
         auto a = random_matrix(m * k, 4), w = random_matrix(n * k, 5, 0.02);
         auto qa = std::make_shared<numerics::QuantizedTensor>(numerics::quantize_gemm_a(a.data(), m, k, numerics::GemmQuant::block));
         auto qw = std::make_shared<numerics::QuantizedTensor>(numerics::quantize_gemm_w(w.data(), n, k, numerics::GemmQuant::block));
         return std::function<void()>([qa, qw] {
           auto y = numerics::fp8_gemm(*qa, *qw, {13, 128});
           if (y.empty()) std::abort();
         });
       }},
  };
  return table;
}

}  // namespace

// The counted region (extern "C": one unmangled name for --toggle-collect).
extern "C" __attribute__((noinline)) void moelab_callgrind_region(const std::function<void()>* call, int iterations) {
  for (int i = 0; i < iterations; ++i) (*call)();
  asm volatile("" ::: "memory");
}

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--list") == 0 || std::strcmp(argv[1], "--help") == 0) {
    std::printf("usage: callgrind_kernels KERNEL [ITERATIONS]\nkernels:\n");
    for (const auto& k : kernels()) std::printf("  %-20s %s\n", k.name, k.what);
    return argc < 2 ? 2 : 0;
  }
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 1;
  for (const auto& k : kernels()) {
    if (k.name != std::string(argv[1])) continue;
    const std::function<void()> call = k.setup();
    moelab_callgrind_region(&call, iterations);
    std::printf("%s: %d iterations\n", k.name, iterations);
    return 0;
  }
  std::fprintf(stderr, "error: unknown kernel '%s' (callgrind_kernels --list)\n", argv[1]);
  return 2;
}
