// Comparing two sets of benchmark figures (`moelab compare BASE NEW`).
//
// Timed figures: the change is median(new) / median(base) - 1. A change is a
// regression when it goes the wrong way, its ratio exceeds 1 + threshold
// (for rates: base/new, so -33% FLOP/s equals +50% time), and it is
// significant under the two-sided Mann-Whitney U test at `alpha` (as Google
// Benchmark's compare.py). Where the sample sizes cannot reach alpha at all
// (e.g. a single callgrind count, or 3 + 3 repetitions) the threshold alone
// decides. The noise gate widens the threshold of a noisy figure to
// noise_factor x its robust coefficient of variation (1.4826 MAD / median,
// the larger of both sides), so a shared machine does not flap. Exact figures (loss curves) must be equal bit
// for bit; the first differing step is reported with both values and their
// distance in ULPs. Figures present on one side only are reported: missing
// ones fail unless allow_missing.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/figures.hpp"
#include "io/hdf5.hpp"

namespace moelab::bench {

struct CompareOptions {
  double threshold = 0.05;                         // relative, default for every metric
  std::map<std::string, double> metric_threshold;  // per-metric overrides ("instructions" -> 0.01)
  std::vector<std::string> metrics;                // compare only these (empty: all)
  double alpha = 0.05;
  double noise_factor = 3.0;  // effective threshold >= noise_factor * robust CV; 0 switches the gate off
  bool allow_missing = false;
  double threshold_for(const std::string& metric) const;
  bool wants(const std::string& metric) const;
};

struct Comparison {
  std::string name, metric, unit;
  Direction direction = Direction::lower;
  int n_base = 0, n_new = 0;
  double base = 0, now = 0;  // medians (exact: value at the first difference, or last value)
  double change = 0;         // relative, signed (new/base - 1)
  double p_value = -1;       // -1: no test
  double threshold = 0;      // effective (after the noise gate)
  double cv = 0;             // robust CV, max of both sides
  std::string verdict;       // same | improved | REGRESSION | not significant | identical | DIFFERS | MISSING | new
  bool failed = false;
  long first_diff_index = -1;  // exact: index of the first differing sample
  double first_diff_step = -1;  // exact: its step
  std::string detail;
};

struct CompareReport {
  std::string base_source, new_source;
  std::vector<Comparison> rows;
  std::vector<std::string> notes;
  int regressions = 0, missing = 0, added = 0, improved = 0;
  bool failed() const;
};

CompareReport compare_figures(const FigureSet& base, const FigureSet& now, const CompareOptions& options);

// ULP distance between two doubles (0 when equal, huge across signs).
uint64_t ulp_distance(double a, double b);

std::string render_table(const CompareReport& report);
std::string report_json(const CompareReport& report);
// One subgroup per row under `group`, with the summary as its attributes.
void write_report(h5::Group& group, const CompareReport& report);

}  // namespace moelab::bench
