#include "parallel/pipeline_stages.hpp"

#include <algorithm>
#include <optional>

#include "core/error.hpp"
#include "model/embedding.hpp"

namespace moelab::pipeline {

std::pair<int64_t, int64_t> stage_layers(int64_t num_layers, int num_stages, int stage) {
  MOE_CHECK(num_stages > 0 && stage >= 0 && stage < num_stages)
      << "stage " << stage << " out of " << num_stages << " stages";
  return {num_layers * stage / num_stages, num_layers * (stage + 1) / num_stages};
}

LossSums& LossSums::operator+=(const LossSums& o) {
  loss += o.loss;
  if (mtp.size() < o.mtp.size()) mtp.resize(o.mtp.size(), 0.0);
  for (size_t k = 0; k < o.mtp.size(); ++k) mtp[k] += o.mtp[k];
  aux += o.aux;
  total += o.total;
  return *this;
}

LossSums& LossSums::operator*=(double scale) {
  loss *= scale;
  for (double& l : mtp) l *= scale;
  aux *= scale;
  total *= scale;
  return *this;
}

void sum_losses(LossSums& s, MPI_Comm comm) {
  std::vector<double> flat{s.loss, s.aux, s.total};
  flat.insert(flat.end(), s.mtp.begin(), s.mtp.end());
  MPI_Allreduce(MPI_IN_PLACE, flat.data(), static_cast<int>(flat.size()), MPI_DOUBLE, MPI_SUM, comm);
  s.loss = flat[0];
  s.aux = flat[1];
  s.total = flat[2];
  std::copy(flat.begin() + 3, flat.end(), s.mtp.begin());
}

ModelStages::ModelStages(ModelParams<float>& params, const ModelConfig& config, int num_stages,
                         const std::vector<MicroBatch>& micro_batches, const ModelContext<float>& ctx,
                         const ExtraLosses& extra)
    : params_(params), config_(config), num_stages_(num_stages), mbs_(micro_batches), ctx_(ctx), extra_(extra) {
  MOE_CHECK(!micro_batches.empty()) << "pipeline stages: no micro-batches";
  int64_t max_len = 0;
  for (const auto& m : micro_batches) {
    MOE_CHECK(static_cast<int64_t>(m.token_ids.size()) == m.tokens() &&
              static_cast<int64_t>(m.targets.size()) == m.tokens())
        << "pipeline stages: micro-batch of " << m.token_ids.size() << " ids for " << m.batch << " x " << m.seq_len;
    MOE_CHECK(m.seq_len > static_cast<int64_t>(params.mtp.size()))
        << "pipeline stages: MTP depth " << params.mtp.size() << " needs sequences longer than that, got " << m.seq_len;
    max_len = std::max(max_len, m.seq_len);
  }
  rope_ = make_mla_rope<float>(config, max_len);
  sums_.mtp.assign(params.mtp.size(), 0.0);  // the same length on every rank, for sum_losses
}

void ModelStages::after_moe_forward(int64_t layer, MoeSaved<float>& moe, SeqShape shape) {
  const auto& load = moe.expert_load();
  auto& acc = loads_[layer];
  acc.resize(load.size(), 0.0);
  for (size_t e = 0; e < load.size(); ++e) acc[e] += static_cast<double>(load[e]);
  if (!extra_.balance) return;
  const double aux = extra_.balance(moe, shape.batch, shape.seq_len);
  sums_.aux += aux;
  sums_.total += aux;
  const float inv_c = static_cast<float>(1.0 / static_cast<double>(mbs_.size()));
  for (float& g : moe.d_scores.data) g *= inv_c;
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
    if (params_.layers[l].is_moe) after_moe_forward(l, s.layers[l - l0].moe, shape);
  }
  if (stage == num_stages_ - 1) {
    ModelSaved<float>& head = s.head;
    head.shape = shape;
    head.mtp_lambda = extra_.mtp_lambda;
    head.token_ids = m.token_ids;
    head.targets = m.targets;
    head.h = std::move(x);
    const ModelLosses l = model_head_forward(head, params_, config_, rope_, ctx_);
    sums_.loss += l.loss;
    for (size_t k = 0; k < l.mtp_losses.size(); ++k) sums_.mtp[k] += l.mtp_losses[k];
    sums_.total += l.total;
    for (size_t k = 0; k < head.mtp.size(); ++k) {
      const BlockParams<float>& block = params_.mtp[k].block;
      if (block.is_moe) after_moe_forward(block.layer, head.mtp[k].block.moe, head.mtp[k].shape);
    }
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
    model_head_backward(dh, params_, s.head, config_, rope_, 1.0 / static_cast<double>(mbs_.size()), ctx_);
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

LossSums pipeline_reference(ModelParams<float>& params, const ModelConfig& config,
                            const std::vector<MicroBatch>& micro_batches, const ModelContext<float>& ctx,
                            const ExtraLosses& extra) {
  MOE_CHECK(!micro_batches.empty()) << "pipeline reference: no micro-batches";
  const double inv_c = 1.0 / static_cast<double>(micro_batches.size());
  ModelParams<float> scratch = params;  // each micro-batch's unscaled grads, scaled by 1/C then added
  LossSums sums;
  for (const auto& m : micro_batches) {
    scratch.zero_grad();
    ModelSaved<float> saved;
    const ModelLosses l = model_forward(saved, scratch, config, m.token_ids, m.targets, m.batch, m.seq_len,
                                        extra.mtp_lambda, ctx);
    LossSums one{l.loss, l.mtp_losses, 0.0, l.total};
    if (extra.balance)
      for_each_moe_layer(scratch, saved, [&](BlockParams<float>&, MoeSaved<float>& moe, SeqShape shape) {
        one.aux += extra.balance(moe, shape.batch, shape.seq_len);
      });
    one.total += one.aux;
    sums += one;
    model_backward(scratch, saved, config, ctx);
    for (size_t i = 0; i < params.all().size(); ++i) {
      auto& g = params.all()[i].grad.data;
      const auto& d = scratch.all()[i].grad.data;
      for (size_t k = 0; k < g.size(); ++k) g[k] += static_cast<float>(d[k] * inv_c);
    }
  }
  sums *= inv_c;
  return sums;
}

}  // namespace moelab::pipeline
