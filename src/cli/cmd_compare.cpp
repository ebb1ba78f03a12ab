// moelab compare BASE NEW: judges a benchmark run against a baseline
// (src/bench/compare.hpp has the rules). BASE and NEW are `moelab bench`
// HDF5 files or Google Benchmark JSON files (--benchmark_out), in any mix.
// Table on stdout; exit 1 on a regression, a differing exact curve or a
// missing figure; 2 on bad input.
#include <fstream>
#include <sstream>

#include "bench/compare.hpp"
#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "core/error.hpp"

namespace moelab {

namespace {

// "5%" -> 0.05; "0.05" -> 0.05.
double parse_fraction(const std::string& text, const std::string& option) {
  std::string t = text;
  bool percent = !t.empty() && t.back() == '%';
  if (percent) t.pop_back();
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MOE_CHECK(used == t.size() && used > 0 && v >= 0) << "--" << option << " '" << text
                                                    << "': expected a non-negative fraction (0.05) or percentage (5%)";
  return percent ? v / 100 : v;
}

}  // namespace

int cmd_compare(const std::vector<std::string>& args, const CommandContext& ctx) {
  CommandOptions opts("compare", "BASE NEW [--threshold 5%] [--threshold METRIC=1%] [--metric a,b] [--json F] [--out F.h5]",
                      "Compare benchmark figures of NEW against BASE (moelab bench HDF5 files or Google Benchmark\n"
                      "JSON). Per figure: medians, change, Mann-Whitney U p-value (two-sided, as Google\n"
                      "Benchmark's compare.py) and verdict. A regression is a change the wrong way beyond the\n"
                      "threshold that is significant at --alpha (where the sample sizes allow the test at all;\n"
                      "else the threshold alone decides). The noise gate widens a figure's threshold to\n"
                      "--noise-factor x its coefficient of variation. Exact figures (loss curves) must match\n"
                      "bit for bit; the first differing step is reported. Figures only in BASE are MISSING\n"
                      "(a failure unless --allow-missing); figures only in NEW are listed as new.\n"
                      "Exit status: 0 pass, 1 regression / difference / missing, 2 bad input.");
  opts.add()("files", po::value<std::vector<std::string>>()->multitoken(), "BASE and NEW")  //
      ("threshold", po::value<std::vector<std::string>>()->multitoken()->composing(),
       "relative threshold, `5%` (every metric) or `METRIC=1%` (one metric); repeatable. Default 5%")  //
      ("metric", po::value<std::string>()->default_value(""),
       "comma-separated metrics to compare (e.g. real_time,instructions,train/loss); default all")  //
      ("alpha", po::value<double>()->default_value(0.05), "significance level of the U test")  //
      ("noise-factor", po::value<double>()->default_value(3.0),
       "noise gate: threshold >= this x coefficient of variation of the samples (0: off)")  //
      ("allow-missing", po::bool_switch(), "figures absent from NEW do not fail the comparison")  //
      ("json", po::value<std::string>()->default_value(""), "also write the comparison as JSON to this file")  //
      ("out", po::value<std::string>()->default_value(""), "also write the comparison to this HDF5 file (/runs/compare/compare)")  //
      ("force", po::bool_switch(), "overwrite --out if it exists");
  opts.positional("files", 2);
  if (!opts.parse(args, ctx)) return 0;
  MOE_CHECK(opts.has("files") && opts.get<std::vector<std::string>>("files").size() == 2)
      << "moelab compare: expected two files, BASE and NEW (see --help)";
  const auto files = opts.get<std::vector<std::string>>("files");

  bench::CompareOptions options;
  if (opts.has("threshold")) {
    for (const auto& t : opts.get<std::vector<std::string>>("threshold")) {
      const auto eq = t.find('=');
      if (eq == std::string::npos) options.threshold = parse_fraction(t, "threshold");
      else options.metric_threshold[t.substr(0, eq)] = parse_fraction(t.substr(eq + 1), "threshold");
    }
  }
  std::stringstream metrics(opts.get<std::string>("metric"));
  for (std::string m; std::getline(metrics, m, ',');)
    if (!m.empty()) options.metrics.push_back(m);
  options.alpha = opts.get<double>("alpha");
  MOE_CHECK(options.alpha > 0 && options.alpha < 1) << "--alpha " << options.alpha << ": expected in (0, 1)";
  options.noise_factor = opts.get<double>("noise-factor");
  MOE_CHECK(options.noise_factor >= 0) << "--noise-factor " << options.noise_factor << ": expected >= 0";
  options.allow_missing = opts.get<bool>("allow-missing");

  const bench::FigureSet base = bench::load_figures(files[0]);
  const bench::FigureSet now = bench::load_figures(files[1]);
  const bench::CompareReport report = bench::compare_figures(base, now, options);
  for (const auto& key : {"commit", "host", "cpu_model", "load_avg"}) {
    auto b = base.provenance.find(key), n = now.provenance.find(key);
    if (b != base.provenance.end() && n != now.provenance.end() && b->second != n->second)
      ctx.print() << key << ": " << b->second << " -> " << n->second << "\n";
  }
  ctx.print() << bench::render_table(report);

  if (!opts.get<std::string>("json").empty()) {
    const std::string path = opts.get<std::string>("json");
    std::ofstream out(path);
    MOE_CHECK(out.good()) << "--json " << path << ": cannot write";
    out << bench::report_json(report);
  }
  if (!opts.get<std::string>("out").empty() && ctx.is_root()) {
    auto results = ResultsFile::create(opts.get<std::string>("out"), opts.get<bool>("force"), ctx.command_line,
                                       ctx.world_size);
    ConfigPairs config = opts.resolved();
    ResultsRun run = results->new_run("compare", config);
    h5::Group g = run.group().group("compare");
    bench::write_report(g, report);
    run.complete();
    results->flush();
  }
  return report.failed() ? 1 : 0;
}

}  // namespace moelab
