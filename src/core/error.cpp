#include "core/error.hpp"

#include <cstring>

namespace moelab::detail {

CheckFailure::~CheckFailure() noexcept(false) {
  // Strip the directory part of __FILE__: "src/model/config.cpp" reads
  // better than an absolute build path.
  const char* file = file_;
  if (const char* src = std::strstr(file_, "/src/")) file = src + 1;
  if (const char* k = std::strstr(file_, "/kernels/")) file = k + 1;
  std::string text = message_.str();
  if (text.empty()) text = "check failed";
  text += " [";
  if (*condition_) {
    text += condition_;
    text += " ";
  }
  text += "at ";
  text += file;
  text += ":";
  text += std::to_string(line_);
  text += "]";
  throw Error(text);
}

}  // namespace moelab::detail
