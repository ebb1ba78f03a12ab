// The results file of one moelab invocation (DESIGN.md "Results"): root
// provenance attributes, one group per run under /runs with every resolved
// configuration key as an attribute and a status (running | complete |
// failed: reason), and per-step series that grow and are flushed as the run
// goes, so a killed process leaves a readable file whose status says so.
// The schema is documented in results/README.md.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/timer.hpp"
#include "io/hdf5.hpp"

namespace moelab {

using ConfigPairs = std::vector<std::pair<std::string, std::string>>;

class ResultsRun;

class ResultsFile : public std::enable_shared_from_this<ResultsFile> {
 public:
  // Creates `path` (refusing to replace an existing file unless overwrite) and
  // writes the root attributes: moelab_version, git_commit, created_utc, host,
  // command_line, mpi_world_size.
  static std::shared_ptr<ResultsFile> create(const std::string& path, bool overwrite,
                                             const std::string& command_line, int mpi_world_size);

  // A new run group /runs/<name>, status "running", with the config pairs as
  // attributes (numbers stored as numbers).
  ResultsRun new_run(const std::string& name, const ConfigPairs& config);

  h5::File& file() { return file_; }
  const std::string& path() const { return path_; }
  void flush();
  // Flushes when flush_interval_s has passed since the last flush.
  void maybe_flush();
  double flush_interval_s = 1.0;

 private:
  ResultsFile(h5::File file, std::string path) : file_(std::move(file)), path_(std::move(path)) {}
  h5::File file_;
  std::string path_;
  Timer since_flush_;
};

class ResultsRun {
 public:
  ResultsRun(std::shared_ptr<ResultsFile> file, h5::Group group)
      : file_(std::move(file)), group_(std::move(group)) {}
  ResultsRun(ResultsRun&&) = default;
  ResultsRun& operator=(ResultsRun&&) = default;
  // A run destroyed while still "running" (an exception unwound past it) is
  // marked failed, so a partial run never looks complete.
  ~ResultsRun();

  h5::Group& group() { return group_; }
  // Appends one value to the float64 series at `path` (e.g. "train/loss").
  void append(const std::string& path, double value);
  // Appends one row to a series with rows of shape inner_shape.
  template <typename T>
  void append_row(const std::string& path, const Shape& inner_shape, const T* row);
  void complete();
  void fail(const std::string& reason);
  bool finished() const { return finished_; }
  void flush() { file_->flush(); }
  void maybe_flush() { file_->maybe_flush(); }

 private:
  h5::Series& series_for(const std::string& path, hid_t type, const Shape& inner, const std::function<h5::Series()>& make);
  std::shared_ptr<ResultsFile> file_;
  h5::Group group_;
  std::map<std::string, h5::Series> series_;
  bool finished_ = false;
};

// Stores "3" as an integer, "0.5" as a double and anything else as a string.
void set_typed_attr(h5::Group& group, const std::string& name, const std::string& value);

// UTC time as ISO 8601, host name.
std::string utc_now_iso8601();
std::string host_name();

}  // namespace moelab
