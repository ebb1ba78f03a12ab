// moelab train --config experiments/paper/X.ini: the training loop of
// src/train (DeepSeek-V3 §4.2, §4.5) on the byte-level corpus, one run group
// per sweep point in one results file, a summary table at the end.
//   moelab train                                  v3-small, aux-loss-free + MTP, defaults
//   moelab train --config experiments/paper/mtp.ini
//   moelab train --set train.steps=50 --set data.corpus=tests/fixtures/corpus_sample.h5
// Results: /runs/<run>/{train,eval,load}/... (results/README.md, "train").
#include <cmath>
#include <cstdio>
#include <optional>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "train/loop.hpp"

namespace moelab {

int cmd_train(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts("train", "[--config FILE.ini] [--set section.key=value ...]",
                      "Train a DeepSeek-V3 model (default v3-small) on the byte-level corpus with\n"
                      "AdamW, the paper's LR schedule, multi-token prediction and the selected load\n"
                      "balancing; log every step to HDF5 (train/, load/) and evaluate on the held-out\n"
                      "split (eval/: main-model loss, per domain; MaxVio_global; expert load by domain).\n"
                      "The corpus is built by scripts/prepare_corpus.sh (data/corpus.h5).\n"
                      "INI sections: [model] [data] [train] [balance] [mtp] [output]; sweep lines run\n"
                      "several configurations into one file, e.g. `sweep = balance.method: aux_free, aux_loss`.");
  train::declare_train_options(opts.add());
  if (!opts.parse(args, ctx)) return 0;

  const std::vector<ConfigPairs> points = opts.sweep_points();
  std::shared_ptr<ResultsFile> results;
  struct Row {
    std::string name;
    train::TrainSummary s;
  };
  std::vector<Row> rows;
  for (const ConfigPairs& point : points) {
    if (!point.empty()) opts.apply_point(point, ctx);
    const train::TrainConfig cfg = train::train_config_from(opts);
    std::string name = cfg.run_name;
    if (name.empty()) name = point.empty() ? "train" : point_label(point);
    if (!results && ctx.is_root())
      results = ResultsFile::create(cfg.out, cfg.force, ctx.command_line, ctx.world_size);
    std::optional<ResultsRun> run;
    if (ctx.is_root()) run.emplace(results->new_run(name, opts.resolved()));
    ctx.print() << "== run " << name << "\n";
    train::TrainHooks hooks;
    hooks.progress = &ctx.print();
    train::TrainSummary s = train::run_training(cfg, run ? &*run : nullptr, hooks);
    if (run) {
      if (s.stopped_early)
        run->fail("stopped after " + std::to_string(s.steps_done) + " steps (train.stop_after); resume with "
                  "train.resume=" + (cfg.checkpoint_dir.empty() ? std::string("<no checkpoint_dir>") : cfg.checkpoint_dir));
      else
        run->complete();
    }
    rows.push_back({name, s});
  }

  // Summary table: the figures `moelab show` prints per run.
  std::ostream& out = ctx.print();
  size_t width = 4;
  for (const auto& r : rows) width = std::max(width, r.name.size());
  char line[512];
  std::snprintf(line, sizeof line, "\n%-*s %7s %10s %10s %13s %14s %10s\n", static_cast<int>(width), "run", "steps",
                "loss", "eval_loss", "MaxVio_batch", "MaxVio_global", "tok/s");
  out << line;
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "%-*s %7lld %10.4f %10.4f %13.3f %14.3f %10.0f\n", static_cast<int>(width),
                  r.name.c_str(), static_cast<long long>(r.s.steps_done), r.s.final_loss, r.s.final_eval_loss,
                  r.s.final_maxvio_batch, r.s.final_maxvio_global, r.s.tokens_per_s);
    out << line;
  }
  if (results) out << "wrote " << results->path() << "\n";
  return 0;
}

}  // namespace moelab
