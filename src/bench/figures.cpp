#include "bench/figures.hpp"

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.hpp"

namespace moelab::bench {

std::string direction_name(Direction d) {
  switch (d) {
    case Direction::lower: return "lower";
    case Direction::higher: return "higher";
    case Direction::exact: return "exact";
  }
  return "?";
}

Direction parse_direction(const std::string& text) {
  if (text == "lower") return Direction::lower;
  if (text == "higher") return Direction::higher;
  if (text == "exact") return Direction::exact;
  MOE_FAIL() << "direction '" << text << "': expected lower, higher or exact";
}

const Figure* FigureSet::find(const std::string& name, const std::string& metric) const {
  for (const auto& f : figures)
    if (f.name == name && f.metric == metric) return &f;
  return nullptr;
}

// ---- Google Benchmark JSON ---------------------------------------------------

namespace {

bool is_rate_counter(const std::string& name) {
  return name.size() > 2 && name.compare(name.size() - 2, 2, "/s") == 0;
}

const std::set<std::string>& standard_keys() {
  static const std::set<std::string> keys = {
      "name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
      "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index", "aggregate_name",
      "aggregate_unit", "error_occurred", "error_message", "label", "big_o", "rms", "complexity_n"};
  return keys;
}

}  // namespace

FigureSet parse_gbench_json(const std::string& text, const std::string& source) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    MOE_FAIL() << source << ": not valid JSON (" << e.what() << ")";
  }
  MOE_CHECK(doc.is_object() && doc.contains("benchmarks") && doc["benchmarks"].is_array())
      << source << ": not Google Benchmark JSON (no \"benchmarks\" array)";
  FigureSet set;
  set.source = source;
  if (doc.contains("context") && doc["context"].is_object()) {
    for (const auto& [key, value] : doc["context"].items()) {
      if (value.is_string()) set.provenance["gbench_" + key] = value.get<std::string>();
      else if (value.is_number() || value.is_boolean()) set.provenance["gbench_" + key] = value.dump();
    }
  }
  // Figures in first-seen order; aggregates kept aside for files without iterations.
  std::vector<Figure> figures;
  std::map<std::string, size_t> index;
  std::map<std::string, Figure> mean_only;
  std::vector<std::string> mean_order;
  auto add = [&](std::map<std::string, size_t>& idx, std::vector<Figure>& out, const std::string& name,
                 const std::string& metric, const std::string& unit, Direction dir, double value) {
    const std::string key = name + "\x1f" + metric;
    auto it = idx.find(key);
    if (it == idx.end()) {
      it = idx.emplace(key, out.size()).first;
      out.push_back(Figure{name, metric, unit, dir, {}, {}});
    }
    out[it->second].samples.push_back(value);
  };
  std::map<std::string, size_t> mean_index;
  std::vector<Figure> means;
  for (const auto& b : doc["benchmarks"]) {
    const std::string name = b.contains("run_name") ? b["run_name"].get<std::string>() : b.value("name", "?");
    if (b.value("error_occurred", false)) {
      set.notes.push_back(name + ": error: " + b.value("error_message", std::string("(no message)")));
      continue;
    }
    const std::string run_type = b.value("run_type", std::string("iteration"));
    const bool is_mean = run_type == "aggregate" && b.value("aggregate_name", std::string()) == "mean";
    if (run_type != "iteration" && !is_mean) continue;
    auto& idx = is_mean ? mean_index : index;
    auto& out = is_mean ? means : figures;
    const std::string time_unit = b.value("time_unit", std::string("ns"));
    if (b.contains("real_time")) add(idx, out, name, "real_time", time_unit, Direction::lower, b["real_time"].get<double>());
    if (b.contains("cpu_time")) add(idx, out, name, "cpu_time", time_unit, Direction::lower, b["cpu_time"].get<double>());
    for (const auto& [key, value] : b.items()) {
      if (standard_keys().count(key) || !value.is_number()) continue;
      add(idx, out, name, key, is_rate_counter(key) ? key : "", is_rate_counter(key) ? Direction::higher : Direction::lower,
          value.get<double>());
    }
  }
  // Cases that appear only as aggregates contribute their mean (one sample).
  for (auto& m : means) {
    bool have = false;
    for (const auto& f : figures) have = have || (f.name == m.name && f.metric == m.metric);
    if (!have) figures.push_back(m);
  }
  set.figures = std::move(figures);
  return set;
}

// ---- HDF5 -------------------------------------------------------------------------

void write_figures(h5::Group& bench, const FigureSet& set) {
  for (const auto& [key, value] : set.provenance) bench.set_attr(key, value);
  for (size_t i = 0; i < set.notes.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "note_%03zu", i);
    bench.set_attr(name, set.notes[i]);
  }
  bench.set_attr("figure_count", static_cast<int64_t>(set.figures.size()));
  for (size_t i = 0; i < set.figures.size(); ++i) {
    const Figure& f = set.figures[i];
    char name[32];
    std::snprintf(name, sizeof name, "%04zu", i);
    h5::Group g = bench.group(name);
    g.set_attr("name", f.name);
    g.set_attr("metric", f.metric);
    g.set_attr("unit", f.unit);
    g.set_attr("direction", direction_name(f.direction));
    g.write<double>("samples", {static_cast<int64_t>(f.samples.size())}, f.samples.data());
    if (!f.steps.empty()) g.write<double>("steps", {static_cast<int64_t>(f.steps.size())}, f.steps.data());
  }
}

FigureSet read_figures_h5(const std::string& path) {
  h5::File file = h5::File::open_read(path);
  FigureSet set;
  set.source = path;
  MOE_CHECK(file.is_group("runs")) << path << ": no /runs group (not a moelab results file)";
  h5::Group runs = file.open_group("runs");
  for (const auto& run_name : runs.children()) {
    h5::Group run = runs.open_group(run_name);
    if (!run.is_group("bench")) continue;
    h5::Group bench = run.open_group("bench");
    for (const auto& attr : bench.attr_names()) {
      if (attr.rfind("note_", 0) == 0) set.notes.push_back(bench.attr_string(attr));
      else if (attr != "figure_count") set.provenance[attr] = bench.attr_as_text(attr);
    }
    for (const auto& child : bench.children()) {
      if (!bench.is_group(child)) continue;
      h5::Group g = bench.open_group(child);
      Figure f;
      f.name = g.attr_string("name");
      f.metric = g.attr_string("metric");
      f.unit = g.attr_string("unit");
      f.direction = parse_direction(g.attr_string("direction"));
      Tensor<double> samples = g.read<double>("samples");
      f.samples.assign(samples.ptr(), samples.ptr() + samples.numel());
      if (g.has("steps")) {
        Tensor<double> steps = g.read<double>("steps");
        f.steps.assign(steps.ptr(), steps.ptr() + steps.numel());
      }
      set.figures.push_back(std::move(f));
    }
  }
  MOE_CHECK(!set.figures.empty() || !set.notes.empty()) << path << ": no /runs/*/bench group (not a moelab bench file)";
  return set;
}

FigureSet load_figures(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MOE_CHECK(in.good()) << path << ": cannot open";
  char magic[8] = {0};
  in.read(magic, 8);
  if (in.gcount() == 8 && std::string(magic, 8) == "\x89HDF\r\n\x1a\n") return read_figures_h5(path);
  in.clear();
  in.seekg(0);
  std::stringstream text;
  text << in.rdbuf();
  return parse_gbench_json(text.str(), path);
}

}  // namespace moelab::bench
