// The CPU backend's KV snapshots for prefix reuse (backend.h: export_kv / import_kv): the first n positions
// of every layer's bf16 K and V cache, copied to and from host memory.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "runtime/backend.h"

namespace sacc {

// One layer's cache as the CPU backend holds it: [capacity, Hkv*d] bf16.
using CpuKvLayer = std::vector<uint16_t>;

// Copies positions [0, n) of every layer of `k` and `v` ([N][capacity, kv_dim] bf16).
std::unique_ptr<KvSnapshot> export_cpu_kv(const std::vector<CpuKvLayer>& k, const std::vector<CpuKvLayer>& v,
                                          int64_t n, int64_t kv_dim);
// Writes the snapshot's positions [0, n) back; INVALID_ARGUMENT when it was not made by export_cpu_kv for
// this layout or holds fewer than n positions, or the cache has room for fewer.
Status import_cpu_kv(const KvSnapshot& snapshot, int64_t n, int64_t kv_dim, std::vector<CpuKvLayer>& k,
                     std::vector<CpuKvLayer>& v);

}  // namespace sacc
