// A dense, row-major, owning tensor: the one buffer type the CPU backend and
// the layers pass around. Deliberately plain (a shape and a std::vector) so
// every layer's arithmetic stays readable; views are raw pointers plus sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace moelab {

using Shape = std::vector<int64_t>;

inline int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape);  // "[4, 128]"

template <typename T>
struct Tensor {
  Shape shape;
  std::vector<T> data;

  Tensor() = default;
  explicit Tensor(Shape s, T fill = T(0)) : shape(std::move(s)), data(shape_numel(shape), fill) {}
  Tensor(Shape s, std::vector<T> values) : shape(std::move(s)), data(std::move(values)) {
    MOE_CHECK(static_cast<int64_t>(data.size()) == shape_numel(shape))
        << "tensor of shape " << shape_str(shape) << " given " << data.size() << " values";
  }

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  int rank() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }
  T* ptr() { return data.data(); }
  const T* ptr() const { return data.data(); }
  T& operator[](int64_t i) { return data[i]; }
  const T& operator[](int64_t i) const { return data[i]; }
  void zero() { std::fill(data.begin(), data.end(), T(0)); }
  void resize(Shape s) {
    shape = std::move(s);
    data.assign(shape_numel(shape), T(0));
  }
};

}  // namespace moelab
