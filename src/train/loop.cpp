#include "train/loop.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "train/checkpoint.hpp"
#include "train/optimizer.hpp"

namespace moelab::train {

ModelConfig train_model_config(const TrainConfig& c) {
  ModelConfig m = load_model_config(c.model);
  m.num_nextn_predict_layers = c.mtp_depth;
  if (c.num_groups > 0) m.n_group = c.num_groups;
  if (c.group_topk > 0) m.topk_group = c.group_topk;
  m.validate();
  return m;
}

namespace {

GemmPrecision parse_precision(const std::string& text) {
  if (text == "fp32") return GemmPrecision::fp32;
  if (text == "bf16") return GemmPrecision::bf16;
  if (text == "fp8") return GemmPrecision::fp8;
  MOE_FAIL() << "model.precision '" << text << "': expected fp32, bf16 or fp8";
}

std::vector<ParamSlot> trainable_slots(ModelParams<float>& params) {
  std::vector<ParamSlot> slots;
  for (auto& p : params.all()) {
    if (!p.trainable) continue;
    // Decoupled weight decay on matrices only; RMSNorm weights (1-D) are exempt, as in Megatron-Core.
    slots.push_back({p.name, p.value.ptr(), p.grad.ptr(), p.value.numel(), p.value.rank() >= 2});
  }
  return slots;
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

struct EvalResult {
  double loss = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> loss_by_domain;                // [domains]
  std::vector<double> maxvio_global;                 // [layers]
  std::vector<float> expert_tokens;                  // [layers, E]
  std::vector<float> expert_tokens_by_domain;        // [layers, domains, E]
};

// Main-model loss on the held-out batches (MTP modules run but are not
// counted: the paper's evaluation discards them), per-domain loss, and the
// expert load of the whole held-out set per layer and per domain.
EvalResult evaluate(ModelParams<float>& params, const ModelConfig& mcfg, const std::vector<Batch>& batches,
                    int num_domains, const ModelContext<float>& ctx, const LoadReducer& reduce_load) {
  EvalResult r;
  if (batches.empty()) return r;
  ModelSaved<float> saved;
  const int64_t E = mcfg.n_routed_experts, V = mcfg.vocab_size;
  std::vector<double> sum_by_domain(num_domains, 0.0), count_by_domain(num_domains, 0.0);
  double sum = 0, count = 0;
  std::vector<std::vector<double>> load;
  for (const Batch& b : batches) {
    model_forward(saved, params, mcfg, b.inputs, b.targets, b.batch_size, b.seq_len, 0.0, ctx);
    for (int64_t t = 0; t < b.num_tokens(); ++t) {
      const double p = std::max(static_cast<double>(saved.probs[t * V + b.targets[t]]), 1e-30);
      const double nll = -std::log(p);
      sum += nll;
      count += 1;
      sum_by_domain[b.domain[t]] += nll;
      count_by_domain[b.domain[t]] += 1;
    }
    auto layers = moe_layers(params, saved);
    if (load.empty()) {
      load.assign(layers.size(), std::vector<double>(E, 0.0));
      r.expert_tokens_by_domain.assign(layers.size() * num_domains * E, 0.0f);
    }
    for (size_t li = 0; li < layers.size(); ++li) {
      const RouterSaved<float>& router = layers[li].saved->router;
      const int64_t K = router.topk_idx.dim(1), rows = router.topk_idx.dim(0);
      for (int64_t row = 0; row < rows; ++row) {
        // Row of this layer's input → token of the batch (MTP layers see S - k positions per sequence).
        const int64_t seq = row / layers[li].seq_len, pos = row % layers[li].seq_len;
        const int domain = b.domain[seq * b.seq_len + pos];
        for (int64_t k = 0; k < K; ++k) {
          const int32_t e = router.topk_idx[row * K + k];
          load[li][e] += 1;
          r.expert_tokens_by_domain[(li * num_domains + domain) * E + e] += 1.0f;
        }
      }
    }
  }
  r.loss = sum / count;
  for (int d = 0; d < num_domains; ++d)
    r.loss_by_domain.push_back(count_by_domain[d] > 0 ? sum_by_domain[d] / count_by_domain[d]
                                                      : std::numeric_limits<double>::quiet_NaN());
  for (auto& l : load) {
    reduce_load(l);
    r.maxvio_global.push_back(max_violation(l));
    for (double x : l) r.expert_tokens.push_back(static_cast<float>(x));
  }
  return r;
}

void log_eval(ResultsRun* run, int64_t step, const EvalResult& e, int num_domains, int64_t num_layers, int64_t E) {
  if (!run) return;
  run->append("eval/step", static_cast<double>(step));
  run->append("eval/loss", e.loss);
  run->append_row<double>("eval/loss_by_domain", {num_domains}, e.loss_by_domain.data());
  if (num_layers > 0) {
    run->append_row<double>("eval/maxvio_global", {num_layers}, e.maxvio_global.data());
    run->append_row<float>("eval/expert_tokens", {num_layers, E}, e.expert_tokens.data());
    run->append_row<float>("eval/expert_tokens_by_domain", {num_layers, num_domains, E},
                           e.expert_tokens_by_domain.data());
  }
  run->flush();
}

std::string fmt(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

}  // namespace

TrainSummary run_training(const TrainConfig& cfg, ResultsRun* run, const TrainHooks& hooks) {
  cfg.validate();
  const ModelConfig mcfg = train_model_config(cfg);
  std::ostream* out = hooks.progress;

  // ---- data ----------------------------------------------------------------
  const Corpus corpus = load_corpus(cfg.corpus);
  MOE_CHECK(corpus.vocab_size <= mcfg.vocab_size)
      << cfg.corpus << ": vocabulary of " << corpus.vocab_size << " tokens does not fit model " << mcfg.name
      << " (vocab_size " << mcfg.vocab_size << ")";
  const CorpusSplit split = split_corpus(corpus, cfg.heldout_every);
  const BatchIterator batches(split.train, cfg.batch_size, cfg.seq_len, cfg.seed);
  const std::vector<Batch> evals =
      cfg.eval_every > 0 || cfg.eval_batches > 0
          ? eval_batches(split.heldout, cfg.batch_size, cfg.seq_len, cfg.eval_batches)
          : std::vector<Batch>{};
  const int num_domains = corpus.num_domains();

  // ---- model and optimizer ---------------------------------------------------
  ModelParams<float> params(mcfg, cfg.mtp_depth > 0);
  params.init(cfg.seed, cfg.init_std);
  ModelContext<float> ctx;
  ctx.precision = parse_precision(cfg.precision);
  cfg.numerics.apply();  // FP8 accumulator, promotion and tiles for the fp8 linear layers
  if (hooks.setup_context) hooks.setup_context(ctx);
  const std::vector<ParamSlot> slots = trainable_slots(params);
  AdamW optimizer(cfg.adamw, slots);
  int64_t start_step = 0;
  if (!cfg.resume.empty()) {
    start_step = load_checkpoint(cfg.resume, params, optimizer);
    if (out) *out << "resumed from " << cfg.resume << " at step " << start_step << "\n";
  }

  const int64_t E = mcfg.n_routed_experts;
  const int64_t tokens_per_step = cfg.batch_size * cfg.seq_len;
  if (out) {
    *out << "train " << mcfg.name << ": " << params.numel() << " parameters, " << mcfg.num_moe_layers()
         << " MoE layers x " << E << " experts (top-" << mcfg.num_experts_per_tok << ")"
         << (cfg.mtp_depth ? ", MTP depth " + std::to_string(cfg.mtp_depth) : std::string()) << "; "
         << split.train.size() << " training / " << split.heldout.size() << " held-out tokens; "
         << tokens_per_step << " tokens per step; balance " << cfg.balance_method << " (bias "
         << (cfg.balance.expert_bias ? "on" : "off") << ", " << aux_loss_kind_name(cfg.balance.aux_loss) << " α "
         << cfg.balance.aux_loss_coeff << ")\n";
  }
  if (run) {
    run->group().set_attr("model_config_json", model_config_to_json(mcfg));
    run->group().set_attr("params_total", params.numel());
    run->group().set_attr("start_step", start_step);
    std::string names;
    for (const auto& n : corpus.domain_names) names += (names.empty() ? "" : ",") + n;
    run->group().group("eval").set_attr("domain_names", names);
  }

  TrainSummary summary;
  summary.final_eval_loss = std::numeric_limits<double>::quiet_NaN();
  ModelSaved<float> saved;
  std::vector<int64_t> layer_ids;
  double tokens_per_s_sum = 0;
  int64_t timed_steps = 0;
  int64_t last_eval_step = -1;
  auto maybe_checkpoint = [&](int64_t next_step, bool force) {
    if (cfg.checkpoint_dir.empty() || !hooks.write_checkpoints) return;
    if (!force && !(cfg.checkpoint_every > 0 && next_step % cfg.checkpoint_every == 0)) return;
    save_checkpoint(cfg.checkpoint_dir, params, optimizer, next_step);
  };
  auto do_eval = [&](int64_t step_done) {
    EvalResult e = evaluate(params, mcfg, evals, num_domains, ctx,
                            hooks.reduce_eval_load ? hooks.reduce_eval_load : hooks.reduce_load);
    log_eval(run, step_done, e, num_domains, static_cast<int64_t>(e.maxvio_global.size()), E);
    summary.final_eval_loss = e.loss;
    summary.final_maxvio_global = mean(e.maxvio_global);
    last_eval_step = step_done;
    if (out) {
      *out << "  eval @" << step_done << ": loss " << fmt("%.4f", e.loss);
      for (int d = 0; d < num_domains; ++d) *out << "  " << corpus.domain_names[d] << " " << fmt("%.4f", e.loss_by_domain[d]);
      *out << "  MaxVio_global " << fmt("%.3f", summary.final_maxvio_global) << "\n";
    }
  };

  for (int64_t step = start_step; step < cfg.steps; ++step) {
    if (cfg.stop_after >= 0 && step >= cfg.stop_after) {
      maybe_checkpoint(step, true);
      summary.stopped_early = true;
      break;
    }
    Timer timer;
    const Batch batch = hooks.local_batch ? hooks.local_batch(batches.batch(step)) : batches.batch(step);
    params.zero_grad();
    const double lambda = cfg.mtp_lambda.lambda(step);
    ModelLosses losses;
    std::vector<MoeLayerRef<float>> layers;
    double aux_loss = 0;
    TrainHooks::StepOutput piped;  // hooks.forward_backward: the pipeline ran the step
    if (hooks.forward_backward) {
      piped = hooks.forward_backward(params, batch, step, run, ctx);
      losses = piped.losses;
      aux_loss = piped.aux_loss;
      const int64_t main_layers = static_cast<int64_t>(params.layers.size());
      for (int64_t l : piped.moe_layers) {
        BlockParams<float>& p = l < main_layers ? params.layers[l] : params.mtp.at(l - main_layers).block;
        layers.push_back({l, nullptr, p.moe.gate.bias, 0, 0});
      }
    } else {
      losses = model_forward(saved, params, mcfg, batch.inputs, batch.targets, batch.batch_size, batch.seq_len,
                             lambda, ctx);
      // Balance losses: their gradient wrt the router scores joins the MoE backward.
      layers = moe_layers(params, saved);
      aux_loss = add_balance_losses(layers, cfg.balance, E, mcfg.num_experts_per_tok);
      model_backward(params, saved, mcfg, ctx);
    }
    if (hooks.reduce_grads) hooks.reduce_grads(params);
    if (hooks.reduce_mean) {
      losses.loss = hooks.reduce_mean(losses.loss);
      for (double& l : losses.mtp_losses) l = hooks.reduce_mean(l);
      aux_loss = hooks.reduce_mean(aux_loss);
    }
    const double grad_norm = clip_grad_norm(slots, cfg.grad_clip);
    const double lr = cfg.lr.lr(step);
    optimizer.step(lr);

    // Loads of the global batch, MaxVio_batch, then the bias update (sign rule).
    const int64_t num_layers = static_cast<int64_t>(layers.size());
    std::vector<float> tokens_row(num_layers * E), bias_row(num_layers * E, 0.0f);
    std::vector<double> maxvio_row(num_layers);
    if (layer_ids.empty()) {
      for (const auto& l : layers) layer_ids.push_back(l.layer);
      if (run) run->group().group("load").set_attr("layer_ids", layer_ids);
    }
    for (int64_t li = 0; li < num_layers; ++li) {
      std::vector<double> load;
      if (hooks.forward_backward) {
        load = piped.loads[li];
      } else {
        const auto& counts = layers[li].saved->expert_load();
        load.assign(counts.begin(), counts.end());
        hooks.reduce_load(load);
      }
      maxvio_row[li] = max_violation(load);
      for (int64_t e = 0; e < E; ++e) tokens_row[li * E + e] = static_cast<float>(load[e]);
      if (Param<float>* bias = layers[li].bias) {
        std::copy_n(bias->value.ptr(), E, bias_row.begin() + li * E);  // the bias this step routed with
        if (cfg.balance.bias_updates_at(step)) update_expert_bias(bias->value.ptr(), load, cfg.balance.bias_update_rate);
      }
    }
    const double step_time_s = timer.seconds();
    const double tokens_per_s = static_cast<double>(tokens_per_step) / step_time_s;
    if (step > start_step) tokens_per_s_sum += tokens_per_s, ++timed_steps;
    double mtp_loss = 0;
    for (double l : losses.mtp_losses) mtp_loss += l;
    if (!losses.mtp_losses.empty()) mtp_loss /= static_cast<double>(losses.mtp_losses.size());
    MOE_CHECK(std::isfinite(losses.loss)) << "training loss is " << losses.loss << " at step " << step
                                          << " (diverged: lower train.lr?)";

    summary.losses.push_back(losses.loss);
    summary.final_loss = losses.loss;
    summary.final_maxvio_batch = mean(maxvio_row);
    summary.steps_done = step + 1;
    if (run) {
      run->append("train/step", static_cast<double>(step + 1));
      run->append("train/loss", losses.loss);
      run->append("train/mtp_loss", mtp_loss);
      run->append("train/aux_loss", aux_loss);
      run->append("train/lr", lr);
      run->append("train/grad_norm", grad_norm);
      run->append("train/step_time_s", step_time_s);
      run->append("train/tokens_per_s", tokens_per_s);
      if (num_layers > 0) {
        run->append_row<float>("load/expert_tokens", {num_layers, E}, tokens_row.data());
        run->append_row<double>("load/maxvio", {num_layers}, maxvio_row.data());
        run->append_row<float>("load/expert_bias", {num_layers, E}, bias_row.data());
      }
      run->maybe_flush();
    }
    if (out && cfg.log_every > 0 && ((step + 1) % cfg.log_every == 0 || step == start_step)) {
      *out << "step " << step + 1 << "/" << cfg.steps << "  loss " << fmt("%.4f", losses.loss);
      if (!losses.mtp_losses.empty()) *out << "  mtp " << fmt("%.4f", mtp_loss);
      if (cfg.balance.has_aux_loss()) *out << "  aux " << fmt("%.3g", aux_loss);
      *out << "  lr " << fmt("%.3g", lr) << "  |g| " << fmt("%.3f", grad_norm) << "  MaxVio "
           << fmt("%.3f", summary.final_maxvio_batch) << "  " << fmt("%.0f", tokens_per_s) << " tok/s\n";
      out->flush();
    }
    if (hooks.after_step) hooks.after_step(step, run);
    if (cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0) do_eval(step + 1);
    maybe_checkpoint(step + 1, false);
  }

  if (!summary.stopped_early) {
    if (!evals.empty() && last_eval_step != cfg.steps && cfg.steps > start_step) do_eval(cfg.steps);
    maybe_checkpoint(cfg.steps, true);
  }
  summary.tokens_per_s = timed_steps > 0 ? tokens_per_s_sum / static_cast<double>(timed_steps) : 0.0;
  if (run) {
    h5::Group& g = run->group();
    g.set_attr("final_loss", summary.final_loss);
    g.set_attr("final_eval_loss", summary.final_eval_loss);
    g.set_attr("final_maxvio_batch", summary.final_maxvio_batch);
    g.set_attr("final_maxvio_global", summary.final_maxvio_global);
    g.set_attr("tokens_per_s", summary.tokens_per_s);
    run->flush();
  }
  return summary;
}

}  // namespace moelab::train
