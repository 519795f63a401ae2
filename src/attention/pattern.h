// What a head's sparse pattern is (semantics), parsed from the strings users write:
//   dense
//   triangular:S,W            sink keys S, local window W                         (A-shape)
//   interval-slash:KV,KS      top-KV vertical columns + top-KS slash diagonals    (vertical-slash)
//   block-cluster:KB          top-KB key blocks per query block
// An optional "@GAMMA" suffix (0 < GAMMA <= 1) makes the budget adaptive: the smallest set whose estimated
// attention mass reaches GAMMA, capped by the budget ("interval-slash:1000,6096@0.95").
#pragma once

#include <cstdint>
#include <string>

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

  bool is_adaptive() const { return gamma > 0.0; }
  bool operator==(const PatternSpec&) const = default;
};

const char* pattern_kind_name(PatternKind kind);  // "dense", "triangular", ...
Result<PatternSpec> parse_pattern(const std::string& text);
std::string to_string(const PatternSpec& spec);  // round-trips through parse_pattern

struct IndexGeometry;
// Budgets larger than an input of this geometry offers, reduced to what it offers (sink, window, vertical,
// slash <= L; blocks <= key blocks), so one configured pattern serves prompts of any length.
PatternSpec clamp_pattern_to_length(const PatternSpec& spec, const IndexGeometry& geometry);

// Settings of the online estimators (DESIGN.md §4).
struct EstimationConfig {
  int64_t last_queries = 64;  // m: queries [L-m, L) estimate Interval-Slash scores
  int64_t sink_keys = 30;     // Interval-Slash: first keys always kept (counted inside the vertical budget)
  int64_t local_diagonals = 100;  // Interval-Slash: nearest diagonals always kept (inside the slash budget)
};

}  // namespace sacc
