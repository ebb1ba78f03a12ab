// Training data: the byte-level multi-domain corpus (scripts/prepare_corpus.py
// writes it; layout "moelab-corpus-1") and the batches the loop trains on.
//
// Tokens 0..255 are bytes, 256 BOS, 257 EOS, 258 PAD (vocab 260). Every token
// carries the domain of its document (0 prose, 1 code, 2 math), so expert load
// and evaluation loss can be split by domain (DeepSeek-V3 §4.5.3, Figure 9).
//
// Documents are packed into fixed-length sequences without cross-document
// masking, as DeepSeek-V3 packs (§4.2). Document i is held out when
// i % heldout_every == heldout_every - 1; the rest is the training stream.
// A batch is a pure function of (split, seed, step): resuming at step s
// needs no iterator state, and two runs with one seed see the same data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moelab::train {

inline constexpr int32_t kBosId = 256;
inline constexpr int32_t kEosId = 257;
inline constexpr int32_t kPadId = 258;

struct Corpus {
  std::vector<int32_t> tokens;       // [N]
  std::vector<uint8_t> domain;       // [N]
  std::vector<int64_t> doc_offsets;  // [D+1]
  std::vector<std::string> domain_names;
  int64_t vocab_size = 0;
  std::string path;

  int64_t num_docs() const { return static_cast<int64_t>(doc_offsets.size()) - 1; }
  int num_domains() const { return static_cast<int>(domain_names.size()); }
};

// Reads a corpus file; every problem (missing file or dataset, wrong format,
// a token id past vocab_size) is a moelab::Error naming the file.
Corpus load_corpus(const std::string& path);

// One side of the split: its documents concatenated.
struct TokenStream {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> domain;
  int64_t num_docs = 0;
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

struct CorpusSplit {
  TokenStream train, heldout;
};

CorpusSplit split_corpus(const Corpus& corpus, int64_t heldout_every);

// A batch of packed sequences: targets are inputs shifted by one token.
struct Batch {
  int64_t batch_size = 0, seq_len = 0;
  std::vector<int32_t> inputs;   // [B, S]
  std::vector<int32_t> targets;  // [B, S]
  std::vector<uint8_t> domain;   // [B, S] domain of each input token
  int64_t num_tokens() const { return batch_size * seq_len; }
};

// Cuts a stream into windows of seq_len + 1 tokens at stride seq_len (every
// token is a target exactly once per epoch) and serves them in a seeded
// random order, a fresh permutation each epoch.
class BatchIterator {
 public:
  BatchIterator(const TokenStream& stream, int64_t batch_size, int64_t seq_len, uint64_t seed);
  // The batch of training step `step` (0-based).
  Batch batch(int64_t step) const;
  int64_t num_windows() const { return num_windows_; }
  int64_t steps_per_epoch() const { return num_windows_ / batch_size_; }
  // Start token of the global_index-th window served (step·B + row).
  int64_t window_start(int64_t global_index) const;

 private:
  const TokenStream* stream_;
  int64_t batch_size_, seq_len_;
  uint64_t seed_;
  int64_t num_windows_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> perm_;
};

// The evaluation set: num_batches batches of held-out windows spread evenly
// over the held-out stream (fixed, no shuffling), clipped to what it holds.
std::vector<Batch> eval_batches(const TokenStream& heldout, int64_t batch_size, int64_t seq_len,
                                int64_t num_batches);

// Fills one batch from window starts (each window seq_len + 1 tokens).
Batch make_batch(const TokenStream& stream, const std::vector<int64_t>& window_starts, int64_t seq_len);

}  // namespace moelab::train
