#include "reference/top_selection.h"

#include <algorithm>
#include <numeric>

namespace sacc::ref {

std::vector<int32_t> select_top(const std::vector<float>& scores, const std::vector<int32_t>& forced,
                                const SelectionRule& rule) {
  const int64_t count = static_cast<int64_t>(scores.size());
  std::vector<char> is_forced(count, 0);
  for (int32_t c : forced) is_forced[c] = 1;
  std::vector<int32_t> order(forced.begin(), forced.end());
  std::vector<int32_t> rest;
  rest.reserve(count - forced.size());
  for (int32_t c = 0; c < count; ++c) {
    if (!is_forced[c]) rest.push_back(c);
  }
  int64_t keep = std::min<int64_t>(rule.budget, count);
  if (rule.keep_all_forced) keep = std::max<int64_t>(keep, static_cast<int64_t>(forced.size()));
  auto by_score = [&](int32_t a, int32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  };
  const int64_t from_rest = std::clamp<int64_t>(keep - static_cast<int64_t>(forced.size()), 0, rest.size());
  // Only the best `from_rest` of the rest can ever be chosen: a partial sort is enough.
  std::partial_sort(rest.begin(), rest.begin() + from_rest, rest.end(), by_score);
  order.insert(order.end(), rest.begin(), rest.begin() + from_rest);
  order.resize(std::min<int64_t>(keep, order.size()));
  if (rule.gamma > 0.0) {
    const double target = rule.gamma * rule.total_mass;
    const int64_t minimum = rule.keep_all_forced ? static_cast<int64_t>(forced.size()) : 0;
    double mass = 0.0;
    int64_t n = 0;
    while (n < static_cast<int64_t>(order.size()) && (n < minimum || mass < target))
      mass += scores[order[n++]];
    order.resize(n);
  }
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace sacc::ref
