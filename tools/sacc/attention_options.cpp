#include "tools/sacc/attention_options.h"

namespace sacc::cli {

IndexGeometry IndexOptions::geometry(int64_t seq_len, int num_q_heads, int num_kv_heads) const {
  IndexGeometry g;
  g.seq_len = seq_len;
  g.num_heads = shared_per_kv_group ? num_kv_heads : num_q_heads;
  g.block_q = block_q;
  g.block_k = block_k;
  g.shared_per_kv_group = shared_per_kv_group;
  return g;
}

}  // namespace sacc::cli
