// Attention over exactly the keys a SparseIndex lists (listed key blocks masked causally + listed columns),
// fp64 accumulation. A row that lists no key gets O = 0 and lse = -inf.
#pragma once

#include "attention/sparse_index.h"
#include "reference/dense_attention.h"

namespace sacc::ref {

// The index's geometry must match the shape: seq_len == L and num_heads == Hq (per head) or Hkv (shared per
// KV group).
Status check_index_matches(const SparseIndex& index, const AttentionShape& shape);

Result<AttentionResult> sparse_attention(const QkvView& qkv, const SparseIndex& index);

}  // namespace sacc::ref
