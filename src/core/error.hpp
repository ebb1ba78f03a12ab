// moelab's one error type and the CHECK family (STYLE.md habit 8).
//
//   MOE_CHECK(e % ep == 0) << "experts (" << e << ") not divisible by EP (" << ep << ")";
//
// throws moelab::Error whose what() is the streamed explanation followed by
// the failing condition and file:line in brackets. Library code throws; only
// cli/main.cpp catches, prints one line and exits with status 2.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace moelab {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

// Collects the streamed message; its destructor throws. Only ever created as
// a temporary inside the MOE_CHECK macro's else-branch, so it is never
// destroyed during stack unwinding.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition)
      : file_(file), line_(line), condition_(condition) {}
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;

  template <typename T>
  CheckFailure& operator<<(const T& value) {
    message_ << value;
    return *this;
  }

  [[noreturn]] ~CheckFailure() noexcept(false);

 private:
  const char* file_;
  int line_;
  const char* condition_;
  std::ostringstream message_;
};

// Turns `CheckFailure(...) << a << b` into a void expression; `&` binds
// looser than `<<`, so the whole streamed message is built first. This keeps
// MOE_CHECK a single expression (no dangling-else inside unbraced ifs).
struct Voidify {
  void operator&(const CheckFailure&) {}
};

}  // namespace detail
}  // namespace moelab

#define MOE_CHECK(condition) \
  (condition) ? (void)0 : ::moelab::detail::Voidify() & ::moelab::detail::CheckFailure(__FILE__, __LINE__, #condition)

// Unconditional failure with the same format, for switch defaults and the like.
#define MOE_FAIL() \
  ::moelab::detail::Voidify() & ::moelab::detail::CheckFailure(__FILE__, __LINE__, "")

// MPI calls return an error code; MPI_ERRORS_RETURN is not set by default, so
// in practice MPI aborts first, but the check documents the contract.
#define MOE_MPI_CHECK(call)                                                  \
  do {                                                                       \
    int moe_mpi_rc_ = (call);                                                \
    MOE_CHECK(moe_mpi_rc_ == 0) << "MPI call " #call " failed with code " \
                                << moe_mpi_rc_;                              \
  } while (0)
