// Communication that proceeds while the rank computes, and the measurement of
// how much of it did (issue 6, "Overlap").
//
// Open MPI moves a non-blocking message (or runs a non-blocking all-to-all
// schedule) only inside MPI calls on the same process ("OMPI progress: no" in
// ompi_info), so a request posted before a long computation would simply wait
// for the next MPI call. CommProgress owns the requests handed to it and, when
// MPI provides MPI_THREAD_MULTIPLE, tests them from a progress thread that
// sleeps a few microseconds between polls (parks when none is in flight), so
// transfers advance and complete while the rank's threads compute. Without
// MPI_THREAD_MULTIPLE there is no thread: a request then progresses only when
// waited on (the measurement below reports that honestly as exposed).
//
// Measured, per communication class (expert-parallel all-to-alls, pipeline
// point-to-point):
//   comm_s     the time during which at least one request of the class was
//              in flight (union of [posted, completed] intervals)
//   exposed_s  the time a thread of the rank spent blocked waiting for a
//              request of the class (the rank had nothing else to run)
//   hidden     1 - exposed_s / comm_s: the fraction of communication time
//              during which the rank was computing
// Completion times come from the progress thread's polls, so they are late by
// at most one poll interval (about 20 us).
//
// wait_request() is what communicating code calls instead of MPI_Wait: with
// no CommProgress installed on the calling thread it is MPI_Wait; with one
// (CommScope) the request is handed over and, inside an F&B pair
// (overlap_pair.hpp), the other task runs while it is in flight.
#pragma once

#include <mpi.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace moelab::parallel {

enum class CommClass : int { expert = 0, pipeline = 1 };
inline constexpr int kNumCommClasses = 2;
const char* comm_class_name(CommClass c);

struct CommFigures {
  double comm_s = 0;     // union of in-flight intervals
  double exposed_s = 0;  // blocked waiting
  int64_t requests = 0;
  double hidden_fraction() const { return comm_s > 0 ? 1.0 - exposed_s / comm_s : 0.0; }
  void add(const CommFigures& o) {
    comm_s += o.comm_s;
    exposed_s += o.exposed_s;
    requests += o.requests;
  }
};

class CommProgress {
 public:
  // use_thread: run the progress thread (requires MPI_THREAD_MULTIPLE;
  // false when MPI was initialised with less).
  explicit CommProgress(bool use_thread);
  ~CommProgress();
  CommProgress(const CommProgress&) = delete;
  CommProgress& operator=(const CommProgress&) = delete;

  // Whether this MPI process allows a progress thread.
  static bool thread_supported();

  using Ticket = int64_t;
  // Takes over a posted request (the caller must not touch it again).
  Ticket track(MPI_Request request, CommClass cls);
  bool done(Ticket t);
  // Blocks until the request completed; the blocked time counts as exposed.
  void wait(Ticket t);
  // Figures since the last reset; per class, and all classes together (the
  // union over classes, so overlapping EP and PP transfers count once).
  CommFigures figures(CommClass cls) const;
  CommFigures total() const;
  // Forgets completed requests and the figures; every request must be done.
  void reset();
  bool threaded() const { return thread_.joinable(); }

 private:
  struct Slot {
    MPI_Request request;
    CommClass cls;
    double posted_s = 0, done_s = -1;
  };
  void run_thread();
  CommFigures figures_where(int cls) const;  // cls < 0: all classes

  mutable std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Slot> slots_;  // by ticket - base_
  Ticket base_ = 0;
  std::vector<Ticket> pending_;  // tickets the thread has not seen complete
  double exposed_s_[kNumCommClasses] = {};
  bool stop_ = false;
  std::thread thread_;
};

// Installs a CommProgress for wait_request() on the calling thread.
class CommScope {
 public:
  explicit CommScope(CommProgress* progress);
  ~CommScope();

 private:
  CommProgress* previous_;
};
CommProgress* current_comm_progress();

// MPI_Wait for code that may run inside an overlapped F&B step: the request
// goes to the installed CommProgress (if any) and, inside an OverlapPair
// task, the other task runs until this one's turn comes back.
void wait_request(MPI_Request* request, CommClass cls);

}  // namespace moelab::parallel
