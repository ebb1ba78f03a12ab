#include "io/results.hpp"

#include <unistd.h>

#include <charconv>
#include <ctime>
#include <exception>

#include "core/error.hpp"
#include "core/version.hpp"

namespace moelab {

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string host_name() {
  char buffer[256] = {0};
  gethostname(buffer, sizeof buffer - 1);
  return buffer;
}

void set_typed_attr(h5::Group& group, const std::string& name, const std::string& value) {
  const char* begin = value.data();
  const char* end = begin + value.size();
  int64_t as_int;
  auto [p1, e1] = std::from_chars(begin, end, as_int);
  if (e1 == std::errc() && p1 == end && !value.empty()) return group.set_attr(name, as_int);
  double as_double;
  auto [p2, e2] = std::from_chars(begin, end, as_double);
  if (e2 == std::errc() && p2 == end && !value.empty()) return group.set_attr(name, as_double);
  group.set_attr(name, value);
}

std::shared_ptr<ResultsFile> ResultsFile::create(const std::string& path, bool overwrite,
                                                 const std::string& command_line, int mpi_world_size) {
  std::shared_ptr<ResultsFile> results(new ResultsFile(h5::File::create(path, overwrite), path));
  h5::File& f = results->file_;
  f.set_attr("moelab_version", std::string(kMoelabVersion));
  f.set_attr("git_commit", std::string(kMoelabGitCommit));
  f.set_attr("created_utc", utc_now_iso8601());
  f.set_attr("host", host_name());
  f.set_attr("command_line", command_line);
  f.set_attr("mpi_world_size", static_cast<int64_t>(mpi_world_size));
  f.group("runs");
  results->flush();
  return results;
}

ResultsRun ResultsFile::new_run(const std::string& name, const ConfigPairs& config) {
  MOE_CHECK(!file_.has("runs/" + name)) << path_ << ": run '" << name << "' already exists";
  h5::Group group = file_.group("runs/" + name);
  for (const auto& [key, value] : config) set_typed_attr(group, key, value);
  group.set_attr("status", std::string("running"));
  group.set_attr("started_utc", utc_now_iso8601());
  flush();
  // The shared_ptr keeps the file open as long as any run of it is alive.
  return ResultsRun(shared_from_this(), std::move(group));
}

void ResultsFile::flush() {
  file_.flush();
  since_flush_.reset();
}

void ResultsFile::maybe_flush() {
  if (since_flush_.seconds() >= flush_interval_s) flush();
}

ResultsRun::~ResultsRun() {
  if (!file_ || finished_ || !group_.id()) return;
  try {
    fail(std::uncaught_exceptions() > 0 ? "ended by an error before completing" : "ended before completing");
  } catch (...) {
    // Destructors must not throw; the file keeps status "running".
  }
}

h5::Series& ResultsRun::series_for(const std::string& path, hid_t, const Shape&,
                                   const std::function<h5::Series()>& make) {
  auto it = series_.find(path);
  if (it == series_.end()) it = series_.emplace(path, make()).first;
  return it->second;
}

void ResultsRun::append(const std::string& path, double value) {
  series_for(path, H5T_NATIVE_DOUBLE, {}, [&] { return group_.series<double>(path); }).append(&value);
}

template <typename T>
void ResultsRun::append_row(const std::string& path, const Shape& inner_shape, const T* row) {
  series_for(path, h5::native_type<T>(), inner_shape, [&] { return group_.series<T>(path, inner_shape); })
      .append(row);
}
template void ResultsRun::append_row<float>(const std::string&, const Shape&, const float*);
template void ResultsRun::append_row<double>(const std::string&, const Shape&, const double*);
template void ResultsRun::append_row<int32_t>(const std::string&, const Shape&, const int32_t*);
template void ResultsRun::append_row<int64_t>(const std::string&, const Shape&, const int64_t*);

void ResultsRun::complete() {
  group_.set_attr("status", std::string("complete"));
  group_.set_attr("finished_utc", utc_now_iso8601());
  finished_ = true;
  file_->flush();
}

void ResultsRun::fail(const std::string& reason) {
  group_.set_attr("status", "failed: " + reason);
  group_.set_attr("finished_utc", utc_now_iso8601());
  finished_ = true;
  file_->flush();
}

}  // namespace moelab
