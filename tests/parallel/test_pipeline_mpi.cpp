// Pipeline parallelism with real DeepSeek-V3 layers (issue 6), under mpirun
// -np 2, 4 and 8: for 1F1B, ZB1P, DualPipe and DualPipeV, one step of v3-tiny
// (one decoder layer per stage, MoE from layer 1) cut into stages gives the
// loss and every parameter gradient of a non-pipelined single-process step
// (model_forward/model_backward on the same micro-batches). The forwards are
// the same operations in the same order, so the loss is compared at 1e-6
// relative; gradients are accumulated in the schedule's order (and DualPipe
// sums two copies of a stage), so they are compared at
// max |g - g_ref| / max |g_ref| < 1e-5 per parameter (float32; measured
// figures are printed). The *MtpAux cases add an MTP module (depth 1, λ 0.3,
// on the last stage with the shared embedding and head) and a sequence-wise
// balance loss (α 0.05, large enough that its router-gate gradient is a
// visible part of the total) on every MoE layer, the MTP module's included;
// the main, MTP and balance losses are compared separately. DualPipeMtpDepth2BatchAux:
// two chained MTP modules and the batch-wise loss.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>

#include "mpi_world.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "model/config.hpp"
#include "parallel/pipeline_stages.hpp"
#include "parallel/schedule/generators.hpp"
#include "train/loop.hpp"

using namespace moelab;
using namespace moelab::schedule;
using moelab::pipeline::MicroBatch;
using moelab::test::world_rank;
using moelab::test::world_size;

namespace {

std::vector<MicroBatch> make_micro_batches(const ModelConfig& c, int count) {
  std::vector<MicroBatch> out;
  Rng rng(99);
  for (int i = 0; i < count; ++i) {
    MicroBatch m;
    m.batch = 1 + i % 2;
    m.seq_len = 6;
    for (int64_t t = 0; t < m.tokens(); ++t) {
      m.token_ids.push_back(static_cast<int32_t>(rng.next_u64() % c.vocab_size));
      m.targets.push_back(static_cast<int32_t>(rng.next_u64() % c.vocab_size));
    }
    out.push_back(std::move(m));
  }
  return out;
}

// MTP (λ 0.3) and a balance loss (α 0.05; sequence-wise unless told).
pipeline::ExtraLosses mtp_and_aux(const ModelConfig& cfg, train::AuxLossKind kind = train::AuxLossKind::sequence) {
  train::BalanceConfig balance;
  balance.aux_loss = kind;
  balance.aux_loss_coeff = 0.05;
  pipeline::ExtraLosses extra;
  extra.mtp_lambda = 0.3;
  extra.balance = [balance, cfg](MoeSaved<float>& moe, int64_t num_seqs, int64_t seq_len) {
    return train::add_balance_loss(moe, balance, num_seqs, seq_len, cfg.n_routed_experts, cfg.num_experts_per_tok);
  };
  return extra;
}

void check(const Schedule& s, bool with_mtp_and_aux = false, int mtp_depth = 1,
           train::AuxLossKind aux = train::AuxLossKind::sequence) {
  SCOPED_TRACE(s.kind + " on " + std::to_string(s.num_ranks) + " ranks, " + std::to_string(s.num_stages) +
               " stages, " + std::to_string(s.num_microbatches) + " micro-batches" +
               (with_mtp_and_aux ? ", MTP depth " + std::to_string(mtp_depth) + " + " +
                                       train::aux_loss_kind_name(aux) + " balance loss"
                                 : ""));
  ModelConfig cfg = model_preset("v3-tiny");
  cfg.num_nextn_predict_layers = with_mtp_and_aux ? mtp_depth : 0;
  cfg.num_hidden_layers = s.num_stages;
  const auto mbs = make_micro_batches(cfg, s.num_microbatches);
  ModelContext<float> ctx;
  const pipeline::ExtraLosses extra = with_mtp_and_aux ? mtp_and_aux(cfg, aux) : pipeline::ExtraLosses{};

  ModelParams<float> params(cfg, with_mtp_and_aux);
  params.init(5, 0.05);
  ModelParams<float> ref = params;
  const pipeline::LossSums ref_sums = pipeline::pipeline_reference(ref, cfg, mbs, ctx, extra);
  const double ref_loss = ref_sums.total;

  pipeline::ModelStages stages(params, cfg, s.num_stages, mbs, ctx, extra);
  execute(s, stages, MPI_COMM_WORLD);
  EXPECT_EQ(stages.live_activations(), 0u);
  pipeline::sum_pipeline_grads(params, MPI_COMM_WORLD);
  pipeline::LossSums sums = stages.loss_sums();
  pipeline::sum_losses(sums, MPI_COMM_WORLD);
  sums *= 1.0 / s.num_microbatches;
  const double loss = sums.total;
  EXPECT_NEAR(sums.loss, ref_sums.loss, 1e-6 * std::abs(ref_sums.loss));
  ASSERT_EQ(sums.mtp.size(), ref_sums.mtp.size());
  for (size_t k = 0; k < sums.mtp.size(); ++k) {
    EXPECT_NEAR(sums.mtp[k], ref_sums.mtp[k], 1e-6 * ref_sums.mtp[k]);
  }
  EXPECT_NEAR(sums.aux, ref_sums.aux, 1e-6 * ref_sums.aux);
  if (with_mtp_and_aux) {
    EXPECT_GT(ref_sums.aux, 0.0);
  }
  EXPECT_NEAR(loss, ref_loss, 1e-6 * std::abs(ref_loss));

  double worst = 0;
  int nonzero = 0;
  for (size_t i = 0; i < params.all().size(); ++i) {
    const auto& g = params.all()[i].grad.data;
    const auto& r = ref.all()[i].grad.data;
    double rmax = 0, dmax = 0;
    for (size_t k = 0; k < g.size(); ++k) {
      rmax = std::max(rmax, double(std::abs(r[k])));
      dmax = std::max(dmax, double(std::abs(g[k] - r[k])));
    }
    if (rmax == 0) {
      EXPECT_EQ(dmax, 0.0) << params.all()[i].name;
      continue;
    }
    ++nonzero;
    const double rel = dmax / rmax;
    worst = std::max(worst, rel);
    EXPECT_LT(rel, 1e-5) << params.all()[i].name;
  }
  EXPECT_GT(nonzero, 10);
  if (world_rank() == 0)
    std::printf("  %s np=%d S=%d C=%d%s: loss %.7f (ref %.7f; mtp %.7f, aux %.7f), worst per-parameter "
                "max|dg|/max|g_ref| %.2e\n",
                s.kind.c_str(), s.num_ranks, s.num_stages, s.num_microbatches, with_mtp_and_aux ? " MTP+aux" : "",
                loss, ref_loss, sums.mtp.empty() ? 0.0 : sums.mtp[0], sums.aux, worst);
}

}  // namespace

TEST(PipelineModel, OneFOneB) { check(make_1f1b(world_size(), 2 * world_size() + 1)); }
TEST(PipelineModel, ZeroBubbleH1) { check(make_zb1p(world_size(), 2 * world_size())); }
TEST(PipelineModel, DualPipe) { check(make_dualpipe(world_size(), 2 * world_size())); }
TEST(PipelineModel, DualPipeV) { check(make_dualpipev(world_size(), 2 * world_size())); }
TEST(PipelineModel, OneFOneBMtpAux) { check(make_1f1b(world_size(), 2 * world_size() + 1), true); }
TEST(PipelineModel, ZeroBubbleH1MtpAux) { check(make_zb1p(world_size(), 2 * world_size()), true); }
TEST(PipelineModel, DualPipeMtpAux) { check(make_dualpipe(world_size(), 2 * world_size()), true); }
TEST(PipelineModel, DualPipeVMtpAux) { check(make_dualpipev(world_size(), 2 * world_size()), true); }
// Two MTP modules chained on the last stage, and the batch-wise loss (one group per micro-batch,
// as pipeline_reference groups it).
TEST(PipelineModel, DualPipeMtpDepth2BatchAux) {
  check(make_dualpipe(world_size(), 2 * world_size()), true, 2, train::AuxLossKind::batch);
}

TEST(PipelineModel, StageLayersCoverEveryLayerOnce) {
  for (int64_t L : {1, 2, 7, 61})
    for (int S : {1, 2, 3, 8}) {
      int64_t next = 0;
      for (int s = 0; s < S; ++s) {
        const auto [a, b] = pipeline::stage_layers(L, S, s);
        EXPECT_EQ(a, next);
        EXPECT_LE(b - a, (L + S - 1) / S);
        next = b;
      }
      EXPECT_EQ(next, L);
    }
}

// B_input leaves every linear weight's gradient untouched and W adds it:
// after both, the gradients equal a full B's (one process, one stage), with
// and without the MTP module (its eh_proj and block linears deferred too)
// and the balance loss.
void check_weight_gradient_deferral(bool with_mtp_and_aux) {
  SCOPED_TRACE(with_mtp_and_aux ? "MTP + aux loss" : "main model only");
  ModelConfig cfg = model_preset("v3-tiny");
  cfg.num_nextn_predict_layers = with_mtp_and_aux ? 1 : 0;
  const auto mbs = make_micro_batches(cfg, 2);
  ModelContext<float> ctx;
  const pipeline::ExtraLosses extra = with_mtp_and_aux ? mtp_and_aux(cfg) : pipeline::ExtraLosses{};
  ModelParams<float> full(cfg, with_mtp_and_aux);
  full.init(3, 0.05);
  ModelParams<float> split = full;
  pipeline::ModelStages a(full, cfg, 1, mbs, ctx, extra), b(split, cfg, 1, mbs, ctx, extra);
  a.forward(0, 0, {}, {});
  a.backward_input(0, 0, {}, {}, false);
  b.forward(0, 0, {}, {});
  b.backward_input(0, 0, {}, {}, true);
  EXPECT_EQ(b.live_activations(), 1u);
  std::vector<const Param<float>*> linears{&split.at("model.layers.0.self_attn.o_proj.weight"),
                                           &split.at("lm_head.weight"),
                                           &split.at("model.layers.1.mlp.experts.0.down_proj.weight"),
                                           &split.at("model.layers.1.mlp.gate.weight")};
  if (with_mtp_and_aux) {
    linears.push_back(&split.at("model.layers.2.eh_proj.weight"));
    linears.push_back(&split.at("model.layers.2.self_attn.o_proj.weight"));
    linears.push_back(&split.at("model.layers.2.mlp.gate.weight"));
  }
  for (const Param<float>* p : linears)
    for (float g : p->grad.data) ASSERT_EQ(g, 0.0f) << p->name << " got a gradient before W";
  EXPECT_NE(split.at("model.norm.weight").grad.data[0], 0.0f) << "norm weights stay in B_input";
  b.backward_weight(0, 0);
  EXPECT_EQ(b.live_activations(), 0u);
  for (size_t i = 0; i < full.all().size(); ++i)
    for (size_t k = 0; k < full.all()[i].grad.data.size(); ++k)
      ASSERT_NEAR(split.all()[i].grad.data[k], full.all()[i].grad.data[k],
                  1e-6 * (1.0 + std::abs(full.all()[i].grad.data[k])))
          << full.all()[i].name;
  EXPECT_THROW(b.backward_weight(0, 0), moelab::Error);
}

TEST(PipelineModel, WeightGradientDeferral) { check_weight_gradient_deferral(false); }
TEST(PipelineModel, WeightGradientDeferralMtpAux) { check_weight_gradient_deferral(true); }
