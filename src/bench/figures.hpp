// Benchmark figures: what `moelab bench` measures and `moelab compare` judges.
// A figure is one quantity of one benchmark case with all its repetitions
// (samples), its unit and which way is better. Loss curves are figures too,
// with direction `exact`: one sample per step, compared bit for bit.
//
// Stored in HDF5 under /runs/<suite>/bench/<NNNN>/ (attributes name, metric,
// unit, direction; datasets samples [n], and steps [n] for curves), with the
// provenance as attributes of /runs/<suite>/bench (results/README.md, "bench").
// Google Benchmark JSON (--benchmark_out) reads into the same structure.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "io/hdf5.hpp"

namespace moelab::bench {

enum class Direction { lower, higher, exact };  // lower/higher is better; exact: must not move
std::string direction_name(Direction d);
Direction parse_direction(const std::string& text);

struct Figure {
  std::string name;                 // "BM_gemm/fp32/tokens:256/n:2048/k:7168", "e2e/train_v3_tiny"
  std::string metric;               // "real_time", "FLOP/s", "instructions", "loss", ...
  std::string unit;                 // "ms", "s", "FLOP/s", "Ir", "" ...
  Direction direction = Direction::lower;
  std::vector<double> samples;      // one per repetition (or per step for exact curves)
  std::vector<double> steps;        // exact curves: the step of each sample (may be empty: 0, 1, ...)
  std::string key() const { return name + " [" + metric + "]"; }
};

struct FigureSet {
  std::string source;                            // file it was read from
  std::map<std::string, std::string> provenance;  // commit, host, cpu_model, ...
  std::vector<Figure> figures;
  std::vector<std::string> notes;                 // skipped entries, benchmark errors
  const Figure* find(const std::string& name, const std::string& metric) const;
};

// Google Benchmark's JSON output (--benchmark_out_format=json): one figure per
// case and metric (real_time, cpu_time, every user counter), the samples being
// the per-repetition rows (run_type "iteration"); a file holding aggregates
// only yields their mean as a single sample. Counters whose name ends in "/s"
// are rates (higher is better); other counters and times are lower-is-better.
FigureSet parse_gbench_json(const std::string& text, const std::string& source);
// Loads a moelab bench HDF5 file or a Google Benchmark JSON file (by content).
FigureSet load_figures(const std::string& path);

// Writes the figures into `bench` (a group such as /runs/quick/bench): one
// subgroup per figure, provenance pairs and notes as attributes of `bench`.
void write_figures(h5::Group& bench, const FigureSet& set);
// Reads every /runs/*/bench group of a file.
FigureSet read_figures_h5(const std::string& path);

}  // namespace moelab::bench
