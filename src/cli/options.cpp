#include "cli/options.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.hpp"

namespace moelab {

CommandOptions::CommandOptions(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)),
      synopsis_(std::move(synopsis)),
      description_(std::move(description)),
      options_("options", 100, 50) {
  options_.add_options()                                         //
      ("help,h", "print this help and exit")                     //
      ("config", po::value<std::string>()->value_name("FILE.ini"),
       "read options from an INI file ([section] key = value); the command line wins over it")  //
      ("set", po::value<std::vector<std::string>>()->value_name("KEY=VALUE")->composing(),
       "set one option, e.g. --set train.steps=100 (repeatable; the later wins)")  //
      ("sweep", po::value<std::vector<std::string>>()->value_name("KEY:V1,V2")->composing(),
       "run once per value: --sweep parallel.ep:1,2,4, or `sweep = parallel.ep: 1,2,4` lines in the INI; the "
       "cartesian product of all sweep lines runs, each point as one run group of the results file");
}

std::string CommandOptions::help_text() const {
  std::ostringstream out;
  out << "usage: moelab " << command_ << " " << synopsis_ << "\n\n" << description_ << "\n\n" << options_;
  return out.str();
}

namespace {

// "--set a.b=c" -> "--a.b=c", so --set and ordinary options share one parse
// and the later of two settings of a key wins.
std::vector<std::string> expand_set(const std::vector<std::string>& args, const std::string& command) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string value;
    if (args[i] == "--set") {
      MOE_CHECK(i + 1 < args.size()) << command << ": --set needs KEY=VALUE";
      value = args[++i];
    } else if (args[i].rfind("--set=", 0) == 0) {
      value = args[i].substr(6);
    } else {
      out.push_back(args[i]);
      continue;
    }
    const size_t eq = value.find('=');
    MOE_CHECK(eq != std::string::npos && eq > 0)
        << command << ": --set '" << value << "': expected KEY=VALUE, e.g. --set train.steps=100";
    out.push_back("--" + value);
  }
  return out;
}

// Keeps only the last occurrence of each non-composing option.
void keep_last(po::parsed_options& parsed, const po::options_description& desc) {
  std::set<std::string> seen;
  std::vector<po::option> kept;
  for (auto it = parsed.options.rbegin(); it != parsed.options.rend(); ++it) {
    const po::option_description* d = desc.find_nothrow(it->string_key, false);
    const bool composing = d && d->semantic()->is_composing();
    if (it->position_key == -1 && !composing && !seen.insert(it->string_key).second) continue;
    kept.push_back(*it);
  }
  parsed.options.assign(kept.rbegin(), kept.rend());
}

}  // namespace

bool CommandOptions::parse(const std::vector<std::string>& raw_args, const CommandContext& ctx) {
  last_args_ = raw_args;
  vm_.clear();
  const std::vector<std::string> args = expand_set(raw_args, "moelab " + command_);
  try {
    po::parsed_options parsed =
        po::command_line_parser(args).options(options_).positional(positional_).run();
    keep_last(parsed, options_);
    po::store(parsed, vm_);
  } catch (const po::unknown_option& e) {
    std::string name = e.get_option_name();
    name = name.substr(0, name.find('='));  // "--a.b=2" from --set a.b=2
    MOE_FAIL() << "moelab " << command_ << ": unknown option '" << name << "' (see moelab " << command_
               << " --help)";
  } catch (const po::too_many_positional_options_error&) {
    MOE_FAIL() << "moelab " << command_ << ": too many arguments (see moelab " << command_ << " --help)";
  } catch (const po::error& e) {
    MOE_FAIL() << "moelab " << command_ << ": " << e.what() << " (see moelab " << command_ << " --help)";
  }
  if (vm_.count("help")) {
    ctx.print() << help_text();
    return false;
  }
  if (vm_.count("config")) {
    const std::string path = vm_["config"].as<std::string>();
    std::ifstream in(path);
    MOE_CHECK(in.good()) << path << ": cannot open config file";
    try {
      po::store(po::parse_config_file(in, options_, false), vm_);
    } catch (const po::unknown_option& e) {
      MOE_FAIL() << path << ": unknown key '" << e.get_option_name() << "' for moelab " << command_ << " (see moelab "
                 << command_ << " --help)";
    } catch (const po::error& e) {
      MOE_FAIL() << path << ": " << e.what();
    }
  }
  try {
    po::notify(vm_);
  } catch (const po::error& e) {
    MOE_FAIL() << "moelab " << command_ << ": " << e.what();
  }
  return true;
}

std::string option_value_text(const po::variable_value& value) {
  const boost::any& v = value.value();
  if (v.empty()) return "";
  if (auto* s = boost::any_cast<std::string>(&v)) return *s;
  if (auto* i = boost::any_cast<int>(&v)) return std::to_string(*i);
  if (auto* i = boost::any_cast<int64_t>(&v)) return std::to_string(*i);
  if (auto* u = boost::any_cast<unsigned>(&v)) return std::to_string(*u);
  if (auto* b = boost::any_cast<bool>(&v)) return *b ? "true" : "false";
  if (auto* d = boost::any_cast<double>(&v)) {
    std::ostringstream out;
    out.precision(17);
    out << *d;
    return out.str();
  }
  if (auto* list = boost::any_cast<std::vector<std::string>>(&v)) {
    std::string text;
    for (const auto& item : *list) text += (text.empty() ? "" : ",") + item;
    return text;
  }
  return "?";
}

std::vector<ConfigPairs> CommandOptions::sweep_points() const {
  std::vector<ConfigPairs> points{{}};
  if (!vm_.count("sweep")) return points;
  for (std::string line : vm_["sweep"].as<std::vector<std::string>>()) {
    line.erase(std::remove(line.begin(), line.end(), ' '), line.end());
    const size_t colon = line.find(':');
    MOE_CHECK(colon != std::string::npos && colon > 0 && colon + 1 < line.size())
        << "moelab " << command_ << ": sweep '" << line << "': expected KEY: V1,V2,... e.g. parallel.ep: 1,2,4";
    const std::string key = line.substr(0, colon);
    MOE_CHECK(options_.find_nothrow(key, false) && key != "sweep" && key != "config" && key != "set")
        << "moelab " << command_ << ": sweep over unknown key '" << key << "' (see moelab " << command_
        << " --help)";
    std::vector<std::string> values;
    std::stringstream ss(line.substr(colon + 1));
    for (std::string v; std::getline(ss, v, ',');) {
      MOE_CHECK(!v.empty()) << "moelab " << command_ << ": sweep '" << line << "' has an empty value";
      values.push_back(v);
    }
    std::vector<ConfigPairs> next;
    for (const auto& point : points)
      for (const auto& v : values) {
        ConfigPairs p = point;
        p.emplace_back(key, v);
        next.push_back(p);
      }
    points = std::move(next);
  }
  return points;
}

void CommandOptions::apply_point(const ConfigPairs& point, const CommandContext& ctx) {
  std::vector<std::string> args = last_args_;
  for (const auto& [key, value] : point) {
    args.push_back("--set");
    args.push_back(key + "=" + value);
  }
  const std::vector<std::string> base = last_args_;
  parse(args, ctx);
  last_args_ = base;  // the next point starts from the user's arguments again
}

std::string point_label(const ConfigPairs& point) {
  std::string label;
  for (const auto& [key, value] : point) label += (label.empty() ? "" : ",") + key + "=" + value;
  return label;
}

ConfigPairs CommandOptions::resolved() const {
  ConfigPairs pairs;
  for (const auto& d : options_.options()) {
    const std::string& key = d->long_name();
    if (key == "help" || key == "config" || key == "set" || key == "sweep" || !vm_.count(key)) continue;
    pairs.emplace_back(key, option_value_text(vm_[key]));
  }
  return pairs;
}

int64_t parse_index(const std::string& text) {
  size_t used = 0;
  long long v = -1;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    return -1;
  }
  return used == text.size() && used > 0 && v >= 0 ? static_cast<int64_t>(v) : -1;
}

}  // namespace moelab
