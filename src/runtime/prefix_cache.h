// The serve prefix cache: an LRU of KV snapshots (backend.h: KvSnapshot), each keyed by the token sequence
// whose positions it holds and by the settings that produced it (model, attention flags). A request whose
// prompt starts with a cached sequence restores that KV and prefills only the rest (engine.h:
// GenerateOptions::maybe_reuse).
//
// Why the reuse is exact: in a causal prefill the K and V of position i depend only on tokens 0..i, so the
// first p positions of any prompt that starts with the same p tokens are the same, as long as every kernel
// computes a row independently of the rows after it. The CPU backend's GGUF quantised dot products, RoPE and
// dense attention do (tests/serve checks the text bit for bit on SmolLM2); fp32 weights through OpenBLAS may
// differ by a few ulps (a GEMM's summation order can depend on its row count), and so may the CUDA backend's
// bf16 GEMMs; its suffix attention is the fresh prefill's flash kernel over the same query blocks (the decode
// kernel row by row for a prefix off the query tile, which kPrefixCacheBlock never is; tests/gpu bounds the
// logits' difference either way). This does NOT hold for a sparse prefill whose index
// is estimated from the prompt's last queries (Interval-Slash uses the last 64): there every position's K
// and V after layer 0 depends on the prompt's tail. The server therefore keeps snapshots of sparse prefills
// only when asked (--prefix-cache-sparse), as an approximation of the same order as sparse prefill itself.
//
// Granularity: a match is rounded down to a multiple of `block` tokens (so near-identical prompts share
// whole blocks and a snapshot is worth its copy) and always leaves the prompt's last token to be computed
// (its logits are the first sampled token's).
//
// Not thread-safe, except bytes(): one worker owns the cache; request threads read its size.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attention/kernel_tile.h"
#include "runtime/backend.h"

namespace sacc {

constexpr int64_t kPrefixCacheBlock = 256;
static_assert(
    kPrefixCacheBlock % kTileBlockQ == 0,
    "restored prefixes should end on a flash query tile: the CUDA suffix then takes one flash launch per "
    "layer (cuda/device_shard_layer.cpp), not one decode launch per row");

struct PrefixCacheOptions {
  uint64_t capacity_bytes = 0;        // most bytes the snapshots may hold (0: the cache is off)
  int64_t block = kPrefixCacheBlock;  // positions are reused and stored in multiples of this
};

// A lookup's result: `maybe_snapshot` null on a miss. Valid until the next call that changes the cache.
struct PrefixMatch {
  const KvSnapshot* maybe_snapshot = nullptr;
  int64_t tokens = 0;  // positions to restore: a multiple of the block, < the prompt's size
};

struct PrefixCacheStats {
  uint64_t hits = 0, misses = 0;
  uint64_t reused_tokens = 0;  // positions restored instead of prefilled, over all hits
  uint64_t evictions = 0;      // entries dropped to make room (not those replaced by a longer one)
};

class PrefixCache {
 public:
  explicit PrefixCache(PrefixCacheOptions options);

  bool enabled() const { return options_.capacity_bytes > 0; }
  int64_t block() const { return options_.block; }
  uint64_t capacity() const { return options_.capacity_bytes; }

  // The entry of `settings` sharing the longest prefix with `prompt` (most recently used on a tie), used
  // over that prefix rounded down to the block and capped below the prompt's size; a hit when that is at
  // least one block. First makes the cache fit `limit` bytes (the room the memory plan leaves beside the
  // request's own KV cache and workspace) by evicting least recently used entries, the match last; a match
  // that alone exceeds the limit is evicted and the lookup misses. Counts the hit or miss.
  PrefixMatch acquire(std::string_view settings, std::span<const int32_t> prompt,
                      uint64_t limit = std::numeric_limits<uint64_t>::max());

  // Positions of `prompt` worth a snapshot after its run: its size rounded down to the block; 0 when that is
  // under one block, when an entry of `settings` already holds them, or when the cache is off.
  int64_t snapshot_length(std::string_view settings, std::span<const int32_t> prompt) const;

  // Stores `snapshot` of `tokens` (tokens.size() == snapshot->tokens()) as the most recently used entry.
  // Entries of the same settings that hold a prefix of `tokens` are dropped (the new one covers them); least
  // recently used entries are evicted until everything fits min(capacity, limit). False, and nothing
  // stored, when the snapshot alone does not fit.
  bool insert(std::string settings, std::span<const int32_t> tokens, std::unique_ptr<KvSnapshot> snapshot,
              uint64_t limit = std::numeric_limits<uint64_t>::max());

  // Evicts least recently used entries until bytes() <= limit.
  void shrink_to(uint64_t limit);

  uint64_t bytes() const { return bytes_.load(); }  // held by the snapshots; any thread
  size_t entries() const { return entries_.size(); }
  const PrefixCacheStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::string settings;
    std::vector<int32_t> tokens;  // the positions the snapshot holds
    std::unique_ptr<KvSnapshot> snapshot;
  };
  using Entries = std::list<Entry>;  // most recently used first

  void erase(Entries::iterator it);
  // Evicts from the least recently used end, skipping `keep`, until bytes() <= limit or only `keep` is left.
  void evict_until(uint64_t limit, Entries::const_iterator keep);

  PrefixCacheOptions options_;
  Entries entries_;
  std::atomic<uint64_t> bytes_{0};
  PrefixCacheStats stats_;
};

}  // namespace sacc
