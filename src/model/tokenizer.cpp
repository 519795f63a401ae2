#include "model/tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include "model/tokenizer_model.h"
#include "model/tokenizer_utf8.h"

namespace sacc {
namespace {

// Byte-pair merging of one pre-token, with a per-call cache: natural text repeats its words, so most pieces
// are looked up, not merged.
class BpeEncoder {
 public:
  explicit BpeEncoder(const TokenizerModel& model) : model_(model) {}

  void encode_piece(std::string_view piece, std::vector<int32_t>& out) {
    if (piece.size() == 1) {
      push_byte(static_cast<uint8_t>(piece[0]), out);
      return;
    }
    if (model_.ignore_merges) {
      const int32_t id = model_.find(piece);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    auto cached = cache_.find(piece);
    if (cached != cache_.end()) {
      out.insert(out.end(), arena_.begin() + cached->second.first,
                 arena_.begin() + cached->second.first + cached->second.second);
      return;
    }
    const size_t start = out.size();
    merge(piece, out);
    cache_.emplace(std::string(piece), std::make_pair(arena_.size(), out.size() - start));
    arena_.insert(arena_.end(), out.begin() + static_cast<std::ptrdiff_t>(start), out.end());
  }

 private:
  struct Symbol {
    int32_t id;
    int32_t prev;  // -1 at the start
    int32_t next;  // -1 at the end
  };
  struct Candidate {
    int32_t rank;
    int32_t left;  // symbol index
    int32_t left_id;
    int32_t right_id;
    int32_t result;  // id of the merged token
    // Lowest rank first; among equal ranks the leftmost pair, as HF's BPE does.
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : left > other.left;
    }
  };

  void push_byte(uint8_t byte, std::vector<int32_t>& out) const {
    // A byte without a token cannot be encoded by a byte-level vocabulary without fallback; HF drops it too.
    if (model_.byte_ids[byte] >= 0) out.push_back(model_.byte_ids[byte]);
  }

  void consider(int32_t left) {
    const int32_t right = symbols_[left].next;
    if (right < 0) return;
    const BpeMerge* merge = model_.merges.find(merge_key(symbols_[left].id, symbols_[right].id));
    if (merge == nullptr) return;
    heap_.push_back({merge->rank, left, symbols_[left].id, symbols_[right].id, merge->result});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  }

  void merge(std::string_view piece, std::vector<int32_t>& out) {
    symbols_.clear();
    for (char c : piece) {
      const int32_t id = model_.byte_ids[static_cast<uint8_t>(c)];
      if (id < 0) continue;
      const auto index = static_cast<int32_t>(symbols_.size());
      symbols_.push_back({id, index - 1, index + 1});
    }
    if (symbols_.empty()) return;
    symbols_.back().next = -1;
    heap_.clear();
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols_.size()); ++i) consider(i);
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
      const Candidate top = heap_.back();
      heap_.pop_back();
      Symbol& left = symbols_[top.left];
      // Stale entries: the left symbol was merged away or either side changed since the pair was queued.
      if (left.id != top.left_id || left.next < 0 || symbols_[left.next].id != top.right_id) continue;
      const int32_t right = left.next;
      left.id = top.result;
      left.next = symbols_[right].next;
      if (left.next >= 0) symbols_[left.next].prev = top.left;
      symbols_[right].id = -1;  // dead
      if (left.prev >= 0) consider(left.prev);
      consider(top.left);
    }
    for (int32_t i = 0; i >= 0; i = symbols_[i].next) out.push_back(symbols_[i].id);
  }

  const TokenizerModel& model_;
  std::vector<Symbol> symbols_;
  std::vector<Candidate>
      heap_;  // min-heap on (rank, position); a vector so its storage is reused across pieces
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // piece -> (arena offset, count); owning keys because a segment may live in a temporary (prefix space).
  std::unordered_map<std::string, std::pair<size_t, size_t>, StringHash, std::equal_to<>> cache_;
  std::vector<int32_t> arena_;
};

}  // namespace

// A memo is reused up to a margin before the first difference: a pattern decides a piece's end by reading at
// most a character (up to 4 bytes) past it, and an added token starting before a resume point may end past
// it, so a piece ending more than both before the difference is the same piece in both texts.
constexpr size_t kPatternLookahead = 16;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  const TokenizerModel& m = *model_;
  if (add_bos && m.adds_bos && m.bos >= 0) out.push_back(m.bos);
  encode_from(text, 0, out, nullptr);
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, EncodeMemo& memo) const {
  const TokenizerModel& m = *model_;
  if (!reuses_prefixes()) {
    memo = EncodeMemo{};
    return encode(text, add_bos);
  }
  std::vector<int32_t> out;
  std::vector<std::pair<uint32_t, uint32_t>> resume;
  size_t start = 0;
  memo.reused_tokens_ = 0;
  if (memo.valid_ && memo.add_bos_ == add_bos) {
    const size_t limit = std::min(memo.text_.size(), text.size());
    size_t common = 0;
    while (common < limit && memo.text_[common] == text[common]) ++common;
    if (common == memo.text_.size() && common == text.size()) {  // the same text
      memo.reused_tokens_ = memo.ids_.size();
      return memo.ids_;
    }
    const size_t margin = kPatternLookahead + m.longest_split_token;
    const auto last = static_cast<uint32_t>(common > margin ? common - margin : 0);
    auto it = std::upper_bound(memo.resume_.begin(), memo.resume_.end(), std::make_pair(last, UINT32_MAX));
    if (it != memo.resume_.begin()) {
      --it;
      start = it->first;
      out.assign(memo.ids_.begin(), memo.ids_.begin() + it->second);
      resume.assign(memo.resume_.begin(), it + 1);
      memo.reused_tokens_ = out.size();
    }
  }
  if (start == 0) {
    out.clear();
    if (add_bos && m.adds_bos && m.bos >= 0) out.push_back(m.bos);
  }
  out.reserve(out.size() + (text.size() - start) / 3 + 2);
  encode_from(text, start, out, &resume);
  memo.text_.assign(text);
  memo.add_bos_ = add_bos;
  memo.ids_ = out;
  memo.resume_ = std::move(resume);
  memo.valid_ = true;
  return out;
}

bool Tokenizer::reuses_prefixes() const {
  return model_->pre_tokenizer.resumable();
}

void Tokenizer::encode_from(std::string_view text, size_t start, std::vector<int32_t>& out,
                            std::vector<std::pair<uint32_t, uint32_t>>* maybe_resume) const {
  const TokenizerModel& m = *model_;
  BpeEncoder bpe(m);
  std::vector<TextSpan> pieces;
  std::string prefixed;
  auto mark = [&](size_t end) {
    if (maybe_resume)
      maybe_resume->emplace_back(static_cast<uint32_t>(end), static_cast<uint32_t>(out.size()));
  };
  // `fresh`: [begin, end) starts a segment (the prefix space applies), not a resume point inside one.
  auto encode_segment = [&](size_t begin, size_t end, bool fresh) {
    if (begin == end) return;
    std::string_view source = text;
    size_t shift = 0;  // source offset - text offset
    if (fresh && m.add_prefix_space && text[begin] != ' ') {
      prefixed.assign(1, ' ');
      prefixed.append(text.substr(begin, end - begin));
      source = prefixed;
      shift = 1;
      end = prefixed.size();
      begin = 0;
    }
    pieces.clear();
    m.pre_tokenizer.split(source, {begin, end}, pieces);
    for (const TextSpan& piece : pieces) {
      bpe.encode_piece(source.substr(piece.begin, piece.end - piece.begin), out);
      if (shift == 0) mark(piece.end);  // (the prefixed copy's pieces are not resume points)
    }
  };
  // Added tokens first: leftmost-longest matches of the trie split the text into plain segments.
  const auto& trie = m.added_trie;
  size_t segment_start = start, pos = start;
  bool fresh = start == 0;
  while (pos < text.size()) {
    int32_t node = 0, best = -1;
    size_t best_end = pos;
    for (size_t j = pos; j < text.size(); ++j) {
      auto it = trie[node].next.find(static_cast<uint8_t>(text[j]));
      if (it == trie[node].next.end()) break;
      node = it->second;
      if (trie[node].token >= 0) {
        best = trie[node].token;
        best_end = j + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    encode_segment(segment_start, pos, fresh);
    out.push_back(best);
    mark(best_end);
    pos = segment_start = best_end;
    fresh = true;
  }
  encode_segment(segment_start, text.size(), fresh);
}

std::vector<int32_t> Tokenizer::encode_prompt(std::string_view text) const {
  std::vector<int32_t> ids = encode(text, adds_bos());
  if (ids.size() >= 2 && adds_bos() && ids[0] == model_->bos && ids[1] == model_->bos) ids.erase(ids.begin());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= model_->vocab_size() || (skip_special && model_->special[id])) continue;
    bytes += model_->token_bytes[id];
  }
  std::string text;
  append_utf8_lossy(bytes, text, false);
  return text;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  return id < 0 || id >= model_->vocab_size() ? std::string() : model_->token_bytes[id];
}

int32_t Tokenizer::token_id(std::string_view token_text) const {
  return model_->find(token_text);
}

int32_t Tokenizer::vocab_size() const {
  return model_->vocab_size();
}
int32_t Tokenizer::bos_id() const {
  return model_->bos;
}
int32_t Tokenizer::eos_id() const {
  return model_->eos;
}
int32_t Tokenizer::eot_id() const {
  return model_->eot;
}
bool Tokenizer::adds_bos() const {
  return model_->adds_bos && model_->bos >= 0;
}
bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < model_->vocab_size() && model_->special[id] != 0;
}
std::vector<int32_t> Tokenizer::stop_ids() const {
  return model_->stop_ids;
}
std::string_view Tokenizer::pre_tokenizer_name() const {
  return model_->pre_tokenizer_name;
}
const ChatTemplate& Tokenizer::chat_template() const {
  return model_->chat_template;
}

Result<std::string> Tokenizer::apply_chat_template(std::span<const ChatMessage> messages,
                                                   bool add_generation_prompt) const {
  return render_chat(model_->chat_template, messages, add_generation_prompt);
}

Result<std::vector<int32_t>> Tokenizer::encode_chat(std::span<const ChatMessage> messages,
                                                    bool add_generation_prompt) const {
  SACC_ASSIGN_OR_RETURN(std::string text, apply_chat_template(messages, add_generation_prompt));
  return encode(text, false);
}

Result<std::vector<int32_t>> Tokenizer::encode_chat(std::span<const ChatMessage> messages,
                                                    bool add_generation_prompt, EncodeMemo& memo) const {
  SACC_ASSIGN_OR_RETURN(std::string text, apply_chat_template(messages, add_generation_prompt));
  return encode(text, false, memo);
}

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(&tokenizer), skip_special_(skip_special) {}

std::string StreamingDecoder::push(int32_t id) {
  if (skip_special_ && tokenizer_->is_special(id)) return {};
  pending_ += tokenizer_->token_bytes(id);
  std::string text;
  const size_t consumed = append_utf8_lossy(pending_, text, true);
  pending_.erase(0, consumed);
  return text;
}

std::string StreamingDecoder::finish() {
  std::string text;
  append_utf8_lossy(pending_, text, false);
  pending_.clear();
  return text;
}

}  // namespace sacc
