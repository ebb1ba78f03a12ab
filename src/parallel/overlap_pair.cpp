#include "parallel/overlap_pair.hpp"

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <exception>
#include <utility>

namespace moelab::parallel {

namespace ctx = boost::context;

namespace {

// The pair running on this thread: its two tasks' states and the scheduler
// each task returns to when it yields.
struct Pair {
  ctx::fiber task[2];
  ctx::fiber scheduler[2];  // where task i returns to (valid while it runs)
  bool done[2] = {false, false};
  std::exception_ptr error[2];
  int running = -1;
};
thread_local Pair* tls_pair = nullptr;

// Stacks of 8 MiB (reserved, touched lazily) with a guard page: the model's
// layers run on them with their BLAS and OpenMP calls.
constexpr std::size_t kStackBytes = 8u << 20;

ctx::fiber make_task(Pair& pair, int i, const std::function<void()>& fn) {
  return ctx::fiber(std::allocator_arg, ctx::protected_fixedsize_stack(kStackBytes),
                    [&pair, i, &fn](ctx::fiber&& scheduler) {
                      pair.scheduler[i] = std::move(scheduler);
                      try {
                        fn();
                      } catch (...) {
                        pair.error[i] = std::current_exception();
                      }
                      pair.done[i] = true;
                      return std::move(pair.scheduler[i]);
                    });
}

}  // namespace

int OverlapPair::run(const std::function<void()>& a, const std::function<void()>& b) {
  Pair pair;
  Pair* outer = tls_pair;
  tls_pair = &pair;
  pair.task[0] = make_task(pair, 0, a);
  pair.task[1] = make_task(pair, 1, b);
  int turn = 0, resumes = 0;
  while (!pair.done[0] || !pair.done[1]) {
    if (!pair.done[turn]) {
      ++resumes;
      pair.running = turn;
      pair.task[turn] = std::move(pair.task[turn]).resume();
      pair.running = -1;
    }
    turn = 1 - turn;
  }
  tls_pair = outer;
  if (pair.error[0]) std::rethrow_exception(pair.error[0]);
  if (pair.error[1]) std::rethrow_exception(pair.error[1]);
  return resumes - 2;  // each task's first start is not a switch
}

void OverlapPair::yield_turn() {
  Pair* pair = tls_pair;
  if (pair == nullptr || pair->running < 0) return;
  const int i = pair->running;
  if (pair->done[1 - i]) return;
  pair->scheduler[i] = std::move(pair->scheduler[i]).resume();
}

}  // namespace moelab::parallel
