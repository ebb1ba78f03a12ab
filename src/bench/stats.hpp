// Sample statistics for comparing benchmark figures: median, coefficient of
// variation, and the two-sided Mann-Whitney U test as Google Benchmark's
// tools/compare.py uses it (scipy.stats.mannwhitneyu, method "auto": the
// exact distribution when a sample has fewer than 8 values and there are no
// ties, otherwise the normal approximation with tie and continuity correction).
#pragma once

#include <vector>

namespace moelab::bench {

double median(std::vector<double> values);
double mean(const std::vector<double>& values);
// Sample standard deviation over |mean|; 0 for fewer than two samples.
double coefficient_of_variation(const std::vector<double>& values);

// Robust spread over |median|: 1.4826 x median absolute deviation / |median|
// (equals the CV for normal samples; one delayed repetition barely moves it,
// where it can double the plain CV on a loaded machine). 0 for < 2 samples.
double robust_cv(const std::vector<double>& values);

// Two-sided p-value of the Mann-Whitney U test of a against b (both non-empty).
double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b);
// The smallest p-value the test can give for these sample sizes (exact test,
// no ties): 2 / C(n_a + n_b, n_a). With 3 + 3 samples it is 0.1, so at
// alpha = 0.05 such a comparison can never be significant.
double mann_whitney_min_p(int n_a, int n_b);

}  // namespace moelab::bench
