// Typed units of the simulator (STYLE.md habit 13): a time is Seconds, a size
// Bytes, a bandwidth GBps (1e9 bytes per second) and dividing Bytes by GBps
// gives Seconds, so a bandwidth cannot be added to a time by mistake.
#pragma once

#include <compare>

namespace moelab::sim {

template <typename Tag>
struct Quantity {
  double value = 0.0;
  constexpr Quantity() = default;
  constexpr explicit Quantity(double v) : value(v) {}
  constexpr Quantity operator+(Quantity o) const { return Quantity(value + o.value); }
  constexpr Quantity operator-(Quantity o) const { return Quantity(value - o.value); }
  constexpr Quantity& operator+=(Quantity o) {
    value += o.value;
    return *this;
  }
  constexpr Quantity& operator-=(Quantity o) {
    value -= o.value;
    return *this;
  }
  constexpr Quantity operator*(double s) const { return Quantity(value * s); }
  constexpr Quantity operator/(double s) const { return Quantity(value / s); }
  constexpr double operator/(Quantity o) const { return value / o.value; }
  constexpr auto operator<=>(const Quantity&) const = default;
};

struct SecondsTag {};
struct BytesTag {};
struct GBpsTag {};
using Seconds = Quantity<SecondsTag>;
using Bytes = Quantity<BytesTag>;
using GBps = Quantity<GBpsTag>;  // 1e9 bytes per second

constexpr Seconds operator/(Bytes b, GBps bw) { return Seconds(b.value / (bw.value * 1e9)); }
constexpr Seconds max(Seconds a, Seconds b) { return a.value < b.value ? b : a; }
constexpr Seconds microseconds(double us) { return Seconds(us * 1e-6); }

}  // namespace moelab::sim
