#include "parallel/pipeline_stages.hpp"

#include <algorithm>
#include <optional>

#include "core/error.hpp"
#include "model/embedding.hpp"
#include "model/head.hpp"
#include "model/loss.hpp"
#include "model/rmsnorm.hpp"

namespace moelab::pipeline {

std::pair<int64_t, int64_t> stage_layers(int64_t num_layers, int num_stages, int stage) {
  MOE_CHECK(num_stages > 0 && stage >= 0 && stage < num_stages)
      << "stage " << stage << " out of " << num_stages << " stages";
  return {num_layers * stage / num_stages, num_layers * (stage + 1) / num_stages};
}

ModelStages::ModelStages(ModelParams<float>& params, const ModelConfig& config, int num_stages,
                         const std::vector<MicroBatch>& micro_batches, const ModelContext<float>& ctx)
    : params_(params), config_(config), num_stages_(num_stages), mbs_(micro_batches), ctx_(ctx) {
  MOE_CHECK(params.mtp.empty()) << "pipeline stages: MTP modules are not pipelined (set model.mtp_depth = 0)";
  MOE_CHECK(!micro_batches.empty()) << "pipeline stages: no micro-batches";
  int64_t max_len = 0;
  for (const auto& m : micro_batches) {
    MOE_CHECK(static_cast<int64_t>(m.token_ids.size()) == m.tokens() &&
              static_cast<int64_t>(m.targets.size()) == m.tokens())
        << "pipeline stages: micro-batch of " << m.token_ids.size() << " ids for " << m.batch << " x " << m.seq_len;
    max_len = std::max(max_len, m.seq_len);
  }
  rope_ = make_mla_rope<float>(config, max_len);
}

int64_t ModelStages::boundary_numel(int mb) const { return mbs_.at(mb).tokens() * config_.hidden_size; }

void ModelStages::forward(int mb, int stage, std::span<const float> input, std::span<float> output) {
  const MicroBatch& m = mbs_.at(mb);
  const int64_t T = m.tokens(), H = config_.hidden_size;
  const SeqShape shape{m.batch, m.seq_len};
  const auto [l0, l1] = stage_layers(config_.num_hidden_layers, num_stages_, stage);
  Saved& s = saved_[{mb, stage}];
  Tensor<float> x, y;
  if (stage == 0) {
    embedding_forward(x, *params_.embed_tokens, m.token_ids.data(), T);
  } else {
    MOE_CHECK(static_cast<int64_t>(input.size()) == T * H) << "pipeline forward: input of " << input.size();
    x = Tensor<float>({T, H}, std::vector<float>(input.begin(), input.end()));
  }
  s.layers.resize(l1 - l0);
  for (int64_t l = l0; l < l1; ++l) {
    block_forward(y, s.layers[l - l0], params_.layers[l], x, config_, shape, rope_, ctx_);
    std::swap(x, y);
    if (params_.layers[l].is_moe) {
      const auto& load = s.layers[l - l0].moe.expert_load();
      auto& acc = loads_[l];
      acc.resize(load.size(), 0.0);
      for (size_t e = 0; e < load.size(); ++e) acc[e] += static_cast<double>(load[e]);
    }
  }
  if (stage == num_stages_ - 1) {
    s.h = std::move(x);
    rmsnorm_forward(s.fn, s.fn_inv, s.h, *params_.norm, config_.rms_norm_eps);
    head_forward(s.probs, s.fn, *params_.lm_head, ctx_.precision);
    loss_sum_ += cross_entropy_forward(s.probs, m.targets.data(), T);
  } else {
    MOE_CHECK(static_cast<int64_t>(output.size()) == T * H) << "pipeline forward: output of " << output.size();
    std::copy(x.data.begin(), x.data.end(), output.begin());
  }
}

void ModelStages::backward_input(int mb, int stage, std::span<const float> grad_output, std::span<float> grad_input,
                                 bool defer_weight) {
  const MicroBatch& m = mbs_.at(mb);
  const int64_t T = m.tokens(), H = config_.hidden_size;
  const SeqShape shape{m.batch, m.seq_len};
  const auto [l0, l1] = stage_layers(config_.num_hidden_layers, num_stages_, stage);
  auto it = saved_.find({mb, stage});
  MOE_CHECK(it != saved_.end()) << "pipeline backward of micro-batch " << mb << " stage " << stage
                                << " before its forward";
  Saved& s = it->second;
  Tensor<float> dh, dx;
  std::optional<DeferWeightGrads<float>> defer;
  if (defer_weight) {
    MOE_CHECK(!deferred_.contains({mb, stage})) << "pipeline: two B_input of micro-batch " << mb << " stage " << stage;
    defer.emplace(deferred_[{mb, stage}]);
  }
  if (stage == num_stages_ - 1) {
    cross_entropy_backward(s.probs, m.targets.data(), T, 1.0 / static_cast<double>(mbs_.size()));
    Tensor<float> dfn;
    head_backward(dfn, *params_.lm_head, s.probs, s.fn, ctx_.precision);
    rmsnorm_backward(dh, *params_.norm, dfn, s.h, s.fn_inv);
  } else {
    MOE_CHECK(static_cast<int64_t>(grad_output.size()) == T * H) << "pipeline backward: grad of " << grad_output.size();
    dh = Tensor<float>({T, H}, std::vector<float>(grad_output.begin(), grad_output.end()));
  }
  for (int64_t l = l1 - 1; l >= l0; --l) {
    block_backward(dx, s.layers[l - l0], params_.layers[l], dh, config_, shape, rope_, ctx_);
    std::swap(dx, dh);
  }
  if (stage == 0) {
    embedding_backward(*params_.embed_tokens, dh, m.token_ids.data(), T);
  } else {
    MOE_CHECK(static_cast<int64_t>(grad_input.size()) == T * H) << "pipeline backward: grad_input of " << grad_input.size();
    std::copy(dh.data.begin(), dh.data.end(), grad_input.begin());
  }
  saved_.erase(it);
}

void ModelStages::backward_weight(int mb, int stage) {
  auto it = deferred_.find({mb, stage});
  MOE_CHECK(it != deferred_.end()) << "pipeline W of micro-batch " << mb << " stage " << stage
                                   << " without its B_input";
  it->second.flush();
  deferred_.erase(it);
}

void sum_pipeline_grads(ModelParams<float>& params, MPI_Comm comm) {
  int64_t n = 0;
  for (const auto& p : params.all()) n += p.grad.numel();
  std::vector<float> flat(static_cast<size_t>(n));
  int64_t o = 0;
  for (const auto& p : params.all()) {
    std::copy(p.grad.data.begin(), p.grad.data.end(), flat.begin() + o);
    o += p.grad.numel();
  }
  MPI_Allreduce(MPI_IN_PLACE, flat.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm);
  o = 0;
  for (auto& p : params.all()) {
    std::copy(flat.begin() + o, flat.begin() + o + p.grad.numel(), p.grad.data.begin());
    o += p.grad.numel();
  }
}

double pipeline_reference(ModelParams<float>& params, const ModelConfig& config,
                          const std::vector<MicroBatch>& micro_batches, const ModelContext<float>& ctx) {
  MOE_CHECK(!micro_batches.empty()) << "pipeline reference: no micro-batches";
  const double inv_c = 1.0 / static_cast<double>(micro_batches.size());
  ModelParams<float> scratch = params;  // each micro-batch's unscaled grads, scaled by 1/C then added
  double loss = 0;
  for (const auto& m : micro_batches) {
    scratch.zero_grad();
    ModelSaved<float> saved;
    loss += model_forward(saved, scratch, config, m.token_ids, m.targets, m.batch, m.seq_len, 0.0, ctx).total;
    model_backward(scratch, saved, config, ctx);
    for (size_t i = 0; i < params.all().size(); ++i) {
      auto& g = params.all()[i].grad.data;
      const auto& d = scratch.all()[i].grad.data;
      for (size_t k = 0; k < g.size(); ++k) g[k] += static_cast<float>(d[k] * inv_c);
    }
  }
  return loss * inv_c;
}

}  // namespace moelab::pipeline
