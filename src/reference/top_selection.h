// The selection rule both estimators share: forced items first, then the rest by descending score; keep a
// fixed-size prefix, or (adaptive) the shortest prefix whose score mass reaches gamma * total_mass.
#pragma once

#include <cstdint>
#include <vector>

namespace sacc::ref {

struct SelectionRule {
  int64_t budget = 0;  // most items kept (forced ones included, except that forced items are never dropped
                       // when `keep_all_forced`)
  double gamma = 0.0;  // 0: keep exactly min(budget, candidates); > 0: adaptive
  double total_mass = 0.0;  // mass that gamma is a fraction of
  bool keep_all_forced = false;
};

// `scores[c]` for candidates c in [0, scores.size()); `forced` ascending candidate ids. Returns the chosen
// ids, ascending. Ties in score go to the smaller id, so the result is deterministic and a larger budget or
// gamma always yields a superset.
std::vector<int32_t> select_top(const std::vector<float>& scores, const std::vector<int32_t>& forced,
                                const SelectionRule& rule);

}  // namespace sacc::ref
