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
#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "core/error.hpp"
#include "parallel/schedule/events_h5.hpp"
#include "parallel/schedule/generators.hpp"
#include "parallel/schedule/simulate.hpp"

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
      "closed form for comparison. With F=W=1, B=2, F&B=3 the idle time equals the formula exactly;\n"
      "with F&B < F+B the formula is an upper bound.\n"
      "Kinds: gpipe, 1f1b, interleaved_1f1b (--chunks virtual stages per rank), zb1p (ZB-H1),\n"
      "dualpipe (rank r holds stages r and PP-1-r; PP even, micro-batches even and >= 2·PP),\n"
      "dualpipev (PP ranks hold 2·PP stages in a V; micro-batches >= 2·PP).\n"
      "--out writes /runs/<run>/schedule/{events,ranks} (results/README.md); --png draws the\n"
      "Gantt chart (scripts/plots/schedule.py; also drawn by scripts/plot.py RESULTS.h5).");
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
    if (!results) continue;
    const std::string run_name = point.empty() ? "schedule" : point_label(point);
    ResultsRun run = results->new_run(run_name, opts.resolved());
    write_schedule_group(run.group(), s, r, "simulated");
    if (has_table2(kind)) run.group().open_group("schedule").set_attr("table2_bubble_s", table2_bubble_s(kind, s.num_stages, d));
    run.complete();
    if (png_run.empty()) png_run = run_name;
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
