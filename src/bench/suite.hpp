// The benchmark suite of `moelab bench`: a table of entries, one line each,
// and the runner that executes them as child processes and gathers figures.
//
//   micro      a Google Benchmark binary next to moelab (build/experiments/micro/bench_<op>),
//              run with repetitions and --benchmark_out JSON; every case/metric becomes a figure
//   e2e        a moelab subcommand (short end-to-end run) writing an HDF5 file: its wall time
//              over the repetitions, plus named per-step series (loss curves compared bit for bit)
//   callgrind  one hot kernel of the callgrind_kernels probe under valgrind --tool=callgrind:
//              instructions per call, a figure without timing noise
//
// Entries whose binary, subcommand or valgrind is absent are skipped with a
// note (other parts of moelab add benchmarks over time; the table names them
// ahead). A failing entry is reported and makes the run's exit status 1.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "bench/figures.hpp"

namespace moelab::bench {

enum class EntryKind { micro, e2e, callgrind };

struct SuiteEntry {
  const char* name;     // entry name, used in figure names and --only
  const char* suites;   // suites holding it: "quick,full", "full", "probe"
  EntryKind kind;
  const char* program;  // micro: benchmark binary; e2e: moelab subcommand; callgrind: kernel name
  const char* args;     // micro: extra flags; e2e: arguments ({out} = its results file), shell syntax
                        // (quote | and *); callgrind: iterations
  int mpi_ranks;        // e2e: > 1 runs the subcommand under mpirun -np N
  const char* series;   // e2e: "path:direction[:unit],..." per-step datasets to keep as figures
};

const std::vector<SuiteEntry>& suite_table();
bool entry_in_suite(const SuiteEntry& e, const std::string& suite);

struct RunOptions {
  std::string suite = "quick";
  std::string bench_dir;      // where bench_* and callgrind_kernels live
  std::string moelab_binary;  // for e2e entries
  int repetitions = 5;        // micro and e2e wall time
  double min_time_s = 0.05;   // --benchmark_min_time per repetition
  std::vector<std::string> only;  // entry names (empty: the whole suite)
  bool callgrind = true;
  bool keep_logs = false;
  std::string work_dir;       // logs and intermediate files (created; removed unless keep_logs or failure)
};

struct RunOutcome {
  FigureSet figures;
  std::vector<std::string> failed;   // entry names that failed
  std::vector<std::string> skipped;  // entry names skipped (absent)
};

// Runs the suite, printing one progress line per entry to `log`.
RunOutcome run_suite(const RunOptions& options, std::ostream& log);

// Provenance of this process: commit, host, cpu_model, core_count, build_type,
// compiler, openblas, hdf5, boost, mpi, benchmark_library, valgrind, load_avg, kernel.
std::map<std::string, std::string> collect_provenance();

// Figures from one Google Benchmark JSON file (exposed for tests).
FigureSet read_gbench_file(const std::string& path);
// Total instructions (Ir) of a callgrind output file ("totals:" or "summary:" line).
double callgrind_total_ir(const std::string& path);

}  // namespace moelab::bench
