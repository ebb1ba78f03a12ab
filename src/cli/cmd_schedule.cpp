// moelab schedule: generate a pipeline schedule, validate it and replay it in
// the event-driven simulator (src/parallel/schedule; DeepSeek-V3 §3.2.1,
// Table 2). Prints per-rank busy/idle time, peak activations and parameter
// copies next to Table 2's closed form; writes /runs/<run>/schedule/ (events
// table and per-rank figures, results/README.md "schedule") and draws the
// Gantt chart with scripts/plots/schedule.py.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <tuple>
#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "core/error.hpp"
#include <mpi.h>

#include <cmath>

#include "parallel/schedule/chain_stages.hpp"
#include "parallel/schedule/events_h5.hpp"
#include "parallel/schedule/executor.hpp"
#include "parallel/schedule/generators.hpp"
#include "parallel/schedule/measured_durations.hpp"
#include "parallel/schedule/simulate.hpp"
#include "parallel/schedule/validate.hpp"

#ifndef MOELAB_SOURCE_DIR
#define MOELAB_SOURCE_DIR "."
#endif

namespace moelab {

namespace {

using namespace schedule;

bool has_table2(const std::string& kind) {
  return kind == "1f1b" || kind == "zb1p" || kind == "dualpipe" || kind == "dualpipev" || kind == "gpipe";
}

const char* table2_text(const std::string& kind) {
  if (kind == "zb1p") return "(PP-1)(F+B-2W)";
  if (kind == "dualpipe" || kind == "dualpipev") return "(PP/2-1)(F&B+B-3W)";
  return "(PP-1)(F+B)";
}

std::string format_report(const Schedule& s, const SimResult& r, const Durations& d) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line,
                "# schedule %s: %d ranks, %d stages, %d micro-batches (%d direction%s); F %g  B %g  W %g  F&B %g  "
                "p2p %g\n",
                s.kind.c_str(), s.num_ranks, s.num_stages, s.num_microbatches, s.num_directions,
                s.num_directions > 1 ? "s" : "", d.f_s, d.b_s, d.w_s, d.fb_s, d.p2p_s);
  out << line;
  out << "  rank     busy_s     idle_s  bubble%  peak_act  params   ops     F     B B_input     W   F&B\n";
  for (int i = 0; i < s.num_ranks; ++i) {
    const RankFigures& f = r.ranks[i];
    std::snprintf(line, sizeof line, "%6d %10.3f %10.3f %8.2f %9lld %7d %5lld %5lld %5lld %7lld %5lld %5lld\n", i,
                  f.busy_s, f.idle_s, r.makespan_s > 0 ? 100.0 * f.idle_s / r.makespan_s : 0.0,
                  static_cast<long long>(f.peak_activations), f.param_copies, static_cast<long long>(f.num_ops),
                  static_cast<long long>(f.num_ops_of[0]), static_cast<long long>(f.num_ops_of[1]),
                  static_cast<long long>(f.num_ops_of[2]), static_cast<long long>(f.num_ops_of[3]),
                  static_cast<long long>(f.num_ops_of[4]));
    out << line;
  }
  std::snprintf(line, sizeof line, "makespan %.4f; idle per rank %.4f .. %.4f", r.makespan_s, r.min_idle_s(),
                r.max_idle_s());
  out << line;
  if (has_table2(s.kind)) {
    const double formula = table2_bubble_s(s.kind, s.num_stages, d);
    std::snprintf(line, sizeof line, "; Table 2 bubble %s = %.4f (max idle / formula = %.4f)", table2_text(s.kind),
                  formula, formula > 0 ? r.max_idle_s() / formula : 0.0);
    out << line;
  }
  out << "\n";
  const std::string sync = synchronous_send_deadlock(s);
  const std::string prefix = "deadlock with synchronous sends: ";
  out << "valid: complete, ordered, deadlock-free with buffered sends (the executor's); with naive synchronous "
         "sends after each op: "
      << (sync.empty() ? "deadlock-free too" : "deadlock (" + sync.substr(sync.find(prefix) + prefix.size()) + ")")
      << "\n";
  return out.str();
}

// Runs scripts/plots/schedule.py on a results file to draw one PNG.
void draw_png(const std::string& results_path, const std::string& run, const std::string& png_path) {
  const char* env_script = std::getenv("MOELAB_SCHEDULE_PLOT");
  const std::string script = env_script ? env_script : std::string(MOELAB_SOURCE_DIR) + "/scripts/plots/schedule.py";
  MOE_CHECK(std::filesystem::exists(script)) << "--png: plot script " << script << " not found";
  const char* env_python = std::getenv("MOELAB_PYTHON");
  const std::string python = env_python ? env_python : "/usr/bin/python3";
  auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  const std::string cmd = quote(python) + " " + quote(script) + " " + quote(results_path) + " --run " + quote(run) +
                          " --png " + quote(png_path);
  const int status = std::system(cmd.c_str());
  MOE_CHECK(status == 0) << "--png " << png_path << ": the plot script failed (" << cmd << ")";
}

// Half the mean round trip of a boundary-sized message between ranks 0 and 1
// (0 on one rank), the same on every rank.
double measure_p2p_s(int64_t numel, const CommandContext& ctx) {
  double p2p_s = 0;
  if (ctx.world_size >= 2 && ctx.rank <= 1) {
    std::vector<float> buffer(numel, 1.f);
    const int peer = 1 - ctx.rank, rounds = 20;
    double start = 0;
    for (int i = -2; i < rounds; ++i) {  // two warm-up rounds
      if (i == 0) start = MPI_Wtime();
      if (ctx.rank == 0) {
        MOE_MPI_CHECK(MPI_Send(buffer.data(), static_cast<int>(numel), MPI_FLOAT, peer, 0, MPI_COMM_WORLD));
        MOE_MPI_CHECK(MPI_Recv(buffer.data(), static_cast<int>(numel), MPI_FLOAT, peer, 0, MPI_COMM_WORLD,
                               MPI_STATUS_IGNORE));
      } else {
        MOE_MPI_CHECK(MPI_Recv(buffer.data(), static_cast<int>(numel), MPI_FLOAT, peer, 0, MPI_COMM_WORLD,
                               MPI_STATUS_IGNORE));
        MOE_MPI_CHECK(MPI_Send(buffer.data(), static_cast<int>(numel), MPI_FLOAT, peer, 0, MPI_COMM_WORLD));
      }
    }
    p2p_s = (MPI_Wtime() - start) / rounds / 2;
  }
  MOE_MPI_CHECK(MPI_Bcast(&p2p_s, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
  return p2p_s;
}

struct Executed {
  SimResult measured, predicted;  // on root
  Durations measured_durations;
};

// Runs the schedule over the MPI ranks with the chain model, checks loss and
// gradients against a non-pipelined step, and re-simulates the run with the
// durations measured in it: per (stage, op kind) means, the p2p latency and
// the gap between a rank's ops (measured_durations.hpp; the ping-pong latency
// where the timeline has no receive wait).
Executed execute_chain(const Schedule& s, const CommandOptions& opts, const CommandContext& ctx) {
  MOE_CHECK(ctx.world_size == s.num_ranks)
      << "moelab schedule --execute: schedule " << s.kind << " needs " << s.num_ranks
      << " MPI ranks (--pp), the job has " << ctx.world_size << " (run it under mpirun -np " << s.num_ranks << ")";
  ChainModel model;
  model.num_stages = s.num_stages;
  model.num_microbatches = s.num_microbatches;
  model.hidden = opts.get<int>("hidden");
  model.tokens = opts.get<int>("tokens");
  MOE_CHECK(model.hidden >= 1 && model.tokens >= 1)
      << "moelab schedule --execute: --hidden and --tokens must be >= 1, got " << model.hidden << " and "
      << model.tokens;
  const int steps = opts.get<int>("steps");
  MOE_CHECK(steps >= 1) << "moelab schedule --execute: --steps must be >= 1, got " << steps;
  const double p2p_s = measure_p2p_s(model.boundary_numel(), ctx);

  Executed out;
  ExecuteResult mine;
  double loss = 0;
  std::vector<float> grads(static_cast<size_t>(model.num_stages) * model.hidden * model.hidden, 0.f);
  for (int step = 0; step < steps; ++step) {  // the last step is the one measured
    ChainStages stages(model, held_stages(s, ctx.rank));
    mine = execute(s, stages, MPI_COMM_WORLD);
    if (step + 1 < steps) continue;
    loss = stages.loss();
    const size_t hh = static_cast<size_t>(model.hidden) * model.hidden;
    for (const auto& [stage, grad] : stages.grads())
      std::copy(grad.begin(), grad.end(), grads.begin() + static_cast<size_t>(stage) * hh);
  }
  std::vector<float> grad_sum(ctx.is_root() ? grads.size() : 0);
  double loss_sum = 0;
  MOE_MPI_CHECK(MPI_Reduce(grads.data(), grad_sum.data(), static_cast<int>(grads.size()), MPI_FLOAT, MPI_SUM, 0,
                           MPI_COMM_WORLD));
  MOE_MPI_CHECK(MPI_Reduce(&loss, &loss_sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD));
  out.measured = gather_measured(s, mine, MPI_COMM_WORLD);
  if (!ctx.is_root()) return out;

  // Gradient check: only the order of accumulation over micro-batches (and
  // DualPipe's sum of two stage copies) differs from the reference.
  const auto [ref_loss, ref_grads] = chain_reference(model);
  double ref_max = 0, err_max = 0;
  const size_t hh = static_cast<size_t>(model.hidden) * model.hidden;
  for (int st = 0; st < model.num_stages; ++st)
    for (size_t k = 0; k < hh; ++k) {
      ref_max = std::max(ref_max, static_cast<double>(std::abs(ref_grads[st][k])));
      err_max = std::max(err_max, static_cast<double>(std::abs(grad_sum[st * hh + k] - ref_grads[st][k])));
    }
  const double grad_rel = ref_max > 0 ? err_max / ref_max : err_max;
  const double loss_rel = std::abs(loss_sum - ref_loss) / std::max(std::abs(ref_loss), 1e-300);
  char line[320];
  std::snprintf(line, sizeof line,
                "# executed on %d MPI ranks: chain model, %d stages, H %d, T %d per micro-batch (step %d of %d)\n"
                "gradient check against a non-pipelined step: loss %.9g (reference %.9g, rel %.2e), "
                "max |dW - ref| / max |ref| = %.2e (tolerance 1e-5)\n",
                ctx.world_size, model.num_stages, model.hidden, model.tokens, steps, steps, loss_sum, ref_loss,
                loss_rel, grad_rel);
  ctx.print() << line;
  MOE_CHECK(grad_rel <= 1e-5 && loss_rel <= 1e-5)
      << "moelab schedule --execute: pipelined gradients differ from the non-pipelined step (max rel " << grad_rel
      << ", loss rel " << loss_rel << ")";

  out.measured_durations = mean_durations(out.measured);
  out.measured_durations.p2p_s = p2p_s;
  const StageDurations table = stage_durations(s, out.measured, out.measured_durations);
  out.predicted = simulate(s, table);
  const Durations& d = out.measured_durations;
  std::snprintf(line, sizeof line,
                "measured mean op times: F %.3f ms  B %.3f ms  W %.3f ms  F&B %.3f ms; p2p latency (ping-pong of "
                "%lld B) %.3f ms\n",
                1e3 * d.f_s, 1e3 * d.b_s, 1e3 * d.w_s, 1e3 * d.fb_s,
                static_cast<long long>(4 * model.boundary_numel()), 1e3 * p2p_s);
  ctx.print() << line;
  std::snprintf(line, sizeof line,
                "predicted with per-(rank, stage, op kind) means, p2p latency %.3f ms and a gap of %.3f ms between a "
                "rank's ops (seen in the timeline)\n",
                1e3 * table.global.p2p_s, 1e3 * table.global.gap_s);
  ctx.print() << line;
  ctx.print() << "  rank  measured_end_s  predicted_end_s   error%  measured_idle_s  predicted_idle_s\n";
  for (int r = 0; r < s.num_ranks; ++r) {
    const RankFigures& m = out.measured.ranks[r];
    const RankFigures& p = out.predicted.ranks[r];
    std::snprintf(line, sizeof line, "%6d %15.6f %16.6f %8.2f %16.6f %17.6f\n", r, m.end_s, p.end_s,
                  m.end_s > 0 ? 100.0 * (p.end_s - m.end_s) / m.end_s : 0.0, m.idle_s, p.idle_s);
    ctx.print() << line;
  }
  std::snprintf(line, sizeof line, "makespan measured %.6f s, predicted %.6f s (%+.2f%%)\n", out.measured.makespan_s,
                out.predicted.makespan_s,
                out.measured.makespan_s > 0
                    ? 100.0 * (out.predicted.makespan_s - out.measured.makespan_s) / out.measured.makespan_s
                    : 0.0);
  ctx.print() << line;
  return out;
}

}  // namespace

int cmd_schedule(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts(
      "schedule",
      "[--kind dualpipe] [--pp 8] [--microbatches 20] [--f 1 --b 2 --w 1 --fb 3] [--p2p 0] [--out RESULTS.h5] "
      "[--png FILE.png]",
      "Generate a pipeline schedule, check it (dependency order, completeness, deadlock freedom with\n"
      "non-blocking sends) and replay it in the event-driven simulator with the given op durations\n"
      "(DeepSeek-V3 §3.2.1, Table 2). Per rank: busy and idle time (the bubble), peak in-flight\n"
      "activations (micro-batch units of one stage) and parameter copies (stages held); Table 2's\n"
      "closed form for comparison. With F=W=1, B=2, F&B=3 every rank idles exactly the formula;\n"
      "with overlap (max(F,B) <= F&B < F+B) the middle ranks idle the formula and a DualPipe rank at\n"
      "half-rank h idles (F+B-F&B)·max(0, PP/2-2-h) less (F=W, B=2W); for B != 2W it is an upper bound.\n"
      "Kinds: gpipe, 1f1b, interleaved_1f1b (--chunks virtual stages per rank), zb1p (ZB-H1),\n"
      "dualpipe (rank r holds stages r and PP-1-r; PP even, micro-batches even and >= 2·PP),\n"
      "dualpipev (PP ranks hold 2·PP stages in a V; micro-batches >= 2·PP).\n"
      "--out writes /runs/<run>/schedule/{events,ranks} (results/README.md); --png draws the\n"
      "Gantt chart (scripts/plots/schedule.py; also drawn by scripts/plot.py RESULTS.h5).\n"
      "--execute (under mpirun -np PP) runs the schedule with the MPI executor on a toy chain model,\n"
      "checks loss and gradients against a non-pipelined step, and reports measured against\n"
      "predicted end time per rank; runs <run>_measured and <run>_predicted join the results file.");
  opts.add()("kind", po::value<std::string>()->default_value("dualpipe"),
             "gpipe, 1f1b, interleaved_1f1b, zb1p, dualpipe, dualpipev")  //
      ("pp", po::value<int>()->default_value(8), "pipeline ranks (for dualpipev the stages are twice this)")  //
      ("microbatches", po::value<int>()->default_value(20),
       "micro-batches per step, all directions together (DualPipe's num_chunks)")  //
      ("chunks", po::value<int>()->default_value(2),
       "interleaved_1f1b only: virtual stages per rank (Megatron-Core virtual_pipeline_model_parallel_size)")  //
      ("f", po::value<double>()->default_value(1.0), "time of one chunk's forward")  //
      ("b", po::value<double>()->default_value(2.0), "time of one chunk's full backward (input + weight)")  //
      ("w", po::value<double>()->default_value(1.0), "time of the weight-gradient part of B (B_input = B - W)")  //
      ("fb", po::value<double>()->default_value(3.0),
       "time of an overlapped forward-and-backward pair (F&B; F+B when nothing overlaps)")  //
      ("p2p", po::value<double>()->default_value(0.0), "latency of one point-to-point transfer between ranks")  //
      ("out", po::value<std::string>()->value_name("RESULTS.h5"), "results file to write")  //
      ("png", po::value<std::string>()->value_name("FILE.png"), "draw the Gantt chart of the (first) run here")  //
      ("execute", po::bool_switch(),
       "also run the schedule on the MPI ranks of this job (mpirun -np PP) with a toy chain model (stage = "
       "tanh(x·Wᵀ), H --hidden, T --tokens per micro-batch), check loss and gradients against a non-pipelined "
       "step, and compare the measured timeline with the simulator fed the durations measured in it (per rank, "
       "stage and op kind; p2p latency and gap between ops)")  //
      ("hidden", po::value<int>()->default_value(256), "--execute: hidden size H of the chain model")  //
      ("tokens", po::value<int>()->default_value(128), "--execute: tokens T per micro-batch")  //
      ("steps", po::value<int>()->default_value(2), "--execute: steps to run; the last one is measured")  //
      ("force", po::bool_switch(), "overwrite --out if it exists");
  if (!opts.parse(args, ctx)) return 0;

  const std::vector<ConfigPairs> points = opts.sweep_points();
  std::shared_ptr<ResultsFile> results;
  std::string results_path, temp_path, png_run;
  if (ctx.is_root() && opts.has("out")) {
    results = ResultsFile::create(opts.get<std::string>("out"), opts.get<bool>("force"), ctx.command_line,
                                  ctx.world_size);
    results_path = results->path();
  } else if (ctx.is_root() && opts.has("png")) {
    temp_path = (std::filesystem::temp_directory_path() / ("moelab_schedule_" + std::to_string(getpid()) + ".h5"))
                    .string();
    results = ResultsFile::create(temp_path, true, ctx.command_line, ctx.world_size);
    results_path = temp_path;
  }
  for (const ConfigPairs& point : points) {
    if (!point.empty()) opts.apply_point(point, ctx);
    const std::string kind = opts.get<std::string>("kind");
    const int pp = opts.get<int>("pp"), microbatches = opts.get<int>("microbatches");
    MOE_CHECK(pp >= 1) << "moelab schedule: --pp must be >= 1, got " << pp;
    MOE_CHECK(microbatches >= 1) << "moelab schedule: --microbatches must be >= 1, got " << microbatches;
    Durations d{opts.get<double>("f"), opts.get<double>("b"), opts.get<double>("w"), opts.get<double>("fb"),
                opts.get<double>("p2p")};
    d.validate();
    const Schedule s = make_schedule(kind, pp, microbatches, opts.get<int>("chunks"));
    const SimResult r = simulate(s, d);
    if (!point.empty()) ctx.print() << "## " << point_label(point) << "\n";
    ctx.print() << format_report(s, r, d);
    Executed executed;
    if (opts.get<bool>("execute")) executed = execute_chain(s, opts, ctx);
    if (!results) continue;
    const std::string run_name = point.empty() ? "schedule" : point_label(point);
    {
      ResultsRun run = results->new_run(run_name, opts.resolved());
      write_schedule_group(run.group(), s, r, "simulated");
      if (has_table2(kind))
        run.group().open_group("schedule").set_attr("table2_bubble_s", table2_bubble_s(kind, s.num_stages, d));
      run.complete();
    }
    if (png_run.empty()) png_run = run_name;
    if (!opts.get<bool>("execute")) continue;
    // The executed step and its prediction, as runs of their own.
    for (const auto& [suffix, timeline, source] :
         {std::tuple{"_measured", &executed.measured, "measured"},
          std::tuple{"_predicted", &executed.predicted, "simulated"}}) {
      ResultsRun run = results->new_run(run_name + suffix, opts.resolved());
      write_schedule_group(run.group(), s, *timeline, source);
      h5::Group g = run.group().open_group("schedule");
      const Durations& m = executed.measured_durations;
      g.set_attr("measured_mean_durations_s", std::vector<double>{m.f_s, m.b_s, m.w_s, m.fb_s, m.p2p_s});
      run.complete();
    }
    if (png_run == run_name) png_run = run_name + "_measured";
  }
  if (results) results->flush();
  if (ctx.is_root() && opts.has("png")) {
    results.reset();  // close the file before python reads it
    draw_png(results_path, png_run, opts.get<std::string>("png"));
    ctx.print() << "wrote " << opts.get<std::string>("png") << "\n";
  }
  if (!temp_path.empty()) std::filesystem::remove(temp_path);
  if (ctx.is_root() && opts.has("out")) ctx.print() << "wrote " << results_path << "\n";
  return 0;
}

}  // namespace moelab
