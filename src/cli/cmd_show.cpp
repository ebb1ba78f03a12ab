// moelab show FILE.h5: a readable summary of a results file — provenance,
// every run with its status and key configuration, and the last value of each
// metric (for per-step series) or the shape of each table.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "io/hdf5.hpp"

namespace moelab {

namespace {

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", v);
  return buffer;
}

std::string status_text(const std::string& status) {
  if (status == "running")
    return "running — NOT complete (still running, or the process was killed before finishing)";
  return status;
}

// One line per dataset: 1-D series show their last value, wider ones the
// last row's min/mean/max.
void show_dataset(std::ostream& out, const h5::Group& group, const std::string& name, const std::string& path) {
  const Shape shape = group.dataset_shape(name);
  const std::string type = group.dataset_type_name(name);
  out << "    " << path << " " << shape_str(shape) << " " << type;
  if (type == "compound" || type == "string" || type == "other" || shape.empty() || shape[0] == 0) {
    out << "\n";
    return;
  }
  Tensor<double> data = group.read<double>(name);
  const int64_t row = data.numel() / shape[0];
  const double* last = data.ptr() + (shape[0] - 1) * row;
  if (row == 1) {
    out << "  last " << number(last[0]) << "\n";
    return;
  }
  double lo = last[0], hi = last[0], sum = 0;
  for (int64_t i = 0; i < row; ++i) lo = std::min(lo, last[i]), hi = std::max(hi, last[i]), sum += last[i];
  out << "  last row min " << number(lo) << " mean " << number(sum / row) << " max " << number(hi) << "\n";
}

void walk(std::ostream& out, const h5::Group& group, const std::string& prefix) {
  for (const auto& child : group.children()) {
    const std::string path = prefix.empty() ? child : prefix + "/" + child;
    if (group.is_group(child)) {
      h5::Group sub = group.open_group(child);
      for (const auto& attr : sub.attr_names())
        out << "    " << path << " @" << attr << " = " << sub.attr_as_text(attr) << "\n";
      walk(out, sub, path);
    } else {
      show_dataset(out, group, child, path);
    }
  }
}

// Training runs (moelab train): one line with the final figures — the last
// training and held-out loss, and MaxVio (last step's batch value and the last
// evaluation's global value, each the mean over MoE layers).
double last_mean(const h5::Group& group, const std::string& name) {
  Tensor<double> data = group.read<double>(name);
  const Shape shape = data.shape;
  if (shape.empty() || shape[0] == 0) return std::nan("");
  const int64_t row = data.numel() / shape[0];
  double sum = 0;
  for (int64_t i = 0; i < row; ++i) sum += data[(shape[0] - 1) * row + i];
  return sum / static_cast<double>(row);
}

void show_training_summary(std::ostream& out, const h5::Group& run) {
  if (!run.has("train/loss")) return;
  auto figure = [&](const std::string& path) { return run.has(path) ? number(last_mean(run, path)) : "-"; };
  out << "    final: train loss " << figure("train/loss") << "  eval loss " << figure("eval/loss")
      << "  MaxVio_batch " << figure("load/maxvio") << "  MaxVio_global " << figure("eval/maxvio_global") << "\n";
}

}  // namespace

int cmd_show(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts("show", "FILE.h5 [--all-config]",
                      "Summarise a moelab results file: provenance, runs with their status and configuration,\n"
                      "and the last value of every metric.");
  opts.add()("file", po::value<std::string>()->value_name("FILE.h5"), "results file to summarise")  //
      ("all-config", po::bool_switch(), "print every configuration attribute of each run (default: 12)");
  opts.positional("file");
  if (!opts.parse(args, ctx)) return 0;
  MOE_CHECK(opts.has("file")) << "moelab show: which file? usage: moelab show FILE.h5";
  const std::string path = opts.get<std::string>("file");
  h5::File file = h5::File::open_read(path);
  std::ostream& out = ctx.print();

  out << path << "\n";
  for (const auto& attr : file.attr_names()) out << "  " << attr << ": " << file.attr_as_text(attr) << "\n";
  if (!file.is_group("runs")) {
    out << "  (no runs group: not a moelab results file?)\n";
    return 0;
  }
  h5::Group runs = file.open_group("runs");
  const auto names = runs.children();
  out << "runs: " << names.size() << "\n";
  for (const auto& name : names) {
    h5::Group run = runs.open_group(name);
    out << "\n  run " << name << ": "
        << status_text(run.has_attr("status") ? run.attr_string("status") : "unknown") << "\n";
    int printed = 0;
    const bool all = opts.get<bool>("all-config");
    auto attrs = run.attr_names();
    for (const auto& attr : attrs) {
      if (attr == "status") continue;
      if (!all && printed == 12) {
        out << "    ... " << attrs.size() - 13 << " more configuration keys (--all-config)\n";
        break;
      }
      std::string value = run.attr_as_text(attr);
      if (value.size() > 100) value = value.substr(0, 97) + "...";
      out << "    " << attr << " = " << value << "\n";
      ++printed;
    }
    show_training_summary(out, run);
    walk(out, run, "");
  }
  return 0;
}

}  // namespace moelab
