// Expert-parallel dispatch/combine on one process against memcpy of the same
// bytes (issue 5 "Speed"). The all-to-all over several ranks, and dispatch/
// combine between them, are measured by `moelab ep` under mpirun (nccl-tests
// table with memcpy in the same run); this benchmark isolates what a rank
// does besides moving bytes: encoding rows to the wire format (FP8 1x128
// tiles + scales, BF16), the plan, the packing into the all-to-all buffer,
// and decoding — with MPI_COMM_SELF (EP 1), so the exchange is a local copy.
//
// Shapes: DeepSeek-V3's hidden 7168 and top-8 over 256 experts; 512 tokens
// per rank (V3 runs thousands; 512 keeps the 2-core machine's run short).
// Counters: bytes_per_second counts the wire bytes (one record per token per
// destination rank: here one); vs_memcpy is the time over a memcpy of the
// same bytes measured in the same process just before.
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/rng.hpp"
#include "core/timer.hpp"
#include "parallel/dispatch_combine.hpp"
#include "parallel/topology.hpp"
#include "parallel/wire.hpp"

using namespace moelab;
using namespace moelab::parallel;

namespace {

constexpr int64_t kExperts = 256;
constexpr int kTopK = 8;

std::vector<float> random_vector(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

double memcpy_seconds(int64_t bytes) {
  std::vector<uint8_t> a(bytes, 1), b(bytes);
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    Timer t;
    std::memcpy(b.data(), a.data(), bytes);
    benchmark::DoNotOptimize(b.data());
    best = std::min(best, t.seconds());
  }
  return best;
}

void BM_memcpy(benchmark::State& state) {
  const int64_t bytes = state.range(0);
  std::vector<uint8_t> a(bytes, 1), b(bytes);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), bytes);
    benchmark::DoNotOptimize(b.data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}

void BM_wire_encode_decode(benchmark::State& state, WireFormat f) {
  const int64_t tokens = state.range(0), hidden = state.range(1);
  const auto x = random_vector(tokens * hidden, 1);
  const int64_t rec = wire_row_bytes(f, hidden);
  std::vector<uint8_t> wire(tokens * rec);
  std::vector<float> y(tokens * hidden);
  for (auto _ : state) {
    for (int64_t t = 0; t < tokens; ++t) wire_encode(f, &x[t * hidden], hidden, &wire[t * rec]);
    for (int64_t t = 0; t < tokens; ++t) wire_decode(f, &wire[t * rec], hidden, &y[t * hidden]);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * tokens * rec);
  state.counters["wire_bytes_per_token"] = static_cast<double>(rec);
}

// dispatch -> identity partial -> combine on EP 1 (MPI_COMM_SELF).
void BM_dispatch_combine_self(benchmark::State& state, WireFormat dispatch_format) {
  const int64_t tokens = state.range(0), hidden = state.range(1);
  Topology topo = Topology::create(MPI_COMM_SELF, 1, 1, kExperts);
  Dispatcher d(topo, {DispatchMode::direct, dispatch_format, WireFormat::bf16});
  const auto x = random_vector(tokens * hidden, 2);
  std::vector<int32_t> idx(tokens * kTopK);
  std::vector<float> w(tokens * kTopK, 1.0f / kTopK), y(tokens * hidden);
  Rng rng(3);
  for (int64_t t = 0; t < tokens; ++t)
    for (int k = 0; k < kTopK; ++k) idx[t * kTopK + k] = static_cast<int32_t>((t * 37 + k * 32 + rng.below(32)) % kExperts);
  const int64_t bytes = tokens * (8 + 8 * kTopK + wire_row_bytes(dispatch_format, hidden) +
                                  wire_row_bytes(WireFormat::bf16, hidden));
  const double copy_s = memcpy_seconds(bytes);
  Timer total;
  for (auto _ : state) {
    const Received& r = d.dispatch(x.data(), idx.data(), w.data(), tokens, hidden, kTopK);
    d.combine(r.x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double per_iter = total.seconds() / static_cast<double>(state.iterations());
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["vs_memcpy"] = per_iter / copy_s;
}

}  // namespace

BENCHMARK(BM_memcpy)->ArgNames({"bytes"})->Arg(512 * 7168 * 2)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_wire_encode_decode, fp8, WireFormat::fp8)
    ->ArgNames({"tokens", "hidden"})->Args({512, 7168})->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_wire_encode_decode, bf16, WireFormat::bf16)
    ->ArgNames({"tokens", "hidden"})->Args({512, 7168})->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_dispatch_combine_self, fp8, WireFormat::fp8)
    ->ArgNames({"tokens", "hidden"})->Args({512, 7168})->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_dispatch_combine_self, bf16, WireFormat::bf16)
    ->ArgNames({"tokens", "hidden"})->Args({512, 7168})->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  MPI_Finalize();
  return 0;
}
