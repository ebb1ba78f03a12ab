// The corpus sample and the batches: split by document, targets shifted by
// one, a deterministic order that covers every window once per epoch.
#include <gtest/gtest.h>

#include <set>

#include "core/error.hpp"
#include "train/data.hpp"

using namespace moelab;
using namespace moelab::train;

namespace {
const std::string kSample = std::string(MOELAB_TEST_FIXTURES) + "/corpus_sample.h5";
}

TEST(Corpus, SampleLoads) {
  Corpus c = load_corpus(kSample);
  EXPECT_EQ(c.vocab_size, 260);
  ASSERT_EQ(c.domain_names, (std::vector<std::string>{"prose", "code", "math"}));
  EXPECT_GT(c.num_docs(), 60);
  std::vector<int64_t> per_domain(3, 0);
  for (int64_t d = 0; d < c.num_docs(); ++d) {
    const int64_t b = c.doc_offsets[d], e = c.doc_offsets[d + 1];
    EXPECT_EQ(c.tokens[b], kBosId);
    EXPECT_EQ(c.tokens[e - 1], kEosId);
    for (int64_t i = b; i < e; ++i) ASSERT_EQ(c.domain[i], c.domain[b]);  // one domain per document
    per_domain[c.domain[b]] += e - b;
  }
  for (int d = 0; d < 3; ++d) EXPECT_GT(per_domain[d], 20000) << c.domain_names[d];
}

TEST(Corpus, MissingFileIsOneClearError) {
  try {
    load_corpus("/nonexistent/corpus.h5");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/corpus.h5"), std::string::npos) << e.what();
  }
}

TEST(Corpus, SplitByDocument) {
  Corpus c = load_corpus(kSample);
  CorpusSplit s = split_corpus(c, 10);
  EXPECT_EQ(s.train.num_docs + s.heldout.num_docs, c.num_docs());
  EXPECT_EQ(s.heldout.num_docs, c.num_docs() / 10);
  EXPECT_EQ(s.train.size() + s.heldout.size(), static_cast<int64_t>(c.tokens.size()));
  // The held-out stream starts with document 9.
  EXPECT_EQ(s.heldout.tokens[0], kBosId);
  EXPECT_EQ(s.heldout.tokens[1], c.tokens[c.doc_offsets[9] + 1]);
  std::set<int> domains(s.heldout.domain.begin(), s.heldout.domain.end());
  EXPECT_EQ(domains.size(), 3u);  // every domain on the held-out side
}

TEST(BatchIterator, ShiftedTargetsDeterministicOrderFullEpoch) {
  Corpus c = load_corpus(kSample);
  CorpusSplit s = split_corpus(c, 10);
  const int64_t B = 4, S = 32;
  BatchIterator it(s.train, B, S, 7), same(s.train, B, S, 7), other(s.train, B, S, 8);
  Batch b0 = it.batch(0);
  ASSERT_EQ(b0.inputs.size(), size_t(B * S));
  for (int64_t r = 0; r < B; ++r)
    for (int64_t t = 0; t + 1 < S; ++t) ASSERT_EQ(b0.targets[r * S + t], b0.inputs[r * S + t + 1]);
  EXPECT_EQ(same.batch(0).inputs, b0.inputs);
  EXPECT_EQ(same.batch(5).inputs, it.batch(5).inputs);
  EXPECT_NE(other.batch(0).inputs, b0.inputs);
  EXPECT_NE(it.batch(1).inputs, b0.inputs);
  // One epoch visits each window once; the next epoch is another permutation.
  std::set<int64_t> starts;
  std::vector<int64_t> epoch0, epoch1;
  for (int64_t g = 0; g < it.num_windows(); ++g) {
    epoch0.push_back(it.window_start(g));
    epoch1.push_back(it.window_start(g + it.num_windows()));
    starts.insert(epoch0.back());
    EXPECT_EQ(epoch0.back() % S, 0);
  }
  EXPECT_EQ(static_cast<int64_t>(starts.size()), it.num_windows());
  EXPECT_EQ(*starts.rbegin(), (it.num_windows() - 1) * S);
  EXPECT_NE(epoch0, epoch1);
  // Revisiting a step after later ones gives the same batch (resume needs no state).
  EXPECT_EQ(it.batch(0).inputs, b0.inputs);
}

TEST(EvalBatches, SpreadOverTheHeldOutSplitAndClipped) {
  Corpus c = load_corpus(kSample);
  CorpusSplit s = split_corpus(c, 10);
  const int64_t S = 16, windows = (s.heldout.size() - 1) / S;
  auto evals = eval_batches(s.heldout, 2, S, 3);
  ASSERT_EQ(evals.size(), 3u);
  EXPECT_EQ(evals[0].inputs[0], s.heldout.tokens[0]);
  // Window j of n = 6 starts at floor(j * windows / 6) * S.
  EXPECT_EQ(evals[1].inputs[0], s.heldout.tokens[(2 * windows / 6) * S]);
  EXPECT_EQ(evals[2].inputs[S], s.heldout.tokens[(5 * windows / 6) * S]);
  std::set<int> domains;
  for (const auto& b : evals) domains.insert(b.domain.begin(), b.domain.end());
  EXPECT_EQ(domains.size(), 3u);
  auto all = eval_batches(s.heldout, 2, S, 1000000);
  EXPECT_EQ(static_cast<int64_t>(all.size()), windows / 2);
}
