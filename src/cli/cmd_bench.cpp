// moelab bench [--suite quick|full] --out FILE.h5: the regression suite
// (src/bench/suite.cpp holds the table): Google Benchmark micro-benchmarks
// with repetitions, short end-to-end runs of moelab subcommands, callgrind
// instruction counts of hot kernels. Every figure with all its samples goes to
// /runs/<suite>/bench/ with the provenance (results/README.md, "bench");
// `moelab compare BASE NEW` judges two such files.
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "backend/device.hpp"
#include "bench/suite.hpp"
#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "core/error.hpp"

namespace moelab {

namespace {

std::string self_directory() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts("bench", "[--suite quick|full] --out FILE.h5 [--only a,b] [--list]",
                      "Run the benchmark suite and store every figure with its repetitions, its unit and\n"
                      "direction (lower/higher is better; exact for loss curves), plus provenance (commit,\n"
                      "host, CPU, cores, build type, compiler, library versions) in /runs/<suite>/bench/.\n"
                      "Entries: Google Benchmark binaries next to moelab (experiments/micro/bench_*), short\n"
                      "end-to-end runs of moelab subcommands, and callgrind instruction counts of hot kernels.\n"
                      "Absent binaries or subcommands are skipped with a note. Exit status 1 when an entry\n"
                      "fails. Compare two files with `moelab compare BASE.h5 NEW.h5`.");
  opts.add()("suite", po::value<std::string>()->default_value("quick"),
             "quick (a few minutes: what scripts/regress.sh runs), full, or probe / probe_e2e (self-tests)")  //
      ("out", po::value<std::string>()->value_name("FILE.h5"), "results file to write")  //
      ("force", po::bool_switch(), "overwrite --out if it exists")  //
      ("repetitions", po::value<int>()->default_value(0),
       "repetitions per micro-benchmark case (--benchmark_repetitions; 0: 5 for quick, 10 for full); "
       "end-to-end runs repeat min(this, 3) times")  //
      ("min-time", po::value<double>()->default_value(0.05), "--benchmark_min_time per repetition, seconds")  //
      ("only", po::value<std::string>()->default_value(""), "comma-separated entry names to run (default: all)")  //
      ("bench-dir", po::value<std::string>()->default_value(""),
       "directory of the bench_* binaries and callgrind_kernels (default: experiments/micro next to moelab)")  //
      ("moelab", po::value<std::string>()->default_value(""),
       "moelab binary the end-to-end entries run (default: this one)")  //
      ("callgrind", po::value<bool>()->default_value(true), "run the callgrind instruction-count entries (needs valgrind)")  //
      ("keep-logs", po::bool_switch(), "keep the work directory (logs, JSON, callgrind files) next to --out")  //
      ("list", po::bool_switch(), "list the suite's entries and whether each is available, then exit")  //
      ("device", po::value<std::string>()->default_value("cpu"),
       "cpu, or cuda: run the GPU suite instead (cuda-quick / cuda-full for --suite quick / full): the GPU "
       "micro-benchmarks bench_kernels_gpu (cuBLAS GEMMs, RMSNorm, router, grouped GEMM; all kernels in full) "
       "and bench_experts_gpu (routed experts forward/backward as train --device cuda runs them), and a "
       "v3-tiny `moelab train --device cuda`. Needs a GPU (exit 2 without one)");
  if (!opts.parse(args, ctx)) return 0;
  const Device device = parse_device(opts.get<std::string>("device"));
  require_device(device);
  std::string suite = opts.get<std::string>("suite");
  if (device == Device::cuda) {
    MOE_CHECK(suite == "quick" || suite == "full") << "--device cuda: --suite '" << suite << "': expected quick or full";
    suite = "cuda-" + suite;
  } else {
    MOE_CHECK(suite.rfind("cuda-", 0) != 0) << "--suite '" << suite << "': the GPU suites run with --device cuda "
                                            << "--suite " << suite.substr(5);
  }
  bool known = false;
  for (const auto& e : bench::suite_table()) known = known || bench::entry_in_suite(e, suite);
  MOE_CHECK(known) << "--suite '" << suite << "': expected quick, full, probe or probe_e2e";

  bench::RunOptions run;
  run.suite = suite;
  run.moelab_binary = (std::filesystem::path(self_directory()) / "moelab").string();
  if (!opts.get<std::string>("moelab").empty()) run.moelab_binary = opts.get<std::string>("moelab");
  run.bench_dir = opts.get<std::string>("bench-dir");
  if (run.bench_dir.empty()) run.bench_dir = (std::filesystem::path(self_directory()) / "experiments" / "micro").string();
  run.repetitions = opts.get<int>("repetitions");
  if (run.repetitions == 0) run.repetitions = suite == "full" ? 10 : 5;
  MOE_CHECK(run.repetitions >= 1) << "--repetitions " << run.repetitions << ": expected >= 1";
  run.min_time_s = opts.get<double>("min-time");
  MOE_CHECK(run.min_time_s > 0) << "--min-time " << run.min_time_s << ": expected > 0 seconds";
  run.only = split_names(opts.get<std::string>("only"));
  for (const auto& name : run.only) {
    bool found = false;
    for (const auto& e : bench::suite_table()) found = found || (name == e.name && bench::entry_in_suite(e, suite));
    MOE_CHECK(found) << "--only: no entry '" << name << "' in suite '" << suite << "' (moelab bench --list)";
  }
  run.callgrind = opts.get<bool>("callgrind");
  run.keep_logs = opts.get<bool>("keep-logs");

  if (opts.get<bool>("list")) {
    ctx.print() << "suite " << suite << " (bench dir " << run.bench_dir << "):\n";
    for (const auto& e : bench::suite_table()) {
      if (!bench::entry_in_suite(e, suite)) continue;
      const char* kind = e.kind == bench::EntryKind::micro ? "micro" : e.kind == bench::EntryKind::e2e ? "e2e" : "callgrind";
      std::string what = e.kind == bench::EntryKind::e2e ? std::string("moelab ") + e.program + " " + e.args
                         : e.kind == bench::EntryKind::callgrind ? std::string("callgrind_kernels ") + e.program
                                                                 : std::string(e.program) + " " + e.args;
      if (e.mpi_ranks > 1) what = "mpirun -np " + std::to_string(e.mpi_ranks) + " " + what;
      ctx.print() << "  " << e.name << "  [" << kind << "]  " << what << "\n";
    }
    return 0;
  }
  MOE_CHECK(opts.has("out")) << "moelab bench: --out FILE.h5 is required (see --help)";
  MOE_CHECK(ctx.world_size == 1) << "moelab bench runs as one process (entries start their own MPI jobs)";
  const std::string out = opts.get<std::string>("out");
  // Create the results file first: a bad path fails before minutes of benchmarks.
  auto results = ResultsFile::create(out, opts.get<bool>("force"), ctx.command_line, ctx.world_size);
  ResultsRun result_run = results->new_run(suite, opts.resolved());
  run.work_dir = out + ".work";
  std::filesystem::remove_all(run.work_dir);

  ctx.print() << "moelab bench: suite " << suite << ", " << run.repetitions << " repetitions, bench dir " << run.bench_dir
              << "\n";
  bench::RunOutcome outcome = bench::run_suite(run, ctx.print());
  h5::Group group = result_run.group().group("bench");
  bench::write_figures(group, outcome.figures);
  if (outcome.failed.empty()) {
    result_run.complete();
    if (!run.keep_logs) std::filesystem::remove_all(run.work_dir);
  } else {
    std::string names;
    for (const auto& n : outcome.failed) names += (names.empty() ? "" : ",") + n;
    result_run.fail("entries failed: " + names);
  }
  results->flush();
  ctx.print() << "wrote " << out << ": " << outcome.figures.figures.size() << " figures, " << outcome.skipped.size()
              << " entries skipped, " << outcome.failed.size() << " failed"
              << (outcome.failed.empty() ? "" : " (logs in " + run.work_dir + ")") << "\n";
  return outcome.failed.empty() ? 0 : 1;
}

}  // namespace moelab
