#include "bench/suite.hpp"

#include <mpi.h>
#include <cblas.h>
#include <hdf5.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/version.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "core/version.hpp"
#include "io/hdf5.hpp"
#include "io/results.hpp"

extern "C" char* openblas_get_config(void);

extern char** environ;

namespace fs = std::filesystem;

namespace moelab::bench {

// ---- the suite: one line per entry ---------------------------------------------------
// quick: what scripts/regress.sh runs (a few minutes on 2 cores); full: everything.
// probe, probe_e2e: the self-tests of tests/bench (a spinning benchmark; a simulated schedule).
// NOTE: benchmark filters keep the quick suite short; entries of binaries that
// are not built yet are skipped with a note, so they can be listed ahead.
const std::vector<SuiteEntry>& suite_table() {
  static const std::vector<SuiteEntry> table = {
      // name             suites        kind                program            args                                      ranks series
      {"gemm",            "quick",      EntryKind::micro,   "bench_gemm",      "--benchmark_filter='tokens:4096|n:1536'", 1, ""},
      {"gemm",            "full",       EntryKind::micro,   "bench_gemm",      "",                                        1, ""},
      {"fp8",             "quick",      EntryKind::micro,   "bench_fp8",       "--benchmark_filter=BM_fp8_quantize/1x128", 1, ""},
      {"fp8",             "full",       EntryKind::micro,   "bench_fp8",       "",                                        1, ""},
      {"router",          "quick,full", EntryKind::micro,   "bench_router",    "",                                        1, ""},
      {"mla",             "quick",      EntryKind::micro,   "bench_mla",       "--benchmark_filter=seqs:16/",             1, ""},
      {"mla",             "full",       EntryKind::micro,   "bench_mla",       "",                                        1, ""},
      // NOTE: bench_moe_layer fixes MinTime(2.0) per case (paired timing): ~150 s
      // for 5 repetitions of one case on the loaded 2-core machine, so full only.
      {"moe_layer",       "full",       EntryKind::micro,   "bench_moe_layer", "",                                        1, ""},
      {"schedule",        "quick",      EntryKind::micro,   "bench_schedule",  "--benchmark_filter=pp:8/",                1, ""},
      {"schedule",        "full",       EntryKind::micro,   "bench_schedule",  "",                                        1, ""},
      {"grouped_gemm",    "full",       EntryKind::micro,   "bench_grouped_gemm", "",                                     1, ""},
      {"permute",         "full",       EntryKind::micro,   "bench_permute",   "",                                        1, ""},
      {"rmsnorm",         "full",       EntryKind::micro,   "bench_rmsnorm",   "",                                        1, ""},
      {"rope",            "full",       EntryKind::micro,   "bench_rope",      "",                                        1, ""},
      {"swiglu",          "full",       EntryKind::micro,   "bench_swiglu",    "",                                        1, ""},
      {"plan",            "full",       EntryKind::micro,   "bench_plan",      "",                                        1, ""},
      {"kernels_gpu",     "full",       EntryKind::micro,   "bench_kernels_gpu", "",                                      1, ""},
      {"dispatch",        "full",       EntryKind::micro,   "bench_dispatch",  "",                                        2, ""},
      {"fp8_errcurve",    "quick,full", EntryKind::e2e,     "fp8",             "errcurve --k 256,1024,4096 --trials 1 --m 32 --n 32 --out {out} --force", 1, "fp8/errcurve/normwise:exact,fp8/errcurve/max_rel:exact"},
      {"train_v3_tiny",   "quick,full", EntryKind::e2e,     "train",           "--set model.preset=v3-tiny --set train.steps=5 --set train.seed=1 --set data.batch_size=2 --set data.seq_len=64 --set train.eval_batches=1 --set data.corpus={source}/tests/fixtures/corpus_sample.h5 --set output.out={out} --set output.force=true", 1, "train/loss:exact,train/grad_norm:exact,train/step_time_s:lower:s"},
      {"ep2_step",        "quick,full", EntryKind::e2e,     "ep",              "--set parallel.ep=2 --set run.steps=3 --set bench.a2a_sizes=65536 --out {out} --force", 2, "comm/inter_node_bytes_per_token:exact,comm/load_imbalance:exact"},
      {"dualpipe_sim",    "quick,full", EntryKind::e2e,     "schedule",        "--kind dualpipe --pp 4 --microbatches 8 --f 1 --b 2 --w 1 --fb 3 --out {out} --force", 1, "schedule@makespan_s:exact,schedule/events/start_s:exact,schedule/events/end_s:exact"},
      // A DualPipe step executed on 4 ranks by the MPI executor (toy chain stages; the command itself fails
      // when loss or gradients differ from the non-pipelined step): wall time.
      {"dualpipe_step",   "quick,full", EntryKind::e2e,     "schedule",        "--kind dualpipe --pp 4 --microbatches 8 --execute --out {out} --force", 4, ""},
      {"gemm_fp32",       "quick,full", EntryKind::callgrind, "gemm_fp32",     "1",                                       1, ""},
      {"gemm_bf16",       "quick,full", EntryKind::callgrind, "gemm_bf16",     "1",                                       1, ""},
      {"fp8_quantize",    "quick,full", EntryKind::callgrind, "fp8_quantize_1x128", "1",                                  1, ""},
      {"fp8_gemm",        "quick,full", EntryKind::callgrind, "fp8_gemm_acc13", "1",                                      1, ""},
      {"router_topk",     "quick,full", EntryKind::callgrind, "router_topk",   "1",                                       1, ""},
      {"rmsnorm_fwd",     "quick,full", EntryKind::callgrind, "rmsnorm_fwd",   "1",                                       1, ""},
      {"swiglu_fwd",      "quick,full", EntryKind::callgrind, "swiglu_fwd",    "1",                                       1, ""},
      {"probe",           "probe",      EntryKind::micro,   "bench_probe",     "",                                        1, ""},
      {"dualpipe_sim",    "probe_e2e",  EntryKind::e2e,     "schedule",        "--kind dualpipe --pp 4 --microbatches 8 --f 1 --b 2 --w 1 --fb 3 --out {out} --force", 1, "schedule@makespan_s:exact,schedule/events/start_s:exact,no/such/series:exact"},
      // `moelab bench --device cuda` runs the suites cuda-quick / cuda-full: the GPU micro-benchmarks
      // (kernels/, and the routed experts as training runs them) and a v3-tiny training run on the GPU.
      {"kernels_gpu",     "cuda-quick", EntryKind::micro,   "bench_kernels_gpu", "--benchmark_filter='BM_gpu_gemm|BM_gpu_rmsnorm/|BM_gpu_router|BM_gpu_grouped_gemm'", 1, ""},
      {"kernels_gpu",     "cuda-full",  EntryKind::micro,   "bench_kernels_gpu", "",                                      1, ""},
      {"experts_gpu",     "cuda-quick", EntryKind::micro,   "bench_experts_gpu", "--benchmark_filter=hidden:256/",         1, ""},
      {"experts_gpu",     "cuda-full",  EntryKind::micro,   "bench_experts_gpu", "",                                      1, ""},
      {"train_v3_tiny_cuda", "cuda-quick,cuda-full", EntryKind::e2e, "train",   "--device cuda --set model.preset=v3-tiny --set train.steps=5 --set train.seed=1 --set data.batch_size=2 --set data.seq_len=64 --set train.eval_batches=1 --set data.corpus={source}/tests/fixtures/corpus_sample.h5 --set output.out={out} --set output.force=true", 1, "train/loss:exact,train/grad_norm:exact,train/step_time_s:lower:s"},
  };
  return table;
}

bool entry_in_suite(const SuiteEntry& e, const std::string& suite) {
  std::stringstream in(e.suites);
  std::string s;
  while (std::getline(in, s, ','))
    if (s == suite) return true;
  return false;
}

// ---- child processes ------------------------------------------------------------------

namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
  return s;
}

// Runs `command` through /bin/sh with stdout and stderr into `log_path`. The
// child's environment loses the MPI runtime variables of this (singleton) MPI
// process, so nested mpirun and moelab start clean, and gains
// OMP_WAIT_POLICY=passive (OpenMP and OpenBLAS threads share the cores).
int run_child(const std::string& command, const std::string& log_path, const std::vector<std::string>& extra_env = {}) {
  std::fflush(stdout);
  const pid_t pid = fork();
  MOE_CHECK(pid >= 0) << "fork failed: " << std::strerror(errno);
  if (pid == 0) {
    std::vector<std::string> drop;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      std::string key = kv.substr(0, kv.find('='));
      for (const char* prefix : {"OMPI_", "PMIX_", "ORTE_", "OPAL_", "HYDRA_", "PMI_"})
        if (key.rfind(prefix, 0) == 0) drop.push_back(key);
    }
    for (const auto& key : drop) unsetenv(key.c_str());
    if (!getenv("OMP_WAIT_POLICY")) setenv("OMP_WAIT_POLICY", "passive", 1);
    for (const auto& kv : extra_env) {
      const auto eq = kv.find('=');
      setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
    }
    // The shell's own output goes to the log first, so pipes and lists in
    // `command` cannot write to moelab's terminal.
    const std::string full = "exec >" + quote(log_path) + " 2>&1; " + command;
    execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string last_lines(const std::string& path, int count) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > static_cast<size_t>(count) ? lines.size() - count : 0; i < lines.size(); ++i)
    out += "    | " + lines[i] + "\n";
  return out;
}

std::string capture(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>/dev/null").c_str(), "r");
  if (!pipe) return out;
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe)) out += buffer;
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

bool has_valgrind() { return !capture("valgrind --version").empty(); }

// ---- entries --------------------------------------------------------------------------------

struct EntryResult {
  std::string status = "ok";  // ok | skipped: ... | failed: ...
  std::vector<Figure> figures;
  std::vector<std::string> notes;
};

EntryResult run_micro(const SuiteEntry& e, const RunOptions& o, const fs::path& work) {
  EntryResult r;
  const fs::path binary = fs::path(o.bench_dir) / e.program;
  if (!fs::exists(binary)) {
    r.status = std::string("skipped: ") + e.program + " not built";
    return r;
  }
  const std::string json = (work / (std::string(e.name) + ".json")).string();
  const std::string log = (work / (std::string(e.name) + ".log")).string();
  std::ostringstream cmd;
  cmd << quote(binary.string()) << " --benchmark_repetitions=" << o.repetitions
      << " --benchmark_min_time=" << o.min_time_s << " --benchmark_min_warmup_time=" << o.min_time_s
      << " --benchmark_out=" << quote(json)
      << " --benchmark_out_format=json --benchmark_report_aggregates_only=false";
  if (*e.args) cmd << " " << e.args;
  std::string command = cmd.str();
  if (e.mpi_ranks > 1) {
    command = "mpirun --oversubscribe " + std::string(getuid() == 0 ? "--allow-run-as-root " : "") + "-np " +
              std::to_string(e.mpi_ranks) + " " + command;
  }
  const int rc = run_child(command, log);
  if (rc != 0 || !fs::exists(json)) {
    r.status = "failed: " + std::string(e.program) + " exited with status " + std::to_string(rc) + " (log " + log + ")\n" +
               last_lines(log, 6);
    return r;
  }
  FigureSet set = read_gbench_file(json);
  r.figures = std::move(set.figures);
  for (const auto& n : set.notes) r.notes.push_back(std::string(e.name) + ": " + n);
  for (const auto& [k, v] : set.provenance) r.notes.push_back("\x1fprov:" + k + "=" + v);
  if (r.figures.empty()) r.status = "failed: no figures in " + json;
  return r;
}

// "path:direction[:unit]" items.
struct SeriesSpec {
  std::string path, unit;
  Direction direction;
};

std::vector<SeriesSpec> parse_series(const std::string& text) {
  std::vector<SeriesSpec> specs;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    std::vector<std::string> parts;
    std::stringstream pin(item);
    for (std::string p; std::getline(pin, p, ':');) parts.push_back(p);
    MOE_CHECK(parts.size() >= 2) << "suite series '" << item << "': expected path:direction[:unit]";
    specs.push_back({parts[0], parts.size() > 2 ? parts[2] : "", parse_direction(parts[1])});
  }
  return specs;
}

EntryResult run_e2e(const SuiteEntry& e, const RunOptions& o, const fs::path& work) {
  EntryResult r;
  // Is the subcommand there? `moelab <sub> --help` exits 0 only if it is.
  const std::string probe_log = (work / (std::string(e.name) + ".help.log")).string();
  if (run_child(quote(o.moelab_binary) + " " + e.program + " --help", probe_log) != 0) {
    r.status = std::string("skipped: moelab has no subcommand '") + e.program + "' yet";
    return r;
  }
  const auto specs = parse_series(e.series);
  Figure wall{std::string("e2e/") + e.name, "wall_time", "s", Direction::lower, {}, {}};
  std::vector<Figure> series(specs.size());
  for (size_t i = 0; i < specs.size(); ++i)
    series[i] = Figure{std::string("e2e/") + e.name, specs[i].path, specs[i].unit, specs[i].direction, {}, {}};
  const int reps = std::max(1, std::min(o.repetitions, 3));  // e2e runs are long; 3 wall-time samples at most
  for (int rep = 0; rep < reps; ++rep) {
    const std::string out = (work / (std::string(e.name) + "_" + std::to_string(rep) + ".h5")).string();
    const std::string log = (work / (std::string(e.name) + "_" + std::to_string(rep) + ".log")).string();
    std::string command = quote(o.moelab_binary) + " " + e.program + " " +
                          replace_all(replace_all(e.args, "{out}", quote(out)), "{source}", MOELAB_SOURCE_DIR);
    if (e.mpi_ranks > 1)
      command = "mpirun --oversubscribe " + std::string(getuid() == 0 ? "--allow-run-as-root " : "") + "-np " +
                std::to_string(e.mpi_ranks) + " " + command;
    Timer timer;
    const int rc = run_child(command, log);
    const double seconds = timer.seconds();
    if (rc != 0) {
      r.status = "failed: moelab " + std::string(e.program) + " exited with status " + std::to_string(rc) + " (log " +
                 log + ")\n" + last_lines(log, 6);
      return r;
    }
    wall.samples.push_back(seconds);
    if (specs.empty() || !fs::exists(out)) continue;
    h5::File file = h5::File::open_read(out);
    MOE_CHECK(file.is_group("runs")) << out << ": no /runs group";
    h5::Group runs = file.open_group("runs");
    const auto run_names = runs.children();
    for (size_t i = 0; i < specs.size(); ++i) {
      bool found = false;
      for (const auto& run_name : run_names) {
        h5::Group run = runs.open_group(run_name);
        std::vector<double> v;
        const auto at = specs[i].path.find('@');
        if (at != std::string::npos) {  // "group@attribute": one value
          const std::string group = specs[i].path.substr(0, at), attr = specs[i].path.substr(at + 1);
          if (!run.is_group(group) || !run.open_group(group).has_attr(attr)) continue;
          v = {run.open_group(group).attr_double(attr)};
        } else {
          if (!run.has(specs[i].path)) continue;
          Tensor<double> values = run.read<double>(specs[i].path);
          v.assign(values.ptr(), values.ptr() + values.numel());
        }
        found = true;
        std::vector<double> steps;
        const auto slash = specs[i].path.rfind('/');
        const std::string step_path = (slash == std::string::npos ? "" : specs[i].path.substr(0, slash + 1)) + "step";
        if (at == std::string::npos && run.has(step_path)) {
          Tensor<double> s = run.read<double>(step_path);
          if (s.numel() == static_cast<int64_t>(v.size())) steps.assign(s.ptr(), s.ptr() + s.numel());
        }
        if (specs[i].direction == Direction::exact) {
          if (rep == 0) {
            series[i].samples = v, series[i].steps = steps;
          } else if (v != series[i].samples) {
            r.notes.push_back(std::string(e.name) + ": " + specs[i].path + " differs between repetitions 0 and " +
                              std::to_string(rep) + " (not deterministic)");
          }
        } else {
          // Per-step timings: the first step warms caches and allocators.
          series[i].samples.insert(series[i].samples.end(), v.begin() + (v.size() > 1 ? 1 : 0), v.end());
        }
        break;  // the first run holding the series
      }
      if (!found && rep == 0)
        r.notes.push_back(std::string(e.name) + ": no dataset " + specs[i].path + " in " + out + " (series not recorded)");
    }
  }
  r.figures.push_back(wall);
  for (auto& s : series)
    if (!s.samples.empty()) r.figures.push_back(std::move(s));
  return r;
}

EntryResult run_callgrind(const SuiteEntry& e, const RunOptions& o, const fs::path& work) {
  EntryResult r;
  const fs::path binary = fs::path(o.bench_dir) / "callgrind_kernels";
  if (!o.callgrind) {
    r.status = "skipped: --callgrind off";
    return r;
  }
  if (!fs::exists(binary)) {
    r.status = "skipped: callgrind_kernels not built";
    return r;
  }
  if (!has_valgrind()) {
    r.status = "skipped: valgrind not installed (scripts/install-deps.sh)";
    return r;
  }
  const std::string out = (work / (std::string(e.name) + ".callgrind")).string();
  const std::string log = (work / (std::string(e.name) + ".callgrind.log")).string();
  const int iterations = std::max(1, std::atoi(e.args));
  // Only the marked region counts: setup (inputs, allocation) is excluded.
  const std::string command = "valgrind --tool=callgrind --callgrind-out-file=" + quote(out) +
                              " --collect-atstart=no --toggle-collect=moelab_callgrind_region " + quote(binary.string()) +
                              " " + e.program + " " + std::to_string(iterations);
  const int rc = run_child(command, log, {"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "OPENBLAS_CORETYPE=Haswell"});
  if (rc != 0 || !fs::exists(out)) {
    r.status = "failed: callgrind of " + std::string(e.program) + " exited with status " + std::to_string(rc) + " (log " +
               log + ")\n" + last_lines(log, 6);
    return r;
  }
  const double ir = callgrind_total_ir(out);
  if (ir <= 0) {
    r.status = "failed: no instructions collected in " + out + " (is moelab_callgrind_region called?)";
    return r;
  }
  r.figures.push_back(Figure{std::string("callgrind/") + e.program, "instructions", "Ir", Direction::lower,
                             {ir / iterations}, {}});
  return r;
}

std::string read_first_line_matching(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return line;
  return "";
}

}  // namespace

FigureSet read_gbench_file(const std::string& path) {
  std::ifstream in(path);
  MOE_CHECK(in.good()) << path << ": cannot open";
  std::stringstream text;
  text << in.rdbuf();
  return parse_gbench_json(text.str(), path);
}

double callgrind_total_ir(const std::string& path) {
  std::ifstream in(path);
  MOE_CHECK(in.good()) << path << ": cannot open";
  double total = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("totals:", 0) == 0) total = std::atof(line.c_str() + 7);
    else if (line.rfind("summary:", 0) == 0 && total < 0) total = std::atof(line.c_str() + 8);
  }
  return total;
}

std::map<std::string, std::string> collect_provenance() {
  std::map<std::string, std::string> p;
  p["commit"] = kMoelabGitCommit;
  p["moelab_version"] = kMoelabVersion;
  p["host"] = host_name();
  p["build_type"] = kMoelabBuildType;
  p["compiler"] = kMoelabCompiler;
  std::string cpu = read_first_line_matching("/proc/cpuinfo", "model name");
  if (auto colon = cpu.find(':'); colon != std::string::npos) cpu = cpu.substr(colon + 2);
  p["cpu_model"] = cpu.empty() ? "unknown" : cpu;
  p["core_count"] = std::to_string(std::thread::hardware_concurrency());
  p["load_avg"] = read_first_line_matching("/proc/loadavg", "");
  struct utsname u;
  if (uname(&u) == 0) p["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.machine;
  p["openblas"] = openblas_get_config();
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  p["hdf5"] = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
  p["boost"] = BOOST_LIB_VERSION;
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(mpi, &length);
  std::string mpi_text(mpi, length);
  p["mpi"] = mpi_text.substr(0, mpi_text.find_first_of(",\n"));
  const std::string gbench = capture("dpkg-query -W -f='${Version}' libbenchmark-dev");
  p["benchmark_library"] = gbench.empty() ? "unknown" : "google-benchmark " + gbench;
  const std::string valgrind = capture("valgrind --version");
  p["valgrind"] = valgrind.empty() ? "absent" : valgrind;
  return p;
}

RunOutcome run_suite(const RunOptions& o, std::ostream& log) {
  RunOutcome outcome;
  outcome.figures.provenance = collect_provenance();
  fs::create_directories(o.work_dir);
  bool any = false;
  for (const auto& e : suite_table()) {
    if (!entry_in_suite(e, o.suite)) continue;
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), e.name) == o.only.end()) continue;
    any = true;
    const char* kind = e.kind == EntryKind::micro ? "micro" : e.kind == EntryKind::e2e ? "e2e" : "callgrind";
    Timer timer;
    EntryResult r;
    try {
      r = e.kind == EntryKind::micro ? run_micro(e, o, o.work_dir)
          : e.kind == EntryKind::e2e ? run_e2e(e, o, o.work_dir)
                                     : run_callgrind(e, o, o.work_dir);
    } catch (const std::exception& ex) {
      r.status = std::string("failed: ") + ex.what();
    }
    char head[160];
    std::snprintf(head, sizeof head, "bench: %-10s %-16s ", kind, e.name);
    if (r.status == "ok") {
      char tail[96];
      std::snprintf(tail, sizeof tail, "%3zu figures  %6.1f s", r.figures.size(), timer.seconds());
      log << head << tail << "\n";
    } else {
      log << head << r.status << "\n";
    }
    log.flush();
    for (const auto& n : r.notes) {
      if (n.rfind("\x1fprov:", 0) == 0) {
        const auto kv = n.substr(6);
        const auto eq = kv.find('=');
        const std::string key = kv.substr(0, eq);
        if (key == "gbench_library_build_type" || key == "gbench_num_cpus" || key == "gbench_mhz_per_cpu" ||
            key == "gbench_cpu_scaling_enabled")
          outcome.figures.provenance.emplace(key, kv.substr(eq + 1));
        continue;
      }
      log << "  note: " << n << "\n";
      outcome.figures.notes.push_back(n);
    }
    for (auto& f : r.figures) outcome.figures.figures.push_back(std::move(f));
    if (r.status.rfind("skipped", 0) == 0) {
      outcome.skipped.push_back(e.name);
      outcome.figures.notes.push_back(std::string(e.name) + ": " + r.status);
    } else if (r.status != "ok") {
      outcome.failed.push_back(e.name);
      outcome.figures.notes.push_back(std::string(e.name) + ": " + r.status.substr(0, r.status.find('\n')));
    }
  }
  MOE_CHECK(any) << "moelab bench: no entry of suite '" << o.suite << "'"
                 << (o.only.empty() ? "" : " matches --only") << " (see moelab bench --list)";
  return outcome;
}

}  // namespace moelab::bench
