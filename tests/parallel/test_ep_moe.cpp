// The MoE layer with expert-parallel routed experts (parallel/ep_experts)
// equals the single-process layer (LocalExperts), under mpirun -np 4:
// EP = 1, 2, 4 (DP = 4, 2, 1), direct and two_hop, FP32 wire.
//
// Every rank computes the reference on the whole global batch (48 tokens of
// v3-tiny: 8 experts, top-2, group-limited routing with a non-zero bias);
// in the EP run world rank w holds tokens [12w, 12w + 12). Compared:
//   y, dx (the rank's rows), router and shared-expert grads (summed over the
//   world), this rank's experts' grads (summed over its DP group), and the
//   expert loads (summed over the world) — loads exactly, the rest within
//   1e-5 of the tensor's max |ref|: only reduction order differs (GEMM row
//   blocks, partial sums over ranks, the all-reduce), FP32 unit roundoff is
//   6e-8 and the sums are a few dozen terms deep.
// With the V3 wire formats (FP8 dispatch, BF16 combine) the same comparison
// holds within 1e-1 of max |ref| (FP8 E4M3 has 3 mantissa bits: up to 2^-4
// relative per value; the worst grad seen is 5.2e-2).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/rng.hpp"
#include "model/model.hpp"
#include "model/moe.hpp"
#include "parallel/ep_experts.hpp"

namespace moelab::parallel {
namespace {

constexpr int64_t kGlobalTokens = 48;

ModelParams<float> make_params(const ModelConfig& c) {
  ModelParams<float> p(c, false);
  p.init(7, 0.3);
  Rng rng(107);
  for (auto& prm : p.all())
    if (!prm.trainable)
      for (auto& v : prm.value.data) v = static_cast<float>(0.1 * rng.normal());
  return p;
}

Tensor<float> random_tensor(Shape s, uint64_t seed) {
  Tensor<float> t(std::move(s));
  Rng rng(seed);
  for (auto& v : t.data) v = static_cast<float>(rng.normal());
  return t;
}

int moe_layer(const ModelConfig& c) {
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    if (c.is_moe_layer(l)) return static_cast<int>(l);
  return -1;
}

double max_abs(const float* v, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(v[i])));
  return m;
}

// max |got - ref| / max |ref| over n values.
double rel_err(const float* got, const float* ref, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double(got[i]) - ref[i]));
  return m / std::max(max_abs(ref, n), 1e-30);
}

struct Reference {
  Tensor<float> y, dx;
  std::vector<int64_t> load;
  ModelParams<float> params;
};

Reference reference(const ModelConfig& c, int layer, const Tensor<float>& x, const Tensor<float>& dy) {
  Reference r{{}, {}, {}, make_params(c)};
  const ModelContext<float> ctx;
  MoeSaved<float> s;
  moe_forward(r.y, s, r.params.layers[layer].moe, x, c, layer, ctx);
  moe_backward(r.dx, s, r.params.layers[layer].moe, dy, static_cast<const Tensor<float>*>(nullptr), c, ctx);
  r.load = s.expert_load();
  return r;
}

void run_case(int ep, DispatchOptions opts, double tol) {
  const ModelConfig c = model_preset("v3-tiny");
  const int layer = moe_layer(c);
  ASSERT_GE(layer, 0);
  const int64_t H = c.hidden_size;
  const Tensor<float> x = random_tensor({kGlobalTokens, H}, 11), dy = random_tensor({kGlobalTokens, H}, 12);
  const Reference ref = reference(c, layer, x, dy);

  Topology topo = Topology::create(MPI_COMM_WORLD, ep, 2, c.n_routed_experts);
  const int64_t T = kGlobalTokens / topo.world_size, first = topo.world_rank * T;
  Tensor<float> xs({T, H}), dys({T, H});
  std::copy_n(x.ptr() + first * H, T * H, xs.ptr());
  std::copy_n(dy.ptr() + first * H, T * H, dys.ptr());

  ModelParams<float> params = make_params(c);
  auto traffic = std::make_shared<TrafficStats>();
  ModelContext<float> ctx;
  ctx.make_experts = ep_experts_factory(topo, opts, traffic);
  MoeSaved<float> s;
  Tensor<float> y, dx;
  moe_forward(y, s, params.layers[layer].moe, xs, c, layer, ctx);
  moe_backward(dx, s, params.layers[layer].moe, dys, static_cast<const Tensor<float>*>(nullptr), c, ctx);
  allreduce_grads(params.all(), topo);

  const double err_y = rel_err(y.ptr(), ref.y.ptr() + first * H, T * H);
  const double err_dx = rel_err(dx.ptr(), ref.dx.ptr() + first * H, T * H);
  EXPECT_LE(err_y, tol) << "y";
  EXPECT_LE(err_dx, tol) << "dx";
  double err_grad = 0.0;
  std::vector<int64_t> load = s.expert_load();
  MPI_Allreduce(MPI_IN_PLACE, load.data(), static_cast<int>(load.size()), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  if (opts.dispatch_format == WireFormat::fp32) {
    EXPECT_EQ(load, ref.load) << "expert loads";
  }
  int compared = 0;
  for (size_t i = 0; i < params.all().size(); ++i) {
    const Param<float>& p = params.all()[i];
    const Param<float>& q = ref.params.all()[i];
    if (!p.trainable || max_abs(q.grad.ptr(), q.grad.numel()) == 0.0) continue;  // unused by this layer
    int64_t e = -1;
    if (is_expert_param(p.name, &e) && !topo.is_local_expert(e)) continue;
    const double err = rel_err(p.grad.ptr(), q.grad.ptr(), p.grad.numel());
    EXPECT_LE(err, tol) << p.name;
    err_grad = std::max(err_grad, err);
    ++compared;
  }
  double errs[3] = {err_y, err_dx, err_grad};
  MPI_Allreduce(MPI_IN_PLACE, errs, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (topo.world_rank == 0)
    std::printf("  ep %d %s %s/%s: max err / max|ref|: y %.2e  dx %.2e  grads %.2e (tol %.0e)\n", ep,
                dispatch_mode_name(opts.mode).c_str(), wire_format_name(opts.dispatch_format).c_str(),
                wire_format_name(opts.combine_format).c_str(), errs[0], errs[1], errs[2], tol);
  EXPECT_GT(compared, 3);
  EXPECT_EQ(traffic->tokens, T) << "the forward dispatched the rank's tokens once";
  if (ep > 1) {
    EXPECT_GT(traffic->combine.bytes_sent_intra + traffic->combine.bytes_sent_inter, 0);
  }
}

TEST(EpMoe, MatchesLocalExpertsFp32) {
  for (int ep : {1, 2, 4})
    for (DispatchMode mode : {DispatchMode::direct, DispatchMode::two_hop}) {
      SCOPED_TRACE("ep=" + std::to_string(ep) + " " + dispatch_mode_name(mode));
      run_case(ep, {mode, WireFormat::fp32, WireFormat::fp32}, 1e-5);
    }
}

TEST(EpMoe, V3WireFormatsStayClose) {
  SCOPED_TRACE("ep=4 two_hop fp8/bf16");
  run_case(4, {DispatchMode::two_hop, WireFormat::fp8, WireFormat::bf16}, 1e-1);
}

}  // namespace
}  // namespace moelab::parallel
