// The interface both backends (CPU: OpenBLAS fp32; CUDA: cuBLASLt bf16) implement: a prefill that fills the
// KV cache from position 0 and returns the last token's logits, and single-token decode steps after it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attention/attention_params.h"
#include "core/status.h"
#include "core/tensor.h"
#include "model/llama_weights.h"
#include "runtime/linear_mode.h"

namespace sacc {

enum class AttentionMode { AUTO, DENSE, CUDNN, EAGER, SPARSE };

// How several GPUs share a model: LAYER places contiguous layer ranges under per-GPU caps (capacity);
// TENSOR splits KV heads and MLP columns and all-reduces after o_proj and down_proj (speed).
enum class SplitMode { LAYER, TENSOR };

Result<AttentionMode> parse_attention_mode(const std::string& text);
const char* attention_mode_name(AttentionMode mode);
// The cuDNN and eager baselines need an attention output buffer of their own; our flash kernels write over
// the queries (see AttentionParams::o).
bool attention_needs_separate_output(AttentionMode mode);

// One layer's attention inputs: q [L, Hq, d], k and v [L, Hkv, d], fp32 on the host, valid during the call.
using QkvObserver = std::function<void(int layer, const float* q, const float* k, const float* v)>;

struct BackendOptions {
  Device device;
  AttentionMode attention = AttentionMode::AUTO;
  int64_t chunk = 0;                     // tokens per linear-layer chunk; 0: linear_chunk_rows' default
                                         // (the backends resolve it when they are made)
  LinearMode linear = LinearMode::BF16;  // FP8: the CUDA backend only (the CPU backend refuses it)
  // Per-layer patterns for sparse attention ([N] entries; empty: dense everywhere).
  std::vector<LayerPatterns> patterns;
  // AUTO: prompts shorter than this run dense (from the cost model; see attention_policy.h).
  int64_t sparse_min_length = 0;
  std::string auto_basis;  // AUTO: where sparse_min_length came from (a measurement, or the cost model)
  bool show_progress = true;
  // Evaluation hooks, applied by both backends through runtime/eval_hooks.h. The observer is called once per
  // layer during a prefill from position 0 with the post-RoPE q [L, Hq, d] and k, v [L, Hkv, d] in fp32 on
  // the host, as attention sees them (k and v as the bf16 KV cache holds them; q in the backend's activation
  // precision: fp32 on the CPU, bf16 on the GPU). Tensor parallel cannot call it (no GPU holds every head).
  QkvObserver maybe_qkv_observer;
  // A prefill returns the logits of its last `prefill_logit_rows` positions: logits [rows, V] (default 1).
  int64_t prefill_logit_rows = 1;
  // CUDA backend: prefills and extends of at most this many tokens share one workspace sized for this many,
  // kept from one to the next (a server's prefill chunks: no device free and allocation between them); 0:
  // each prefill's workspace is sized for its own tokens.
  int64_t prefill_workspace_tokens = 0;
  // Several GPUs (CUDA backend): more than one ordinal here replaces `device`; see runtime/multi_gpu_plan.h.
  std::vector<int> gpus;
  SplitMode split = SplitMode::LAYER;
  uint64_t per_gpu_cap = 0;  // bytes each GPU may use (0: its free memory)
  int64_t max_tokens = 0;    // positions (prompt + generated) the layer placement must hold (0: the context)
};

// `options` with chunk 0 replaced by the backend's default for model `c` (linear_chunk_rows).
inline BackendOptions with_linear_chunk(BackendOptions options, bool cpu, const ModelConfig& c) {
  options.chunk = linear_chunk_rows(options.chunk, cpu, c);
  return options;
}

// Copies what configure_attention (attention_policy.h) fills — attention, patterns, sparse_min_length,
// auto_basis — from `from` into `to`, the rest of `to` untouched.
void copy_attention_settings(const BackendOptions& from, BackendOptions& to);

// Peak memory of one device during the run (bytes).
struct DeviceMemoryReport {
  std::string device;           // "cpu", "cuda:0"
  uint64_t peak_allocated = 0;  // high-water mark of our own allocations
  uint64_t peak_in_use = 0;     // whole-device view (cudaMemGetInfo; the CPU: RSS high-water), 0 if unknown
};

// A copy of the first tokens() positions of a backend's KV cache, every layer and KV head (host memory on the
// CPU backend, device memory on each GPU of the CUDA backend), for the serve prefix cache
// (runtime/prefix_cache.h). Only the backend that made it can import it.
class KvSnapshot {
 public:
  virtual ~KvSnapshot() = default;
  virtual int64_t tokens() const = 0;
  virtual uint64_t bytes() const = 0;
};

// What the attention of a prefill computed: whether it ran sparse (AUTO may pick dense for short prompts),
// and its density: the flops its attention kernels ran over what dense causal attention computes on the
// same heads, summed over the layers (cost_model.h; 1 when dense, estimation not counted).
struct PrefillAttentionStats {
  bool sparse = false;
  double density = 1.0;
};

// Sequence slots: a backend holds `slot_count()` independent KV caches (sequences), each sized on its own
// (reserve_slot) and freed on its own (release_slot). The per-sequence calls name their slot; the calls
// without one act on slot 0 and are what a single-sequence caller (generate, bench, eval) uses: reserve()
// makes the backend one slot of `max_tokens` positions, exactly as before slots existed.
class Backend {
 public:
  virtual ~Backend() = default;

  // Sets the number of slots (>= 1), freeing every slot's KV cache; each slot then holds nothing until
  // reserve_slot.
  virtual Status set_slot_count(int slots) = 0;
  virtual int slot_count() const = 0;
  // Sizes `slot`'s KV cache for `max_tokens` positions (prompt + generated), freeing its old one first; its
  // position() is 0. Must precede that slot's prefill.
  virtual Status reserve_slot(int slot, int64_t max_tokens) = 0;
  // Frees `slot`'s KV cache (a finished or cancelled sequence); the other slots are untouched.
  virtual Status release_slot(int slot) = 0;

  // Runs the prompt from position 0 of `slot` and writes the last position's logits: logits [V] (the last
  // options.prefill_logit_rows positions' logits [rows, V] when asked for more).
  virtual Status prefill(int slot, std::span<const int32_t> tokens, std::vector<float>& logits) = 0;
  // Appends one token at the next position of `slot`; logits [V].
  virtual Status decode(int slot, int32_t token, std::vector<float>& logits) = 0;
  // One step of B sequences at once: row i appends tokens[i] at the next position of slots[i] (B distinct
  // slots) and attends to that slot's cache alone; logits [B, V], row i for slots[i]. The linear layers run
  // once over the B rows. The default runs decode() row after row.
  virtual Status decode_batch(std::span<const int32_t> tokens, std::span<const int> slots,
                              std::vector<float>& logits);
  virtual int64_t position(int slot) const = 0;  // tokens in `slot`'s cache

  // Prefix KV reuse (the default: UNSUPPORTED). export_kv copies positions [0, n), n <= position(slot), out
  // of the slot's cache; import_kv makes positions [0, n) of the slot those of `snapshot` (n <=
  // snapshot.tokens(), after reserve_slot()) and sets position(slot) to n, returning once the copy is done
  // (its time is the restore's: a server times it); extend then runs the rest of the prompt at positions
  // [position(slot), + size) with dense causal attention against every cached key of the slot and writes
  // the last position's logits [V]. A failed export leaves the cache as it was. A snapshot of one slot may
  // be imported into any slot of the backend that made it.
  virtual Result<std::unique_ptr<KvSnapshot>> export_kv(int slot, int64_t n);
  virtual Status import_kv(int slot, const KvSnapshot& snapshot, int64_t n);
  virtual Status extend(int slot, std::span<const int32_t> tokens, std::vector<float>& logits);

  // The single-sequence calls: slot 0 of a one-slot backend.
  // Makes the backend one slot and sizes it for `max_tokens` positions (prompt + generated); must precede
  // prefill.
  Status reserve(int64_t max_tokens);
  Status prefill(std::span<const int32_t> tokens, std::vector<float>& logits) {
    return prefill(0, tokens, logits);
  }
  Status decode(int32_t token, std::vector<float>& logits) { return decode(0, token, logits); }
  int64_t position() const { return position(0); }
  Result<std::unique_ptr<KvSnapshot>> export_kv(int64_t n) { return export_kv(0, n); }
  Status import_kv(const KvSnapshot& snapshot, int64_t n) { return import_kv(0, snapshot, n); }
  Status extend(std::span<const int32_t> tokens, std::vector<float>& logits) {
    return extend(0, tokens, logits);
  }

  // The attention of the prefills that follow (a server's per-request settings): `options`' attention
  // settings (copy_attention_settings), checked as when the backend was made; the rest of `options` is not
  // read. On failure the backend keeps its settings.
  virtual Status set_attention(const BackendOptions& options) = 0;

  virtual std::vector<DeviceMemoryReport> memory() const = 0;
  // The attention of the last prefill (an extend counts as a dense one).
  virtual PrefillAttentionStats last_prefill_attention() const = 0;
};

// INVALID_ARGUMENT unless `slots` are B distinct slots below `slot_count` and `tokens` has B entries (B >=
// 1).
Status check_batch_slots(std::span<const int32_t> tokens, std::span<const int> slots, int slot_count);

// INVALID_ARGUMENT naming the first id outside [0, vocab) and its position (first_position + index).
Status check_token_ids(std::span<const int32_t> tokens, int64_t first_position, int64_t vocab);

Result<std::unique_ptr<Backend>> make_cpu_backend(const LlamaWeights& weights, const BackendOptions& options);
// Device bytes the CUDA backend's prefill attention needs for a prompt of `tokens` (kernel workspace and, for
// sparse prefill, the plan's index space), for the memory plan; 0 in builds without CUDA.
Result<uint64_t> cuda_attention_workspace_bytes(const ModelConfig& config, const BackendOptions& options,
                                                int64_t tokens);
// UNSUPPORTED in builds without CUDA.
Result<std::unique_ptr<Backend>> make_cuda_backend(const LlamaWeights& weights,
                                                   const BackendOptions& options);

}  // namespace sacc
