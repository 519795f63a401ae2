// What a head's sparse pattern is (semantics), parsed from the strings users write:
//   dense
//   triangular:S,W            sink keys S, local window W                         (A-shape)
//   interval-slash:KV,KS      top-KV vertical columns + top-KS slash diagonals    (vertical-slash)
//   block-cluster:KB          top-KB key blocks per query block
// An optional "@GAMMA" suffix (0 < GAMMA <= 1) makes the budget adaptive: the smallest set whose estimated
// attention mass reaches GAMMA, capped by the budget ("interval-slash:1000,6096@0.95").
//
// Runtime choice (DESIGN.md §5): "interval-slash:KV,KS[@G]|block-cluster:KB[@G2]" estimates both patterns for
// the head and keeps, per input, the one whose index captures more of the estimating rows' attention. One
// definition, shared by the GPU plan, the CPU plan and the oracle: let v[j] be the Interval-Slash vertical
// scores (column sums of the causal softmax of the estimating rows [L - m, L), summed over the KV group when
// the index is shared) and let K(P) be the keys the index of pattern P lists for the LAST query block (its
// key blocks' keys, clipped to j < L, plus its single columns). mass(P) = sum over j in K(P) of v[j]; the
// head takes Block-Cluster iff mass(block-cluster) > mass(interval-slash) (ties keep Interval-Slash). When
// the estimating rows lie in the last query block (L mod Bq = 0 or >= m) this is the exact mass each index
// keeps on those rows; otherwise the last block's key set stands in for the earlier block's.
//
// Dense tail: a trailing "+tail:T" on any pattern but dense ("block-cluster:512@0.99+tail:256") lists every
// causal key block, and no single column, for the query blocks that hold any of the prompt's last T rows
// (in_dense_tail, attention/dense_tail.h), whatever the pattern chose for them. The rows at the end of a
// prompt are where a question is asked and its answer starts; they cost one query block of a dense row each.
#pragma once

#include <cstdint>
#include <string>

#include "attention/dense_tail.h"
#include "core/status.h"

namespace sacc {

enum class PatternKind : uint8_t { DENSE = 0, TRIANGULAR = 1, INTERVAL_SLASH = 2, BLOCK_CLUSTER = 3 };

struct PatternSpec {
  PatternKind kind = PatternKind::DENSE;
  int64_t sink = 0;      // TRIANGULAR: keys [0, sink) always kept
  int64_t window = 0;    // TRIANGULAR: keys with i - j < window kept
  int64_t vertical = 0;  // INTERVAL_SLASH: vertical-column budget (kv)
  int64_t slash = 0;     // INTERVAL_SLASH: slash-diagonal budget (ks)
  int64_t blocks = 0;    // BLOCK_CLUSTER: key blocks per query block (kb)
  double gamma = 0.0;    // 0: fixed budget; (0, 1]: adaptive (mass target), capped by the budget
  // INTERVAL_SLASH only: a Block-Cluster alternative, chosen at runtime or joined (see above); 0: none.
  int64_t alternative_blocks = 0;  // the alternative's kb
  double alternative_gamma = 0.0;  // the alternative's adaptive mass target (0: fixed kb)
  bool alternative_union = false;  // true: both indices joined ('+'); false: the runtime choice ('|')
  int64_t tail = 0;                // dense tail: the last `tail` rows' query blocks attend densely (0: none)

  bool is_adaptive() const { return gamma > 0.0; }
  bool has_alternative() const { return alternative_blocks > 0; }
  bool joins_alternative() const { return has_alternative() && alternative_union; }
  bool chooses_alternative() const { return has_alternative() && !alternative_union; }
  // The alternative as a pattern of its own (kind BLOCK_CLUSTER); only meaningful when has_alternative().
  PatternSpec alternative() const;
  // This spec without its alternative (the Interval-Slash primary).
  PatternSpec primary() const;
  bool operator==(const PatternSpec&) const = default;
};

const char* pattern_kind_name(PatternKind kind);  // "dense", "triangular", ...
Result<PatternSpec> parse_pattern(const std::string& text);
std::string to_string(const PatternSpec& spec);  // round-trips through parse_pattern

struct IndexGeometry;
// Budgets larger than an input of this geometry offers, reduced to what it offers (sink, window, vertical,
// slash, tail <= L; blocks <= key blocks), so one configured pattern serves prompts of any length.
PatternSpec clamp_pattern_to_length(const PatternSpec& spec, const IndexGeometry& geometry);

// Settings of the online estimators (DESIGN.md §4).
struct EstimationConfig {
  int64_t last_queries = 64;  // m: queries [L-m, L) estimate Interval-Slash scores
  int64_t sink_keys = 30;     // Interval-Slash: first keys always kept (counted inside the vertical budget)
  int64_t local_diagonals = 100;  // Interval-Slash: nearest diagonals always kept (inside the slash budget)
};

}  // namespace sacc
