#include "bench/stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "core/error.hpp"

namespace moelab::bench {

double median(std::vector<double> values) {
  MOE_CHECK(!values.empty()) << "median of no values";
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

double mean(const std::vector<double>& values) {
  MOE_CHECK(!values.empty()) << "mean of no values";
  return std::accumulate(values.begin(), values.end(), 0.0) / values.size();
}

double coefficient_of_variation(const std::vector<double>& values) {
  if (values.size() < 2) return 0.0;
  const double m = mean(values);
  double ss = 0;
  for (double v : values) ss += (v - m) * (v - m);
  const double sd = std::sqrt(ss / (values.size() - 1));
  return m != 0 ? sd / std::fabs(m) : 0.0;
}

double robust_cv(const std::vector<double>& values) {
  if (values.size() < 2) return 0.0;
  const double m = median(values);
  std::vector<double> deviations;
  for (double v : values) deviations.push_back(std::fabs(v - m));
  return m != 0 ? 1.4826 * median(deviations) / std::fabs(m) : 0.0;
}

namespace {

// counts[u] = number of orderings of n_a + n_b distinct values whose U
// statistic (pairs a > b) equals u.
std::vector<double> u_distribution(int n_a, int n_b) {
  // f[i][j] over u, built up by the recurrence f(i,j,u) = f(i-1,j,u-j) + f(i,j-1,u).
  std::vector<std::vector<std::vector<double>>> f(n_a + 1, std::vector<std::vector<double>>(n_b + 1));
  for (int i = 0; i <= n_a; ++i)
    for (int j = 0; j <= n_b; ++j) {
      f[i][j].assign(i * j + 1, 0.0);
      if (i == 0 || j == 0) {
        f[i][j][0] = 1;
        continue;
      }
      for (int u = 0; u <= i * j; ++u) {
        double c = 0;
        if (u - j >= 0 && u - j < static_cast<int>(f[i - 1][j].size())) c += f[i - 1][j][u - j];
        if (u < static_cast<int>(f[i][j - 1].size())) c += f[i][j - 1][u];
        f[i][j][u] = c;
      }
    }
  return f[n_a][n_b];
}

}  // namespace

double mann_whitney_min_p(int n_a, int n_b) {
  double c = 1;  // C(n_a + n_b, n_a)
  for (int i = 1; i <= n_a; ++i) c = c * (n_b + i) / i;
  return std::min(1.0, 2.0 / c);
}

double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b) {
  MOE_CHECK(!a.empty() && !b.empty()) << "Mann-Whitney U test needs samples on both sides";
  const int n_a = static_cast<int>(a.size()), n_b = static_cast<int>(b.size());
  const int n = n_a + n_b;
  // Midranks of the pooled sample.
  std::vector<std::pair<double, int>> pooled;  // value, side (0 = a)
  for (double v : a) pooled.push_back({v, 0});
  for (double v : b) pooled.push_back({v, 1});
  std::sort(pooled.begin(), pooled.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  double rank_sum_a = 0, tie_term = 0;
  bool ties = false;
  for (int i = 0; i < n;) {
    int j = i;
    while (j < n && pooled[j].first == pooled[i].first) ++j;
    const double midrank = 0.5 * (i + 1 + j);
    const double t = j - i;
    if (t > 1) ties = true, tie_term += t * t * t - t;
    for (int k = i; k < j; ++k)
      if (pooled[k].second == 0) rank_sum_a += midrank;
    i = j;
  }
  const double u_a = rank_sum_a - n_a * (n_a + 1) / 2.0;
  const double u_max = std::max(u_a, static_cast<double>(n_a) * n_b - u_a);
  if (std::min(n_a, n_b) < 8 && !ties) {
    const auto counts = u_distribution(n_a, n_b);
    double total = 0, upper = 0;
    for (size_t u = 0; u < counts.size(); ++u) {
      total += counts[u];
      if (static_cast<double>(u) >= u_max - 1e-9) upper += counts[u];
    }
    return std::min(1.0, 2.0 * upper / total);
  }
  const double mu = n_a * static_cast<double>(n_b) / 2.0;
  const double var = n_a * static_cast<double>(n_b) / 12.0 * ((n + 1) - tie_term / (static_cast<double>(n) * (n - 1)));
  if (var <= 0) return 1.0;
  const double z = (u_max - mu - 0.5) / std::sqrt(var);
  return std::min(1.0, std::erfc(z / std::sqrt(2.0)));
}

}  // namespace moelab::bench
