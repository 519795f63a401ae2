#include "runtime/backend_warmup.h"

#include <algorithm>
#include <numeric>
#include <span>
#include <vector>

namespace sacc {
namespace {

// 1, 2, 4, ... below `top`, then `top`: the row counts whose GEMM buckets cover every count up to `top`.
std::vector<int64_t> buckets_up_to(int64_t top) {
  std::vector<int64_t> out;
  for (int64_t rows = 1; rows < top; rows *= 2) out.push_back(rows);
  out.push_back(top);
  return out;
}

}  // namespace

Status warm_row_buckets(Backend& backend, int64_t max_rows) {
  if (max_rows < 1)
    return make_error(StatusCode::INVALID_ARGUMENT, "warm-up: {} rows (expected at least 1)", max_rows);
  const std::vector<int32_t> tokens(static_cast<size_t>(max_rows), 0);
  std::vector<float> logits;
  for (const int64_t rows : buckets_up_to(max_rows)) {
    const std::span<const int32_t> chunk(tokens.data(), static_cast<size_t>(rows));
    SACC_RETURN_IF_ERROR(backend.reserve_slot(0, 2 * rows));
    SACC_RETURN_IF_ERROR(backend.prefill(0, chunk, logits));
    SACC_RETURN_IF_ERROR(backend.extend(0, chunk, logits));
  }
  // Decode steps of 1, 2, 4, ... slots: one token each, after a one-token prompt.
  const int slots = backend.slot_count();
  const std::vector<int64_t> batches = buckets_up_to(slots);
  const auto steps = static_cast<int64_t>(batches.size());
  std::vector<int> order(static_cast<size_t>(slots));
  std::iota(order.begin(), order.end(), 0);
  for (const int slot : order) {
    SACC_RETURN_IF_ERROR(backend.reserve_slot(slot, 1 + steps));
    SACC_RETURN_IF_ERROR(backend.prefill(slot, std::span<const int32_t>(tokens.data(), 1), logits));
  }
  const std::vector<int32_t> step_tokens(static_cast<size_t>(slots), 0);
  for (const int64_t batch : batches) {
    const auto rows = static_cast<size_t>(batch);
    SACC_RETURN_IF_ERROR(backend.decode_batch(std::span<const int32_t>(step_tokens.data(), rows),
                                              std::span<const int>(order.data(), rows), logits));
  }
  for (const int slot : order) SACC_RETURN_IF_ERROR(backend.release_slot(slot));
  return Status::ok();
}

}  // namespace sacc
