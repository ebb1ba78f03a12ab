#include "parallel/comm_progress.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "core/error.hpp"
#include "parallel/overlap_pair.hpp"

namespace moelab::parallel {

namespace {
thread_local CommProgress* tls_progress = nullptr;
constexpr auto kPollInterval = std::chrono::microseconds(20);
}  // namespace

const char* comm_class_name(CommClass c) { return c == CommClass::expert ? "expert" : "pipeline"; }

bool CommProgress::thread_supported() {
  int provided = MPI_THREAD_SINGLE;
  MOE_MPI_CHECK(MPI_Query_thread(&provided));
  return provided >= MPI_THREAD_MULTIPLE;
}

CommProgress::CommProgress(bool use_thread) {
  if (use_thread) {
    MOE_CHECK(thread_supported()) << "communication progress thread: MPI was not initialised with MPI_THREAD_MULTIPLE";
    thread_ = std::thread([this] { run_thread(); });
  }
}

CommProgress::~CommProgress() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

CommProgress::Ticket CommProgress::track(MPI_Request request, CommClass cls) {
  const double now = MPI_Wtime();
  std::lock_guard<std::mutex> lock(mu_);
  const Ticket t = base_ + static_cast<Ticket>(slots_.size());
  slots_.push_back(Slot{request, cls, now, -1});
  if (threaded()) {
    pending_.push_back(t);
    work_cv_.notify_all();
  }
  return t;
}

bool CommProgress::done(Ticket t) {
  std::unique_lock<std::mutex> lock(mu_);
  Slot& s = slots_.at(t - base_);
  if (s.done_s < 0 && !threaded()) {
    int flag = 0;
    MOE_MPI_CHECK(MPI_Test(&s.request, &flag, MPI_STATUS_IGNORE));
    if (flag) s.done_s = MPI_Wtime();
  }
  return s.done_s >= 0;
}

void CommProgress::wait(Ticket t) {
  std::unique_lock<std::mutex> lock(mu_);
  Slot& s = slots_.at(t - base_);
  if (s.done_s >= 0) return;
  const double start = MPI_Wtime();
  if (threaded()) {
    done_cv_.wait(lock, [&] { return s.done_s >= 0; });
  } else {
    // No progress thread: this wait is where the transfer happens.
    MPI_Request r = s.request;
    lock.unlock();
    MOE_MPI_CHECK(MPI_Wait(&r, MPI_STATUS_IGNORE));
    lock.lock();
    s.request = r;
    s.done_s = MPI_Wtime();
  }
  exposed_s_[static_cast<int>(s.cls)] += std::max(0.0, s.done_s - start);
}

void CommProgress::run_thread() {
  std::vector<MPI_Request> requests;
  std::vector<Ticket> tickets;
  std::vector<int> completed;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
    if (stop_) return;
    // Test a snapshot outside the lock (MPI may take a while); only this
    // thread touches a tracked request until it completes.
    tickets = pending_;
    requests.clear();
    for (Ticket t : tickets) requests.push_back(slots_[t - base_].request);
    lock.unlock();
    int count = 0;
    completed.resize(requests.size());
    MOE_MPI_CHECK(MPI_Testsome(static_cast<int>(requests.size()), requests.data(), &count, completed.data(),
                               MPI_STATUSES_IGNORE));
    const double now = MPI_Wtime();
    lock.lock();
    if (count > 0 && count != MPI_UNDEFINED) {
      for (int i = 0; i < count; ++i) {
        Slot& s = slots_[tickets[completed[i]] - base_];
        s.request = MPI_REQUEST_NULL;
        s.done_s = now;
      }
      std::erase_if(pending_, [&](Ticket t) { return slots_[t - base_].done_s >= 0; });
      done_cv_.notify_all();
    } else {
      lock.unlock();
      std::this_thread::sleep_for(kPollInterval);
      lock.lock();
    }
  }
}

CommFigures CommProgress::figures_where(int cls) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<double, double>> spans;
  CommFigures f;
  const double now = MPI_Wtime();
  for (const Slot& s : slots_) {
    if (cls >= 0 && static_cast<int>(s.cls) != cls) continue;
    spans.emplace_back(s.posted_s, s.done_s >= 0 ? s.done_s : now);
    ++f.requests;
  }
  std::sort(spans.begin(), spans.end());
  double covered_to = -1e300;
  for (const auto& [a, b] : spans) {
    const double from = std::max(a, covered_to);
    if (b > from) f.comm_s += b - from;
    covered_to = std::max(covered_to, b);
  }
  for (int c = 0; c < kNumCommClasses; ++c)
    if (cls < 0 || c == cls) f.exposed_s += exposed_s_[c];
  return f;
}

CommFigures CommProgress::figures(CommClass cls) const { return figures_where(static_cast<int>(cls)); }
CommFigures CommProgress::total() const { return figures_where(-1); }

void CommProgress::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto in_flight = std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.done_s < 0; });
  MOE_CHECK(in_flight == 0) << "communication progress: reset with " << in_flight << " requests in flight";
  base_ += static_cast<Ticket>(slots_.size());
  slots_.clear();
  for (double& e : exposed_s_) e = 0;
}

CommScope::CommScope(CommProgress* progress) : previous_(tls_progress) { tls_progress = progress; }
CommScope::~CommScope() { tls_progress = previous_; }
CommProgress* current_comm_progress() { return tls_progress; }

void wait_request(MPI_Request* request, CommClass cls) {
  CommProgress* progress = tls_progress;
  if (progress == nullptr) {
    MOE_MPI_CHECK(MPI_Wait(request, MPI_STATUS_IGNORE));
    return;
  }
  const CommProgress::Ticket t = progress->track(*request, cls);
  *request = MPI_REQUEST_NULL;
  OverlapPair::yield_turn();
  progress->wait(t);
}

}  // namespace moelab::parallel
