#include "train/data.hpp"

#include <algorithm>
#include <numeric>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/hdf5.hpp"

namespace moelab::train {

Corpus load_corpus(const std::string& path) {
  h5::File file = h5::File::open_read(path);
  Corpus c;
  c.path = path;
  MOE_CHECK(file.has_attr("format") && file.attr_string("format") == "moelab-corpus-1")
      << path << ": not a moelab corpus (attribute format != moelab-corpus-1; build one with "
      << "scripts/prepare_corpus.sh)";
  for (const char* name : {"tokens", "domain", "doc_offsets"})
    MOE_CHECK(file.has(name)) << path << ": missing dataset '" << name << "'";
  c.vocab_size = file.attr_int("vocab_size");
  std::string names = file.attr_string("domain_names");
  for (size_t start = 0; start <= names.size();) {
    size_t comma = names.find(',', start);
    if (comma == std::string::npos) comma = names.size();
    c.domain_names.push_back(names.substr(start, comma - start));
    start = comma + 1;
  }
  Tensor<int32_t> tokens = file.read<int32_t>("tokens");
  Tensor<int32_t> domain = file.read<int32_t>("domain");
  Tensor<int64_t> offsets = file.read<int64_t>("doc_offsets");
  MOE_CHECK(tokens.numel() == domain.numel())
      << path << ": tokens (" << tokens.numel() << ") and domain (" << domain.numel() << ") differ in length";
  MOE_CHECK(offsets.numel() >= 2 && offsets[0] == 0 && offsets[offsets.numel() - 1] == tokens.numel())
      << path << ": doc_offsets must run from 0 to the number of tokens";
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    MOE_CHECK(tokens[i] >= 0 && tokens[i] < c.vocab_size)
        << path << ": token " << tokens[i] << " at " << i << " outside the vocabulary [0, " << c.vocab_size << ")";
    MOE_CHECK(domain[i] >= 0 && domain[i] < c.num_domains())
        << path << ": domain " << domain[i] << " at " << i << " not one of " << names;
  }
  c.tokens = std::move(tokens.data);
  c.domain.assign(domain.data.begin(), domain.data.end());
  c.doc_offsets = std::move(offsets.data);
  return c;
}

CorpusSplit split_corpus(const Corpus& corpus, int64_t heldout_every) {
  MOE_CHECK(heldout_every >= 2) << "data.heldout_every must be >= 2, got " << heldout_every;
  CorpusSplit split;
  for (int64_t d = 0; d < corpus.num_docs(); ++d) {
    TokenStream& s = (d % heldout_every == heldout_every - 1) ? split.heldout : split.train;
    const int64_t begin = corpus.doc_offsets[d], end = corpus.doc_offsets[d + 1];
    s.tokens.insert(s.tokens.end(), corpus.tokens.begin() + begin, corpus.tokens.begin() + end);
    s.domain.insert(s.domain.end(), corpus.domain.begin() + begin, corpus.domain.begin() + end);
    ++s.num_docs;
  }
  return split;
}

Batch make_batch(const TokenStream& stream, const std::vector<int64_t>& window_starts, int64_t seq_len) {
  Batch b;
  b.batch_size = static_cast<int64_t>(window_starts.size());
  b.seq_len = seq_len;
  b.inputs.resize(b.batch_size * seq_len);
  b.targets.resize(b.batch_size * seq_len);
  b.domain.resize(b.batch_size * seq_len);
  for (int64_t r = 0; r < b.batch_size; ++r) {
    const int64_t start = window_starts[r];
    MOE_CHECK(start >= 0 && start + seq_len + 1 <= stream.size())
        << "window at " << start << " of " << seq_len + 1 << " tokens past the stream (" << stream.size() << ")";
    std::copy_n(stream.tokens.begin() + start, seq_len, b.inputs.begin() + r * seq_len);
    std::copy_n(stream.tokens.begin() + start + 1, seq_len, b.targets.begin() + r * seq_len);
    std::copy_n(stream.domain.begin() + start, seq_len, b.domain.begin() + r * seq_len);
  }
  return b;
}

BatchIterator::BatchIterator(const TokenStream& stream, int64_t batch_size, int64_t seq_len, uint64_t seed)
    : stream_(&stream), batch_size_(batch_size), seq_len_(seq_len), seed_(seed) {
  MOE_CHECK(batch_size > 0 && seq_len > 0) << "batch size (" << batch_size << ") and sequence length (" << seq_len
                                           << ") must be positive";
  num_windows_ = stream.size() > seq_len ? (stream.size() - 1) / seq_len : 0;
  MOE_CHECK(num_windows_ >= batch_size) << "the training split holds " << num_windows_ << " sequences of "
                                        << seq_len + 1 << " tokens, fewer than one batch of " << batch_size;
}

int64_t BatchIterator::window_start(int64_t global_index) const {
  const int64_t epoch = global_index / num_windows_;
  if (epoch != cached_epoch_) {
    // Fisher-Yates with the stream of (seed, epoch): the same on every platform.
    perm_.resize(num_windows_);
    std::iota(perm_.begin(), perm_.end(), 0);
    Rng rng(seed_ * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(epoch) + 1);
    for (int64_t i = num_windows_ - 1; i > 0; --i) std::swap(perm_[i], perm_[rng.below(i + 1)]);
    cached_epoch_ = epoch;
  }
  return perm_[global_index % num_windows_] * seq_len_;
}

Batch BatchIterator::batch(int64_t step) const {
  MOE_CHECK(step >= 0) << "negative step " << step;
  std::vector<int64_t> starts(batch_size_);
  for (int64_t r = 0; r < batch_size_; ++r) starts[r] = window_start(step * batch_size_ + r);
  return make_batch(*stream_, starts, seq_len_);
}

std::vector<Batch> eval_batches(const TokenStream& heldout, int64_t batch_size, int64_t seq_len,
                                int64_t num_batches) {
  const int64_t windows = heldout.size() > seq_len ? (heldout.size() - 1) / seq_len : 0;
  const int64_t batches = std::min(num_batches, windows / batch_size);
  MOE_CHECK(batches > 0 || num_batches == 0) << "the held-out split (" << heldout.size()
                                             << " tokens) holds no full evaluation batch of " << batch_size
                                             << " sequences of " << seq_len + 1 << " tokens";
  // Windows spread evenly over the whole held-out stream, so every domain
  // (documents are interleaved) is evaluated.
  const int64_t used = batches * batch_size;
  std::vector<Batch> out;
  for (int64_t b = 0; b < batches; ++b) {
    std::vector<int64_t> starts(batch_size);
    for (int64_t r = 0; r < batch_size; ++r) starts[r] = ((b * batch_size + r) * windows / used) * seq_len;
    out.push_back(make_batch(heldout, starts, seq_len));
  }
  return out;
}

}  // namespace moelab::train
