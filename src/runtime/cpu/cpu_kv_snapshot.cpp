#include "runtime/cpu/cpu_kv_snapshot.h"

#include <algorithm>

namespace sacc {
namespace {

class CpuKvSnapshot final : public KvSnapshot {
 public:
  CpuKvSnapshot(int64_t tokens, int64_t kv_dim, size_t layers)
      : tokens_(tokens), kv_dim_(kv_dim), k_(layers), v_(layers) {}
  int64_t tokens() const override { return tokens_; }
  uint64_t bytes() const override {
    return static_cast<uint64_t>(2 * k_.size()) * tokens_ * kv_dim_ * sizeof(uint16_t);
  }

  int64_t tokens_, kv_dim_;
  std::vector<CpuKvLayer> k_, v_;  // [N][tokens, kv_dim] bf16
};

}  // namespace

std::unique_ptr<KvSnapshot> export_cpu_kv(const std::vector<CpuKvLayer>& k, const std::vector<CpuKvLayer>& v,
                                          int64_t n, int64_t kv_dim) {
  auto snapshot = std::make_unique<CpuKvSnapshot>(n, kv_dim, k.size());
  const auto count = static_cast<size_t>(n * kv_dim);
  for (size_t layer = 0; layer < k.size(); ++layer) {
    snapshot->k_[layer].assign(k[layer].begin(), k[layer].begin() + count);
    snapshot->v_[layer].assign(v[layer].begin(), v[layer].begin() + count);
  }
  return snapshot;
}

Status import_cpu_kv(const KvSnapshot& snapshot, int64_t n, int64_t kv_dim, std::vector<CpuKvLayer>& k,
                     std::vector<CpuKvLayer>& v) {
  const auto* s = dynamic_cast<const CpuKvSnapshot*>(&snapshot);
  if (!s || s->kv_dim_ != kv_dim || s->k_.size() != k.size())
    return make_error(StatusCode::INVALID_ARGUMENT, "KV snapshot was made by another backend or model");
  const auto count = static_cast<size_t>(n * kv_dim);
  if (n < 0 || n > s->tokens_ || (!k.empty() && count > k.front().size()))
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "KV snapshot of {} positions cannot restore {} into a cache of {} positions",
                      s->tokens_, n, k.empty() ? 0 : k.front().size() / kv_dim);
  for (size_t layer = 0; layer < k.size(); ++layer) {
    std::copy_n(s->k_[layer].begin(), count, k[layer].begin());
    std::copy_n(s->v_[layer].begin(), count, v[layer].begin());
  }
  return Status::ok();
}

}  // namespace sacc
