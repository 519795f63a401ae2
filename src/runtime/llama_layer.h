// The Llama layer sequence, written once for every backend (ggml's lesson: one model graph, the backends
// supply the operations). A backend passes an `Ops` object that owns its buffers, its kernels and its
// chunking; these templates only say what runs, in which order, over which rows. Static polymorphism: no
// virtual call, each backend's operations inline into its own instantiation.
//
// One step runs n rows (tokens) at sequence positions [start, start + n). Activations live in the backend:
//   x       [n, D]        the residual stream
//   normed  [chunk, D]    the current chunk after an RMSNorm
//   q       [n, Hq * d]   queries of the whole step (attention sees every query at once)
//   k, v    [chunk, Hkv * d] the chunk's keys and values on their way into the KV cache
//   o       [n, Hq * d]   the attention output
//   gate/up [chunk, F]    the MLP's hidden chunk
// The operations an `Ops` provides (all return Status unless noted; `layer` is the model's layer index):
//   int64_t chunk_rows(n)                          rows per chunk of the linear layers
//   attn_norm(layer, row0, rows)                   normed <- rms_norm(x[row0, +rows)) * attn_norm
//   qkv_proj(layer, row0, rows, position)          q[row0, +rows), k, v <- normed W^T (no bias; the input
//                                                  is quantised once for the three where the backend does)
//   bias_rope(layer, which, row0, rows, position, rotate)  + bias of `which` (if the model has one), then
//                                                  RoPE at positions [position, +rows) when `rotate`
//   append_kv(layer, row0, rows, position)         k, v -> KV-cache rows [position, +rows)
//   bool observing(start)                          whether the Q/K/V observer (eval_hooks.h) sees this step
//   observe_qkv(layer, n)                          hands q [n, Hq*d] and cache rows [0, n) to the observer
//   attention(layer, n, start)                     o <- attention of q over cache rows [0, start + n), dense
//                                                  or sparse as the backend decided for this step
//   o_proj(layer, row0, rows, add_residual)        x[row0, +rows) (+)= o[row0, +rows) W_o^T
//   mlp_norm(layer, row0, rows)                    normed <- rms_norm(x[row0, +rows)) * mlp_norm
//   gate_up(layer, row0, rows)                     gate, up <- normed W_gate^T, normed W_up^T
//   swiglu(rows)                                   gate <- silu(gate) * up
//   down(layer, row0, rows, add_residual)          x[row0, +rows) (+)= gate W_down^T
//   int64_t logit_step_rows(rows)                  rows of logits computed at a time
//   final_norm(row0, rows)                         the final RMSNorm of x[row0, +rows)
//   lm_head(r0, rows, logits)                      logits rows [r0, +rows) of [all rows, V] <- that norm
//                                                  times the LM head (embedding table when tied)
// With add_residual false o_proj and down write their product alone over x: a partial sum that a tensor-
// parallel schedule adds up across GPUs between llama_attention, o_proj and llama_mlp (its all-reduce).
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/status.h"

namespace sacc {

// Which projection bias_rope() applies to.
enum class Qkv { Q, K, V };

// attn_norm -> Q/K/V projections (+bias) -> RoPE -> KV-cache append over every chunk, then the observer and
// attention over all n queries (the estimator of a sparse pattern sees the true last queries).
template <class Ops>
Status llama_attention(Ops& ops, int layer, int64_t n, int64_t start) {
  const int64_t chunk = ops.chunk_rows(n);
  for (int64_t row0 = 0; row0 < n; row0 += chunk) {
    const int64_t rows = std::min(chunk, n - row0), position = start + row0;
    SACC_RETURN_IF_ERROR(ops.attn_norm(layer, row0, rows));
    SACC_RETURN_IF_ERROR(ops.qkv_proj(layer, row0, rows, position));
    SACC_RETURN_IF_ERROR(ops.bias_rope(layer, Qkv::Q, row0, rows, position, true));
    SACC_RETURN_IF_ERROR(ops.bias_rope(layer, Qkv::K, row0, rows, position, true));
    SACC_RETURN_IF_ERROR(ops.bias_rope(layer, Qkv::V, row0, rows, position, false));
    SACC_RETURN_IF_ERROR(ops.append_kv(layer, row0, rows, position));
  }
  // Before attention: a backend whose kernel writes O over Q still shows the observer the queries.
  if (ops.observing(start)) SACC_RETURN_IF_ERROR(ops.observe_qkv(layer, n));
  return ops.attention(layer, n, start);
}

// mlp_norm -> gate/up -> SwiGLU -> down (+ residual) on rows [row0, row0 + rows), rows <= chunk_rows(n). The
// rows of x are read (norm) before the down projection writes them.
template <class Ops>
Status llama_mlp(Ops& ops, int layer, int64_t row0, int64_t rows, bool add_residual) {
  SACC_RETURN_IF_ERROR(ops.mlp_norm(layer, row0, rows));
  SACC_RETURN_IF_ERROR(ops.gate_up(layer, row0, rows));
  SACC_RETURN_IF_ERROR(ops.swiglu(rows));
  return ops.down(layer, row0, rows, add_residual);
}

// One whole layer with the residual added (CPU, one GPU, layer split).
template <class Ops>
Status llama_layer(Ops& ops, int layer, int64_t n, int64_t start) {
  SACC_RETURN_IF_ERROR(llama_attention(ops, layer, n, start));
  const int64_t chunk = ops.chunk_rows(n);
  // All output projections first (every query has been read): a backend may reuse the queries' memory for
  // the MLP chunk.
  for (int64_t row0 = 0; row0 < n; row0 += chunk)
    SACC_RETURN_IF_ERROR(ops.o_proj(layer, row0, std::min(chunk, n - row0), true));
  for (int64_t row0 = 0; row0 < n; row0 += chunk)
    SACC_RETURN_IF_ERROR(llama_mlp(ops, layer, row0, std::min(chunk, n - row0), true));
  return Status::ok();
}

// The final norm and LM head on the last `rows` of the step's n rows (usually one: TTFT and decode need the
// last position only, never [n, V]): logits [rows, V].
template <class Ops>
Status llama_logits(Ops& ops, int64_t n, int64_t rows, float* logits) {
  const int64_t step = ops.logit_step_rows(rows);
  for (int64_t r0 = 0; r0 < rows; r0 += step) {
    const int64_t count = std::min(step, rows - r0);
    SACC_RETURN_IF_ERROR(ops.final_norm(n - rows + r0, count));
    SACC_RETURN_IF_ERROR(ops.lm_head(r0, count, logits));
  }
  return Status::ok();
}

}  // namespace sacc
