// Dense causal grouped-query attention, straight from the definition, accumulating in fp64. The ground truth
// every sparse result and every kernel is measured against.
#pragma once

#include <vector>

#include "reference/qkv.h"

namespace sacc::ref {

struct AttentionResult {
  AttentionShape shape;
  std::vector<double> o;  // [L, Hq, d]
  std::vector<double>
      lse;  // [Hq, L] natural-log log-sum-exp of the scaled scores (-inf for a row with no key)
};

// O[i, h] = sum_{j <= i} softmax_j(scale * q[i, h] . k[j, h / g]) v[j, h / g].
Result<AttentionResult> dense_attention(const QkvView& qkv);

}  // namespace sacc::ref
