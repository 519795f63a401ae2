#include "runtime/prefix_cache.h"

#include <algorithm>

namespace sacc {
namespace {

int64_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return static_cast<int64_t>(ia - a.begin());
}

}  // namespace

PrefixCache::PrefixCache(PrefixCacheOptions options) : options_(options) {
  options_.block = std::max<int64_t>(1, options_.block);
}

void PrefixCache::erase(Entries::iterator it) {
  bytes_ -= it->snapshot->bytes();
  entries_.erase(it);
}

void PrefixCache::evict_until(uint64_t limit, Entries::const_iterator keep) {
  auto it = entries_.end();
  while (bytes() > limit && it != entries_.begin()) {
    --it;
    if (it == keep) continue;
    erase(it++);
    ++stats_.evictions;
  }
}

void PrefixCache::shrink_to(uint64_t limit) {
  evict_until(limit, entries_.end());
}

PrefixMatch PrefixCache::acquire(std::string_view settings, std::span<const int32_t> prompt, uint64_t limit) {
  const int64_t usable = static_cast<int64_t>(prompt.size()) - 1;  // the last token is always computed
  auto best = entries_.end();
  int64_t best_tokens = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->settings != settings) continue;
    const int64_t shared = std::min(common_prefix(it->tokens, prompt), usable);
    const int64_t tokens = shared / options_.block * options_.block;
    if (tokens > best_tokens) {  // strictly longer: the most recently used wins a tie
      best = it;
      best_tokens = tokens;
    }
  }
  evict_until(limit, best);
  if (best != entries_.end() && bytes() > limit) {
    erase(best);
    ++stats_.evictions;
    best = entries_.end();
  }
  if (best == entries_.end()) {
    ++stats_.misses;
    return {};
  }
  entries_.splice(entries_.begin(), entries_, best);
  ++stats_.hits;
  stats_.reused_tokens += static_cast<uint64_t>(best_tokens);
  return {best->snapshot.get(), best_tokens};
}

int64_t PrefixCache::snapshot_length(std::string_view settings, std::span<const int32_t> prompt) const {
  if (!enabled()) return 0;
  const int64_t n = static_cast<int64_t>(prompt.size()) / options_.block * options_.block;
  if (n == 0) return 0;
  for (const Entry& e : entries_)
    if (e.settings == settings && common_prefix(e.tokens, prompt.first(static_cast<size_t>(n))) == n)
      return 0;
  return n;
}

bool PrefixCache::insert(std::string settings, std::span<const int32_t> tokens,
                         std::unique_ptr<KvSnapshot> snapshot, uint64_t limit) {
  const uint64_t room = std::min(options_.capacity_bytes, limit);
  if (!snapshot || snapshot->bytes() > room) return false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const bool covered = it->settings == settings && it->tokens.size() <= tokens.size() &&
                         std::equal(it->tokens.begin(), it->tokens.end(), tokens.begin());
    if (covered)
      erase(it++);
    else
      ++it;
  }
  shrink_to(room - snapshot->bytes());
  bytes_ += snapshot->bytes();
  entries_.push_front(
      {std::move(settings), std::vector<int32_t>(tokens.begin(), tokens.end()), std::move(snapshot)});
  return true;
}

}  // namespace sacc
