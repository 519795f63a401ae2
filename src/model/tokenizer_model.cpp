#include "model/tokenizer_model.h"

#include <algorithm>
#include <array>
#include <bit>

namespace sacc {
namespace {

// Code point that spells byte b: printable Latin-1 bytes spell themselves, the other 68 bytes are moved to
// U+0100 onwards in byte order so that every byte has a visible, non-space spelling.
struct ByteAlphabet {
  std::array<uint32_t, 256> code_point{};
  std::array<int16_t, 512> byte_of{};  // code point -> byte, -1 if not in the alphabet

  ByteAlphabet() {
    byte_of.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
      code_point[b] = printable ? b : next++;
      byte_of[code_point[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet kAlphabet;
  return kAlphabet;
}

// Decodes one UTF-8 code point at text[*pos]; returns false on a malformed sequence.
bool next_code_point(std::string_view text, size_t* pos, uint32_t* cp) {
  const auto lead = static_cast<uint8_t>(text[*pos]);
  int extra = 0;
  if (lead < 0x80) {
    *cp = lead;
  } else if ((lead & 0xe0) == 0xc0) {
    *cp = lead & 0x1f;
    extra = 1;
  } else if ((lead & 0xf0) == 0xe0) {
    *cp = lead & 0x0f;
    extra = 2;
  } else if ((lead & 0xf8) == 0xf0) {
    *cp = lead & 0x07;
    extra = 3;
  } else {
    return false;
  }
  if (*pos + extra >= text.size() && extra > 0) return false;
  for (int i = 1; i <= extra; ++i) {
    const auto c = static_cast<uint8_t>(text[*pos + i]);
    if ((c & 0xc0) != 0x80) return false;
    *cp = (*cp << 6) | (c & 0x3f);
  }
  *pos += 1 + extra;
  return true;
}

}  // namespace

void MergeTable::reserve(size_t n) {
  size_t capacity = 16;
  while (capacity < 2 * n) capacity *= 2;
  if (capacity <= keys_.size()) return;
  std::vector<uint64_t> old_keys = std::move(keys_);
  std::vector<BpeMerge> old_values = std::move(values_);
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, BpeMerge{});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  size_ = 0;
  for (size_t i = 0; i < old_keys.size(); ++i) {
    if (old_keys[i] != kEmpty) insert(old_keys[i], old_values[i]);
  }
}

void MergeTable::insert(uint64_t key, BpeMerge merge) {
  if (2 * (size_ + 1) > keys_.size()) reserve(2 * (size_ + 1));
  size_t slot = bucket(key);
  while (keys_[slot] != kEmpty) {
    if (keys_[slot] == key) return;
    slot = (slot + 1) & mask_;
  }
  keys_[slot] = key;
  values_[slot] = merge;
  ++size_;
}

bool byte_level_decode(std::string_view spelled, std::string* raw) {
  raw->clear();
  const ByteAlphabet& a = alphabet();
  size_t pos = 0;
  while (pos < spelled.size()) {
    uint32_t cp = 0;
    if (!next_code_point(spelled, &pos, &cp) || cp >= a.byte_of.size() || a.byte_of[cp] < 0) return false;
    raw->push_back(static_cast<char>(a.byte_of[cp]));
  }
  return true;
}

void TokenizerModel::index_vocab() {
  ids.clear();
  ids.reserve(token_bytes.size() * 2);
  // Later duplicates do not override earlier ids (GGUF vocabularies may repeat a spelling, e.g. padding
  // tokens).
  for (size_t id = 0; id < token_bytes.size(); ++id) ids.emplace(token_bytes[id], static_cast<int32_t>(id));
  special.resize(token_bytes.size(), 0);
  byte_ids.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    byte_ids[b] = find(std::string_view(&c, 1));
  }
}

void TokenizerModel::add_split_token(std::string_view text, int32_t id) {
  if (text.empty()) return;
  longest_split_token = std::max(longest_split_token, text.size());
  int32_t node = 0;
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    auto it = added_trie[node].next.find(byte);
    if (it == added_trie[node].next.end()) {
      added_trie.push_back(TrieNode{});
      const auto child = static_cast<int32_t>(added_trie.size() - 1);
      added_trie[node].next.emplace(byte, child);
      node = child;
    } else {
      node = it->second;
    }
  }
  added_trie[node].token = id;
}

Status TokenizerModel::add_merge(std::string_view left, std::string_view right, int32_t rank,
                                 std::string_view source) {
  std::string left_raw, right_raw;
  if (!byte_level_decode(left, &left_raw) || !byte_level_decode(right, &right_raw)) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: merges[{}] '{} {}' is not in the byte-level alphabet",
                      source, rank, left, right);
  }
  const int32_t left_id = find(left_raw), right_id = find(right_raw), result = find(left_raw + right_raw);
  if (left_id < 0 || right_id < 0 || result < 0) {
    return make_error(StatusCode::CORRUPT_DATA,
                      "{}: merges[{}] '{} {}' refers to a token not in the vocabulary", source, rank, left,
                      right);
  }
  merges.insert(merge_key(left_id, right_id), BpeMerge{rank, result});
  return Status::ok();
}

void TokenizerModel::finalize(std::string_view jinja_source) {
  if (eot < 0) eot = find("<|eot_id|>");
  if (eot < 0) eot = find("<|im_end|>");
  stop_ids.clear();
  for (int32_t id : {eos, eot, find("<|eom_id|>"), find("<|end_of_text|>"), find("<|endoftext|>")}) {
    if (id >= 0 && std::find(stop_ids.begin(), stop_ids.end(), id) == stop_ids.end()) stop_ids.push_back(id);
  }
  const bool llama3 = find("<|start_header_id|>") >= 0 && find("<|end_header_id|>") >= 0;
  const bool chatml = find("<|im_start|>") >= 0 && find("<|im_end|>") >= 0;
  chat_template = detect_chat_template(jinja_source, llama3, chatml);
  if (chat_template.kind == ChatTemplateKind::LLAMA3 && bos >= 0) chat_template.bos_text = token_bytes[bos];
}

}  // namespace sacc
