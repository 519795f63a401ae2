// The data behind a Tokenizer, shared by its loaders (tokenizer_hf.cpp, tokenizer_gguf.cpp) and the encoder
// (tokenizer.cpp). Not part of the public interface.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "model/chat_template.h"
#include "model/tokenizer_pretokenizer.h"

namespace sacc {

struct BpeMerge {
  int32_t rank = 0;    // lower merges first
  int32_t result = 0;  // id of the merged token
};

// Open-addressing map from a token pair (left id << 32 | right id) to its merge: the BPE inner loop looks
// pairs up constantly, and a flat table keeps each probe to one cache line instead of a node chase.
class MergeTable {
 public:
  void reserve(size_t n);
  // Keeps the first merge of a pair (the lowest rank), as HF does for repeated merges.
  void insert(uint64_t key, BpeMerge merge);
  const BpeMerge* find(uint64_t key) const {
    if (keys_.empty()) return nullptr;
    for (size_t slot = bucket(key);; slot = (slot + 1) & mask_) {
      if (keys_[slot] == key) return &values_[slot];
      if (keys_[slot] == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // no pair of valid ids (< 2^31) has this key
  size_t bucket(uint64_t key) const {
    return static_cast<size_t>((key * 0x9e3779b97f4a7c15ull) >> shift_) & mask_;
  }
  void grow();

  std::vector<uint64_t> keys_;
  std::vector<BpeMerge> values_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

inline uint64_t merge_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct TokenizerModel {
  std::vector<std::string> token_bytes;               // [vocab] raw bytes of each token
  std::unordered_map<std::string_view, int32_t> ids;  // raw bytes -> id (views into token_bytes)
  std::vector<uint8_t> special;                       // [vocab] 1 for control/special tokens
  std::vector<int32_t> byte_ids;                      // [256] id of each single-byte token, -1 if none
  MergeTable merges;                                  // merge_key(left, right) -> merge
  bool ignore_merges = false;  // a pre-token that is itself in the vocab is one token (Llama-3)
  bool add_prefix_space = false;
  PreTokenizer pre_tokenizer;
  std::string pre_tokenizer_name = "custom";

  // Added tokens split out of the text before pre-tokenization, as a byte trie for leftmost-longest matching.
  struct TrieNode {
    std::unordered_map<uint8_t, int32_t> next;
    int32_t token = -1;
  };
  std::vector<TrieNode> added_trie{TrieNode{}};
  size_t longest_split_token = 0;  // bytes of the longest text in added_trie

  int32_t bos = -1, eos = -1, eot = -1;
  bool adds_bos = false;
  std::vector<int32_t> stop_ids;
  ChatTemplate chat_template;

  int32_t vocab_size() const { return static_cast<int32_t>(token_bytes.size()); }
  int32_t find(std::string_view bytes) const {
    auto it = ids.find(bytes);
    return it == ids.end() ? -1 : it->second;
  }
  // Sets the vocab (token_bytes must be final: `ids` points into it) and byte_ids.
  void index_vocab();
  void add_split_token(std::string_view text, int32_t id);
  // Adds "left right" merges; CORRUPT_DATA naming `source` and the merge index when a part is not in the
  // vocab.
  Status add_merge(std::string_view left, std::string_view right, int32_t rank, std::string_view source);
  // Finishes loading: end-of-turn ids, stop ids and the chat template.
  void finalize(std::string_view jinja_source);
};

// GPT-2's byte-level alphabet: each byte is spelled as one printable code point in vocab files.
// Decodes such a spelling back into raw bytes; false if it holds a code point outside the alphabet.
bool byte_level_decode(std::string_view spelled, std::string* raw);

}  // namespace sacc
