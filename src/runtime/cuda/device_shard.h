// One GPU's share of a model in the CUDA backend (runtime/multi_gpu_plan.h: ShardSpec): the weights of a
// layer range and/or a slice of KV heads (with their query heads) and MLP columns (bf16; the linear layers
// e4m3 with per-output-channel scales under --linear fp8), the bf16 KV cache of those layers and heads, the
// prefill workspace, a stream and a cuBLASLt runner. The single-GPU backend is one
// shard holding everything; layer split chains shards; tensor parallel runs them side by side and sums their
// partial outputs.
//
// Every call selects the shard's device, enqueues on its stream and never waits on the host (except
// synchronize()).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "attention/cost_model.h"
#include "attention/sparse_index.h"
#include "core/cuda/device_memory.h"
#include "core/cuda/pinned_memory.h"
#include "model/llama_weights.h"
#include "runtime/attention_selector.h"
#include "runtime/backend.h"
#include "runtime/cuda/cublaslt_gemm.h"
#include "runtime/eval_hooks.h"
#include "runtime/memory_plan.h"
#include "runtime/multi_gpu_plan.h"

namespace sacc::cuda_rt {

class DeviceShard {
 public:
  // `options`: device = the shard's GPU, patterns = shard_patterns() (its layers from 0, its heads).
  static Result<std::unique_ptr<DeviceShard>> create(const LlamaWeights& weights, const ShardSpec& spec,
                                                     const BackendOptions& options);
  ~DeviceShard();
  DeviceShard(const DeviceShard&) = delete;
  DeviceShard& operator=(const DeviceShard&) = delete;

  // Sequence slots (backend.h): each slot its own KV cache [2 * layers, capacity, local Hkv * d] bf16 (K then
  // V per layer). set_slot_count frees every slot and sizes the batch steps' workspace for them; reserve
  // sizes one slot's cache for `max_tokens` positions of the shard's layers and heads (freeing its old one
  // and the prefill workspace first); release frees one.
  Status set_slot_count(int slots);
  Status reserve(int slot, int64_t max_tokens);
  void release(int slot);
  // The slot the sequence steps that follow (attention, layer: a prefill, extend or decode) read and write.
  void select_slot(int slot) { active_ = slot; }
  // A batch step (Backend::decode_batch): row r of the next `rows`-row step embeds tokens[r], appends at
  // positions[r] of slots[r] and attends to that slot alone (device_shard_batch.cpp). Uploads the step's
  // table (the rows' caches, positions and tokens) with one copy; the step's launches read everything that
  // changes from step to step from there, so they can be captured once and replayed (decode_graphs.h).
  // The step runs in the batch steps' own workspace; end_batch returns to sequence steps and the prefill's.
  Status begin_batch(std::span<const int> slots, std::span<const int32_t> positions,
                     std::span<const int32_t> tokens);
  void end_batch() {
    batch_rows_ = 0;
    ws_ = &prefill_ws_;
  }
  // Every device address and size the launches of a batch step of the current rows bake in, other than
  // the table's contents: the workspace, the table itself, the staged K/V rows, the decode scratch and the
  // key range its grid covers, the logit steps, cuBLASLt's buffers; and a count of the reallocations of
  // those buffers, so a buffer freed and allocated again at its old address still changes it (a graph
  // replayed over freed buffers fails in the server: cudaGraphLaunch invalid argument under memcheck,
  // unspecified launch failure without). A captured step stays valid while this is unchanged. The weights
  // and RoPE frequencies never move; the KV caches are not baked in at all (the table points at them).
  std::vector<uint64_t> batch_step_signature() const;
  // Prefix reuse (device_shard_kv.cpp): copies KV positions [0, n) of `slot` into a new device buffer
  // [2 * layers, n, local Hkv * d] bf16 (K then V per layer), or back from one made for `tokens` >= n
  // positions; both enqueued on the shard's stream.
  Result<DeviceBuffer> copy_kv_out(int slot, int64_t n) const;
  Status copy_kv_in(int slot, const DeviceBuffer& snapshot, int64_t tokens, int64_t n);
  uint64_t kv_bytes(int64_t n) const;  // copy_kv_out's buffer size
  // Workspace for a prompt of n tokens (frees the previous one first, unless it is kept:
  // BackendOptions::prefill_workspace_tokens); the attention selector decides which attention runs.
  Status begin_prefill(int64_t n);
  // The attention settings of the prefills that follow (copy_attention_settings), patterns =
  // shard_patterns().
  void set_attention(const BackendOptions& options) { copy_attention_settings(options, options_); }
  bool prefill_sparse() const { return attention_.sparse(); }
  // The sparse indices the current prefill built so far, summed over the shard's layers and heads (none:
  // zero counts); read after synchronize().
  AttentionCost prefill_index_cost() const;

  // hidden[0, n) <- embedding rows of `tokens` (ids already checked against the vocabulary).
  Status embed(std::span<const int32_t> tokens);
  // One layer (runtime/llama_layer.h) is attention() then o_proj() over every row chunk, then mlp() over
  // every row chunk, for the global `layer` (one of the shard's) and rows at positions [start, start + n);
  // chunks are chunk_rows(n) rows. With add_residual false o_proj() and mlp() write their product alone over
  // x: a partial sum the caller adds up across shards (tensor parallel), chunk by chunk if it likes.
  int64_t chunk_rows(int64_t n) const;
  // llama_attention(): rms_norm, Q/K/V, RoPE into the KV cache, attention over the shard's heads; O stays in
  // the query buffer. In a prefill with options.maybe_qkv_observer, hands the layer's Q/K/V to it (on the
  // host) first.
  Status attention(int layer, int64_t n, int64_t start);
  // x[rows] (+)= O[rows] W_o^T for rows [row0, row0 + rows). All of a layer's o_proj() calls precede its
  // mlp() calls on the stream: the MLP reuses the query buffer.
  Status o_proj(int layer, int64_t row0, int64_t rows, bool add_residual);
  // llama_mlp(): x[rows] (+)= down(swiglu(gate_up(rms_norm(x[rows])))) over the shard's MLP columns; rows
  // <= chunk_rows.
  Status mlp(int layer, int64_t row0, int64_t rows, bool add_residual);
  // llama_layer(): the whole layer with the residual added (one GPU, layer split).
  Status layer(int layer, int64_t n, int64_t start);
  // The final norm and LM head on the last `rows` of hidden's n rows (rows n - rows .. n - 1), copied into
  // host `logits` [rows, V] (pageable: the copy completes by the next synchronize()). rows is 1, or up to
  // step_logit_rows(options) in a prefill. Only on the shard that has the LM head.
  Status logits(int64_t n, int64_t rows, float* logits);
  Status synchronize();
  // Records the shard's peak whole-device memory use (cudaMemGetInfo) so far.
  void sample_device_memory();

  uint16_t* hidden() const { return ws_->hidden.as<uint16_t>(); }  // [workspace tokens, D] residual stream
  cudaStream_t stream() const { return stream_; }
  int device() const { return spec_.device; }
  const ShardSpec& spec() const { return spec_; }
  int64_t workspace_tokens() const { return ws_->tokens; }
  DeviceMemoryReport memory() const;

 private:
  // A linear layer's weight [out, in]: bf16, or e4m3 with per-output-channel scales [out] fp32 (--linear
  // fp8).
  struct Linear {
    void* w = nullptr;
    float* maybe_scale = nullptr;
  };
  struct Layer {
    // The shard's slices: wq [q, D], wk/wv [kv, D], wo [D, q], gate_up [2F', D] (up F' rows after gate),
    // down [D, F'] with q = local Hq * d, kv = local Hkv * d, F' = local MLP columns.
    uint16_t *attn_norm = nullptr, *mlp_norm = nullptr;
    Linear wq, wk, wv, wo, gate_up, down;
    uint16_t *maybe_bq = nullptr, *maybe_bk = nullptr, *maybe_bv = nullptr;
  };
  // FRESH: quantise x first (FP8); SAME: x is the previous linear()'s input, its quantisation is reused.
  enum class Input { FRESH, SAME };

  DeviceShard(const LlamaWeights& weights, const ShardSpec& spec, const BackendOptions& options);
  Status load(const LlamaWeights& weights);
  Status gemm(const uint16_t* x, const uint16_t* w, void* y, int64_t rows, int64_t in, int64_t out,
              bool accumulate, int64_t ldx = 0, bool y_f32 = false);
  // y [rows, out] (+)= x [rows, in] (row stride ldx) W^T for a layer's weight: the bf16 GEMM, or (FP8) x
  // quantised per token into the workspace's fp8_input and the e4m3 GEMM with both scales; rows <=
  // chunk_rows.
  Status linear(const uint16_t* x, const Linear& w, uint16_t* y, int64_t rows, int64_t in, int64_t out,
                bool accumulate, Input input = Input::FRESH, int64_t ldx = 0);
  // llama_layer.h's operations on this shard (device_shard_layer.cpp).
  class LayerOps;
  // One slot's KV cache: [2 * layers, capacity, local Hkv * d] bf16.
  struct SlotKv {
    DeviceBuffer kv;
    int64_t capacity = 0;
  };
  // Checks that `layer` is one of the shard's and selects the shard's device.
  Status select(int layer) const;
  // The active slot's cache of a local layer: [capacity, local Hkv, d].
  uint16_t* k_cache(int local_layer) const { return k_cache(active_, local_layer); }
  uint16_t* v_cache(int local_layer) const { return v_cache(active_, local_layer); }
  uint16_t* k_cache(int slot, int local_layer) const;
  uint16_t* v_cache(int slot, int local_layer) const;
  // decode_scratch_ of at least `bytes`.
  Status ensure_decode_scratch(size_t bytes);
  // A batch step's device table (batch_table_: [local layers][K, V][rows] cache pointers, then [rows] int32
  // positions, then [rows] int32 token ids): row r's K or V cache of a local layer, the rows' positions and
  // tokens.
  uint16_t* const* batch_k_rows(int local_layer) const;
  uint16_t* const* batch_v_rows(int local_layer) const;
  const int32_t* batch_positions() const;
  const int32_t* batch_tokens() const;
  // The longest reserved cache of any slot: the keys a batch step's decode grid covers.
  int64_t longest_slot() const;
  // Copies a local layer's index totals (its visited tiles and gathered columns) into index_totals_ on the
  // stream, for prefill_index_cost().
  Status record_index_totals(int local_layer, const IndexGeometry& geometry, const SparseIndexView& view);

  ModelConfig model_;   // the whole model
  ModelConfig config_;  // the shard's view (shard_config)
  ShardSpec spec_;
  BackendOptions options_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<GemmRunner> gemm_;
  DeviceBuffer weights_, inv_freq_, decode_scratch_;
  std::vector<SlotKv> slots_{1};
  int active_ = 0;  // the sequence steps' slot
  // A batch step in progress: its rows (0: sequence steps), tables, staged K and V [2, rows, local Hkv * d]
  // bf16 (RoPE runs there before each row is stored into its own cache) and the key range its decode grid
  // covers (longest_slot(): CTAs past a row's keys exit at once, so the grid holds while the caches fill).
  // The tables and staged rows are sized for a batch of every slot: their addresses do not depend on B.
  int64_t batch_rows_ = 0, batch_key_bound_ = 0;
  uint64_t reallocations_ = 0;  // of the buffers batch_step_signature() names: one more at each
  DeviceBuffer batch_table_, batch_kv_;
  PinnedBuffer host_batch_table_;  // batch_table_'s host image, copied without a host wait
  uint16_t *maybe_embed_ = nullptr, *maybe_lm_head_ = nullptr,
           *maybe_final_norm_ = nullptr;  // [V,D] [V,D] [D]
  std::vector<Layer> layers_;
  // The buffers a step works in, for up to `tokens` rows (cuda_workspace_sizes of the shard's view). scratch
  // holds the normed chunk [c, D] bf16 outside attention and the attention kernels' workspace during it:
  // never live at once, so they share it. logits [logit_step_rows, V] fp32 only on the shard with the LM
  // head. FP8 linear layers: fp8_input holds the chunk's quantised input [c, widest] e4m3, then its
  // per-token scales [c] fp32 (fp8_input_scales).
  struct Workspace {
    DeviceBuffer hidden, q_or_mlp, attn_out, scratch, ids, logits, fp8_input;
    float* fp8_input_scales = nullptr;
    int64_t tokens = 0, logit_step_rows = 0;
  };
  // `w` (freed first) for n rows of sizes `s`, the LM head in steps of logit_rows_per_step(logit_rows, n).
  Status allocate(Workspace& w, const CudaWorkspaceSizes& s, int64_t n, int64_t logit_rows);
  // Whether `w` holds buffers of at least sizes `s`.
  static bool fits(const Workspace& w, const CudaWorkspaceSizes& s);
  // step_ws_ for a batch of every slot (a no-op while it is that size).
  Status ensure_step_workspace();
  // Two workspaces: the prefill's, sized for each prompt or chunk by begin_prefill; and the batch steps',
  // sized for a batch of every slot, with no attention workspace (a step's attention is the decode kernel
  // over decode_scratch_) and its output over the queries. A prefill chunk between decode steps then leaves
  // every buffer a captured step bakes in where it was (decode_graphs.h).
  Workspace prefill_ws_, step_ws_;
  Workspace* ws_ = &prefill_ws_;  // step_ws_ from begin_batch to end_batch
  QkvObserverFeed qkv_feed_;
  std::vector<uint16_t> host_qkv_;  // the observer's bf16 staging: q [n, Hq*d], k, v [n, Hkv*d]
  AttentionDecision attention_;     // the selector's decision for the current prompt
  // The current prefill's sparse indices: per local layer the geometry (num_heads 0: no index) and, pinned,
  // [local layers][visited tiles, gathered columns] int32.
  std::vector<IndexGeometry> index_geometry_;
  PinnedBuffer index_totals_;
  uint64_t peak_device_in_use_ = 0;
};

}  // namespace sacc::cuda_rt
