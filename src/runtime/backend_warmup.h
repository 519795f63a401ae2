// A server's first requests should not pay one-time costs: on CUDA, the first GEMM of a row-count bucket
// searches cuBLASLt's heuristics, and the first launch of each kernel loads its module (lazy loading), ~10 ms
// per new bucket on the H200. warm_row_buckets runs every bucket a chunked prefill and a decode step will
// meet, once, before the server takes requests.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "runtime/backend.h"

namespace sacc {

// Row counts 1, 2, 4, ... up to `max_rows` (and `max_rows` itself) as a prefill of slot 0 and as an extend of
// the same slot; then decode steps of 1, 2, 4, ... up to every slot (the LM head's row buckets); every slot
// is released afterwards. Token id 0 throughout: the values do not matter, the shapes do. Returns the first
// failure.
Status warm_row_buckets(Backend& backend, int64_t max_rows);

}  // namespace sacc
