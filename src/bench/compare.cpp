#include "bench/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "bench/stats.hpp"
#include "core/error.hpp"

namespace moelab::bench {

double CompareOptions::threshold_for(const std::string& metric) const {
  auto it = metric_threshold.find(metric);
  return it == metric_threshold.end() ? threshold : it->second;
}

bool CompareOptions::wants(const std::string& metric) const {
  return metrics.empty() || std::find(metrics.begin(), metrics.end(), metric) != metrics.end();
}

bool CompareReport::failed() const { return regressions > 0 || std::any_of(rows.begin(), rows.end(), [](const auto& r) { return r.failed; }); }

uint64_t ulp_distance(double a, double b) {
  if (a == b) return 0;
  if (std::isnan(a) || std::isnan(b)) return UINT64_MAX;
  // Map the bit patterns onto a monotonic integer line.
  auto ordered = [](double x) {
    int64_t i;
    std::memcpy(&i, &x, sizeof i);
    return i < 0 ? INT64_MIN - i : i;
  };
  const int64_t ia = ordered(a), ib = ordered(b);
  return ia > ib ? static_cast<uint64_t>(ia) - static_cast<uint64_t>(ib) : static_cast<uint64_t>(ib) - static_cast<uint64_t>(ia);
}

namespace {

uint32_t ulp_distance_f32(float a, float b) {
  if (a == b) return 0;
  auto ordered = [](float x) {
    int32_t i;
    std::memcpy(&i, &x, sizeof i);
    return i < 0 ? INT32_MIN - i : i;
  };
  const int64_t d = static_cast<int64_t>(ordered(a)) - ordered(b);
  return static_cast<uint32_t>(d < 0 ? -d : d);
}

// Seconds per time unit, for figures whose units differ between the files.
double time_unit_scale(const std::string& unit) {
  if (unit == "ns") return 1e-9;
  if (unit == "us") return 1e-6;
  if (unit == "ms") return 1e-3;
  if (unit == "s") return 1.0;
  return 0;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

void compare_exact(Comparison& c, const Figure& base, const Figure& now) {
  const size_t common = std::min(base.samples.size(), now.samples.size());
  long first = -1;
  for (size_t i = 0; i < common && first < 0; ++i) {
    const double a = base.samples[i], b = now.samples[i];
    if (std::memcmp(&a, &b, sizeof a) != 0) first = static_cast<long>(i);
  }
  if (first < 0 && base.samples.size() == now.samples.size()) {
    c.verdict = "identical";
    if (common) c.base = base.samples.back(), c.now = now.samples.back();
    c.detail = std::to_string(common) + " values bit-identical";
    return;
  }
  c.failed = true;
  c.verdict = "DIFFERS";
  std::ostringstream d;
  if (first >= 0) {
    c.first_diff_index = first;
    c.first_diff_step = first < static_cast<long>(base.steps.size()) ? base.steps[first] : first;
    const double a = base.samples[first], b = now.samples[first];
    c.base = a, c.now = b;
    c.change = a != 0 ? b / a - 1 : 0;
    d << "first difference at step " << num(c.first_diff_step) << ": " << num(a) << " -> " << num(b) << " ("
      << ulp_distance(a, b) << " ulp double";
    if (static_cast<double>(static_cast<float>(a)) == a && static_cast<double>(static_cast<float>(b)) == b)
      d << ", " << ulp_distance_f32(static_cast<float>(a), static_cast<float>(b)) << " ulp float";
    d << ")";
    size_t differing = 0;
    for (size_t i = first; i < common; ++i) differing += std::memcmp(&base.samples[i], &now.samples[i], sizeof(double)) != 0;
    d << "; " << differing << " of " << common << " steps differ";
  }
  if (base.samples.size() != now.samples.size())
    d << (first >= 0 ? "; " : "") << "length " << base.samples.size() << " -> " << now.samples.size();
  c.detail = d.str();
}

void compare_timed(Comparison& c, const Figure& base, Figure now, const CompareOptions& options) {
  if (base.unit != now.unit) {
    const double from = time_unit_scale(now.unit), to = time_unit_scale(base.unit);
    MOE_CHECK(from > 0 && to > 0) << c.name << " [" << c.metric << "]: units differ (" << base.unit << " vs " << now.unit
                                  << ")";
    for (auto& v : now.samples) v *= from / to;
  }
  if (base.samples.empty() || now.samples.empty()) {
    c.verdict = "no samples";
    c.failed = true;
    return;
  }
  c.base = median(base.samples);
  c.now = median(now.samples);
  c.change = c.base != 0 ? c.now / c.base - 1 : (c.now == 0 ? 0 : INFINITY);
  c.cv = std::max(robust_cv(base.samples), robust_cv(now.samples));
  c.threshold = std::max(options.threshold_for(c.metric), options.noise_factor * c.cv);
  bool significant = true;
  if (c.n_base >= 2 && c.n_new >= 2) {
    c.p_value = mann_whitney_p(base.samples, now.samples);
    if (mann_whitney_min_p(c.n_base, c.n_new) < options.alpha) significant = c.p_value < options.alpha;
    else c.detail = "too few repetitions for the U test at alpha; threshold alone";
  }
  // Judged on the ratio, the same either way round: 0.5x time and 2x rate
  // are the same change (a -33% time is a +50% rate).
  const double ratio = c.base != 0 ? c.now / c.base : (c.now == 0 ? 1.0 : INFINITY);
  const double worse_factor = c.direction == Direction::higher ? (ratio > 0 ? 1 / ratio : INFINITY) : ratio;
  const double limit = 1 + c.threshold;
  if (worse_factor <= limit && worse_factor >= 1 / limit) {
    c.verdict = "same";
  } else if (!significant) {
    c.verdict = "not significant";
  } else if (worse_factor > 1) {
    c.verdict = "REGRESSION";
    c.failed = true;
  } else {
    c.verdict = "improved";
  }
}

std::string family(const std::string& name) { return name.substr(0, name.find('/')); }

}  // namespace

CompareReport compare_figures(const FigureSet& base, const FigureSet& now, const CompareOptions& options) {
  CompareReport report;
  report.base_source = base.source;
  report.new_source = now.source;
  std::set<std::string> matched_new;
  std::vector<const Figure*> unmatched_new;
  for (const auto& f : now.figures)
    if (options.wants(f.metric) && !base.find(f.name, f.metric)) unmatched_new.push_back(&f);
  for (const auto& b : base.figures) {
    if (!options.wants(b.metric)) continue;
    Comparison c;
    c.name = b.name, c.metric = b.metric, c.unit = b.unit, c.direction = b.direction;
    c.n_base = static_cast<int>(b.samples.size());
    const Figure* n = now.find(b.name, b.metric);
    if (!n) {
      c.verdict = "MISSING";
      c.failed = !options.allow_missing;
      ++report.missing;
      std::vector<const Figure*> candidates;
      for (const auto* u : unmatched_new)
        if (u->metric == b.metric && family(u->name) == family(b.name)) candidates.push_back(u);
      c.detail = "absent from NEW";
      if (candidates.size() == 1) c.detail += "; renamed to " + candidates[0]->name + "?";
      report.rows.push_back(c);
      continue;
    }
    c.n_new = static_cast<int>(n->samples.size());
    if (b.direction == Direction::exact || n->direction == Direction::exact) compare_exact(c, b, *n);
    else compare_timed(c, b, *n, options);
    if (c.verdict == "REGRESSION") ++report.regressions;
    if (c.verdict == "improved") ++report.improved;
    report.rows.push_back(c);
  }
  for (const auto* u : unmatched_new) {
    Comparison c;
    c.name = u->name, c.metric = u->metric, c.unit = u->unit, c.direction = u->direction;
    c.n_new = static_cast<int>(u->samples.size());
    if (!u->samples.empty()) c.now = u->direction == Direction::exact ? u->samples.back() : median(u->samples);
    c.verdict = "new";
    c.detail = "absent from BASE (no baseline yet)";
    ++report.added;
    report.rows.push_back(c);
  }
  for (const auto& note : base.notes) {
    const bool both = std::find(now.notes.begin(), now.notes.end(), note) != now.notes.end();
    report.notes.push_back((both ? "BASE and NEW: " : "BASE: ") + note);
  }
  for (const auto& note : now.notes)
    if (std::find(base.notes.begin(), base.notes.end(), note) == base.notes.end()) report.notes.push_back("NEW: " + note);
  return report;
}

std::string render_table(const CompareReport& r) {
  size_t name_w = 6, metric_w = 6;
  for (const auto& c : r.rows) name_w = std::max(name_w, c.name.size()), metric_w = std::max(metric_w, c.metric.size());
  name_w = std::min<size_t>(name_w, 64);
  std::ostringstream out;
  char line[512];
  out << "BASE " << r.base_source << "\nNEW  " << r.new_source << "\n";
  std::snprintf(line, sizeof line, "%-*s  %-*s  %-8s %12s %12s %9s %8s %7s  %s\n", static_cast<int>(name_w), "figure",
                static_cast<int>(metric_w), "metric", "unit", "base", "new", "change", "p", "thr", "verdict");
  out << line;
  for (const auto& c : r.rows) {
    std::string name = c.name.size() > name_w ? "..." + c.name.substr(c.name.size() - name_w + 3) : c.name;
    char base[32] = "-", now[32] = "-", change[32] = "-", p[32] = "-", thr[32] = "-";
    if (c.n_base) std::snprintf(base, sizeof base, "%.5g", c.base);
    if (c.n_new) std::snprintf(now, sizeof now, "%.5g", c.now);
    if (c.n_base && c.n_new && c.direction != Direction::exact) {
      std::snprintf(change, sizeof change, "%+.1f%%", 100 * c.change);
      std::snprintf(thr, sizeof thr, "%.1f%%", 100 * c.threshold);
    }
    if (c.p_value >= 0) std::snprintf(p, sizeof p, "%.4f", c.p_value);
    std::snprintf(line, sizeof line, "%-*s  %-*s  %-8s %12s %12s %9s %8s %7s  %s", static_cast<int>(name_w), name.c_str(),
                  static_cast<int>(metric_w), c.metric.c_str(), c.unit.substr(0, 8).c_str(), base, now, change, p, thr,
                  c.verdict.c_str());
    out << line;
    if (!c.detail.empty() && (c.direction == Direction::exact || c.verdict == "MISSING" || c.failed))
      out << "  (" << c.detail << ")";
    out << "\n";
  }
  for (const auto& note : r.notes) out << "note: " << note << "\n";
  int differs = 0;
  for (const auto& c : r.rows) differs += c.verdict == "DIFFERS";
  out << "summary: " << r.rows.size() << " figures, " << r.regressions << " regressions, " << differs
      << " exact curves differ, " << r.missing << " missing, " << r.added << " new, " << r.improved << " improved: "
      << (r.failed() ? "FAIL" : "PASS") << "\n";
  return out.str();
}

std::string report_json(const CompareReport& r) {
  nlohmann::json doc;
  doc["base"] = r.base_source;
  doc["new"] = r.new_source;
  doc["regressions"] = r.regressions;
  doc["missing"] = r.missing;
  doc["added"] = r.added;
  doc["improved"] = r.improved;
  doc["failed"] = r.failed();
  doc["notes"] = r.notes;
  auto& rows = doc["figures"] = nlohmann::json::array();
  for (const auto& c : r.rows) {
    nlohmann::json j;
    j["name"] = c.name;
    j["metric"] = c.metric;
    j["unit"] = c.unit;
    j["direction"] = direction_name(c.direction);
    j["n_base"] = c.n_base;
    j["n_new"] = c.n_new;
    j["base"] = c.base;
    j["new"] = c.now;
    j["change"] = std::isfinite(c.change) ? nlohmann::json(c.change) : nlohmann::json(nullptr);
    j["p_value"] = c.p_value >= 0 ? nlohmann::json(c.p_value) : nlohmann::json(nullptr);
    j["threshold"] = c.threshold;
    j["cv"] = c.cv;
    j["verdict"] = c.verdict;
    j["failed"] = c.failed;
    if (c.first_diff_index >= 0) j["first_diff_step"] = c.first_diff_step;
    j["detail"] = c.detail;
    rows.push_back(j);
  }
  return doc.dump(2) + "\n";
}

void write_report(h5::Group& group, const CompareReport& r) {
  group.set_attr("base", r.base_source);
  group.set_attr("new", r.new_source);
  group.set_attr("regressions", static_cast<int64_t>(r.regressions));
  group.set_attr("missing", static_cast<int64_t>(r.missing));
  group.set_attr("added", static_cast<int64_t>(r.added));
  group.set_attr("failed", static_cast<int64_t>(r.failed()));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const auto& c = r.rows[i];
    char name[32];
    std::snprintf(name, sizeof name, "%04zu", i);
    h5::Group g = group.group(name);
    g.set_attr("name", c.name);
    g.set_attr("metric", c.metric);
    g.set_attr("unit", c.unit);
    g.set_attr("direction", direction_name(c.direction));
    g.set_attr("n_base", static_cast<int64_t>(c.n_base));
    g.set_attr("n_new", static_cast<int64_t>(c.n_new));
    g.set_attr("base", c.base);
    g.set_attr("new", c.now);
    g.set_attr("change", c.change);
    g.set_attr("p_value", c.p_value);
    g.set_attr("threshold", c.threshold);
    g.set_attr("cv", c.cv);
    g.set_attr("verdict", c.verdict);
    g.set_attr("failed", static_cast<int64_t>(c.failed));
    g.set_attr("first_diff_step", c.first_diff_step);
    g.set_attr("detail", c.detail);
  }
}

}  // namespace moelab::bench
