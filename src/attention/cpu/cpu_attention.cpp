// The CPU attention's schedules (cpu_attention.h): which query tiles run as tasks, in which order, and which
// key blocks each one visits. The tile itself (queries, online softmax, output) is cpu_attention_tile.h.
#include "attention/cpu/cpu_attention.h"

#include <algorithm>
#include <limits>

#include "attention/cpu/attention_kernels.h"
#include "attention/cpu/cpu_attention_tile.h"
#include "attention/cpu/parallel_for.h"
#include "core/cpu_isa.h"

namespace sacc {
namespace {

using cpu_attn::kKeyBlock;
using cpu_attn::QueryTile;
using cpu_attn::TileKernels;
using cpu_attn::TileRows;

Result<const TileKernels*> kernels_for(CpuAttentionIsa isa) {
  if (isa == CpuAttentionIsa::PORTABLE) return &cpu_attn::portable_kernels();
  if (best_cpu_attention_isa() < isa)
    return make_error(StatusCode::UNSUPPORTED, "cpu attention: this CPU (or SACC_CPU_ISA) does not allow {}",
                      cpu_attention_isa_name(isa));
  return isa == CpuAttentionIsa::AVX2 ? &cpu_attn::avx2_kernels() : &cpu_attn::avx512_bf16_kernels();
}

// Keys [first, last) in blocks of Bk, aligned to multiples of Bk from `first`.
void add_key_span(QueryTile& tile, int64_t first, int64_t last) {
  for (int64_t j = first; j < last; j += kKeyBlock)
    tile.add_key_range(j, std::min<int64_t>(kKeyBlock, last - j));
}

}  // namespace

Status CpuAttentionArgs::validate() const {
  if (num_queries <= 0 || num_keys < num_queries || num_keys >= std::numeric_limits<int32_t>::max())
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "cpu attention: {} queries over {} keys (need 0 < Lq <= Lk < 2^31)", num_queries,
                      num_keys);
  if (num_q_heads <= 0 || num_kv_heads <= 0 || num_q_heads % num_kv_heads != 0 || head_dim <= 0)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "cpu attention: heads {} / kv heads {} / head_dim {} invalid", num_q_heads,
                      num_kv_heads, head_dim);
  if (!q || !k || !v || !o) return make_error(StatusCode::INVALID_ARGUMENT, "cpu attention: null tensor");
  return Status::ok();
}

CpuAttentionIsa best_cpu_attention_isa() {
  static const CpuAttentionIsa isa = [] {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const bool avx2 =
        cpu_isa_cap() >= CpuIsaCap::AVX2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && cpu_isa_cap() >= CpuIsaCap::AVX512 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bf16"))
      return CpuAttentionIsa::AVX512_BF16;
    if (avx2) return CpuAttentionIsa::AVX2;
#endif
    return CpuAttentionIsa::PORTABLE;
  }();
  return isa;
}

const char* cpu_attention_isa_name(CpuAttentionIsa isa) {
  switch (isa) {
    case CpuAttentionIsa::AVX512_BF16:
      return "avx512-bf16";
    case CpuAttentionIsa::AVX2:
      return "avx2";
    case CpuAttentionIsa::PORTABLE:
      break;
  }
  return "portable";
}

Status cpu_attention_dense(const CpuAttentionArgs& a) {
  return cpu_attention_dense(a, best_cpu_attention_isa());
}

Status cpu_attention_sparse(const CpuAttentionArgs& a, const SparseIndex& index) {
  return cpu_attention_sparse(a, index, best_cpu_attention_isa());
}

Status cpu_attention_dense(const CpuAttentionArgs& a, CpuAttentionIsa isa) {
  SACC_RETURN_IF_ERROR(a.validate());
  SACC_ASSIGN_OR_RETURN(const TileKernels* kernels, kernels_for(isa));
  const int group = a.num_q_heads / a.num_kv_heads;
  const int64_t tile_rows = cpu_attn::query_rows_per_tile(group);
  const int64_t tiles = (a.num_queries + tile_rows - 1) / tile_rows;
  parallel_for(tiles * a.num_kv_heads, [&](int64_t task) {
    // Later tiles first: they see the most keys, so the dynamic schedule ends balanced.
    const int64_t tile = tiles - 1 - task / a.num_kv_heads;
    TileRows rows;
    rows.kv_head = static_cast<int>(task % a.num_kv_heads);
    rows.row_begin = tile * tile_rows;
    rows.row_end = std::min(a.num_queries, rows.row_begin + tile_rows);
    rows.head_begin = rows.kv_head * group;
    rows.num_heads = group;
    rows.pos_offset = a.num_keys - a.num_queries;
    QueryTile t(a, *kernels, rows);
    add_key_span(t, 0, t.last_position() + 1);
    t.write_output();
  });
  return Status::ok();
}

Status cpu_attention_sparse(const CpuAttentionArgs& a, const SparseIndex& index, CpuAttentionIsa isa) {
  SACC_RETURN_IF_ERROR(a.validate());
  SACC_ASSIGN_OR_RETURN(const TileKernels* kernels, kernels_for(isa));
  const IndexGeometry& geo = index.geometry;
  if (a.num_queries != a.num_keys || geo.seq_len != a.num_queries)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "cpu sparse attention: index for length {} used on {} queries over {} keys",
                      geo.seq_len, a.num_queries, a.num_keys);
  const int expected_heads = geo.shared_per_kv_group ? a.num_kv_heads : a.num_q_heads;
  if (geo.num_heads != expected_heads)
    return make_error(StatusCode::INVALID_ARGUMENT, "cpu sparse attention: index has {} heads, expected {}",
                      geo.num_heads, expected_heads);
  if (geo.block_q <= 0 || geo.block_k <= 0)
    return make_error(StatusCode::INVALID_ARGUMENT, "cpu sparse attention: index blocks {} x {} invalid",
                      geo.block_q, geo.block_k);
  if (static_cast<int64_t>(index.block_offsets.size()) != geo.num_slots() + 1 ||
      static_cast<int64_t>(index.column_offsets.size()) != geo.num_slots() + 1)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "cpu sparse attention: index offsets do not match geometry");
  const int group = a.num_q_heads / a.num_kv_heads;
  const int64_t q_blocks = geo.num_q_blocks();
  // A shared index gives the whole KV group one key list, so its heads share a tile; otherwise each query
  // head has its own list and tile. Query blocks longer than a tile are split into sub-tiles.
  const bool shared = geo.shared_per_kv_group;
  const int sets = shared ? 1 : group, set_heads = shared ? group : 1;
  const int64_t tile_rows = std::min<int64_t>(cpu_attn::query_rows_per_tile(set_heads), geo.block_q);
  const int64_t sub_tiles = (geo.block_q + tile_rows - 1) / tile_rows;
  const int64_t tiles_per_kv = static_cast<int64_t>(a.num_kv_heads) * sets;
  const int64_t per_q_block = sub_tiles * tiles_per_kv;
  parallel_for(q_blocks * per_q_block, [&](int64_t task) {
    // Later query blocks (and sub-tiles) first: they see the most keys.
    const int64_t qb = q_blocks - 1 - task / per_q_block;
    const int64_t sub = sub_tiles - 1 - task % per_q_block / tiles_per_kv;
    const int kv_head = static_cast<int>(task % tiles_per_kv / sets), set = static_cast<int>(task % sets);
    const int64_t block_end = std::min(a.num_queries, (qb + 1) * geo.block_q);
    TileRows rows;
    rows.row_begin = qb * geo.block_q + sub * tile_rows;
    if (rows.row_begin >= block_end) return;  // the ragged last query block has fewer sub-tiles
    rows.row_end = std::min(block_end, rows.row_begin + tile_rows);
    rows.kv_head = kv_head;
    rows.head_begin = kv_head * group + set;
    rows.num_heads = set_heads;
    const int64_t slot = (shared ? kv_head : kv_head * group + set) * q_blocks + qb;
    QueryTile t(a, *kernels, rows);
    const int64_t key_end = t.last_position() + 1;  // no key after the tile's last row is visible
    for (int32_t b = index.block_offsets[slot]; b < index.block_offsets[slot + 1]; ++b) {
      const int64_t first = static_cast<int64_t>(index.block_ids[b]) * geo.block_k;
      add_key_span(t, std::max<int64_t>(first, 0), std::min(first + geo.block_k, key_end));
    }
    // Single columns, gathered Bk at a time; those after the tile's last row are skipped.
    int32_t gathered[kKeyBlock];  // key positions
    int count = 0;
    for (int32_t c = index.column_offsets[slot]; c < index.column_offsets[slot + 1]; ++c) {
      const int32_t key = index.column_ids[c];
      if (key < 0 || key >= key_end) continue;
      gathered[count++] = key;
      if (count == kKeyBlock) {
        t.add_key_list(gathered, count);
        count = 0;
      }
    }
    if (count > 0) t.add_key_list(gathered, count);
    t.write_output();
  });
  return Status::ok();
}

}  // namespace sacc
