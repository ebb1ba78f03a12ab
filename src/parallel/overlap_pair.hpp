// Two computations interleaved at their communication points: DualPipe's
// overlapped forward-and-backward (DeepSeek-V3 §3.2.1, Figure 4), where the
// forward chunk of one micro-batch computes while the backward chunk of
// another communicates, and the other way round.
//
// run(a, b) runs a and b as two fibers (Boost.Context: each its own stack,
// both on the calling thread). A task runs until it waits for a request
// (wait_request in comm_progress.hpp calls yield_turn), then the other task
// runs until it waits or ends, and so on: strict alternation at wait points,
// so the switching order depends only on the two programs, not on timing.
// Every expert-parallel peer running the same F&B step therefore posts its
// all-to-alls in the same order, and the results are bit-identical to
// running a then b (the two computations share no data).
//
// Why fibers: the wait points sit deep inside the MoE layer's dispatch and
// combine; a second stack lets them suspend without turning every layer
// function into a coroutine, and switching stacks costs nanoseconds where
// handing over between OS threads costs a scheduler wake-up (hundreds of
// microseconds with more ranks than cores, measured: it made F&B slower).
// One thread means the two tasks' OpenMP and BLAS calls never run at once.
// A task must not wait inside an OpenMP parallel region.
#pragma once

#include <functional>

namespace moelab::parallel {

class OverlapPair {
 public:
  // Runs both to completion, a first; rethrows the first exception (a's,
  // then b's) once both have ended. Returns how many times a task handed over
  // at a wait (0: a ran to its end, then b to its end).
  static int run(const std::function<void()>& a, const std::function<void()>& b);

  // From inside a task: let the other task run until it waits or ends. A
  // no-op outside run() and once the other task has ended.
  static void yield_turn();
};

}  // namespace moelab::parallel
