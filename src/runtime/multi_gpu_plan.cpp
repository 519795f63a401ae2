#include "runtime/multi_gpu_plan.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "runtime/memory_plan.h"
#if defined(SACC_WITH_CUDA)
#include "core/cuda/device_memory.h"
#endif

namespace sacc {
namespace {

constexpr uint64_t kBf16 = 2;

std::string device_name(int ordinal) {
  return fmt::format("cuda:{}", ordinal);
}

uint64_t kv_bytes_per_layer(const ModelConfig& c, int64_t tokens) {
  return 2ull * static_cast<uint64_t>(std::max<int64_t>(tokens, 1)) * c.kv_dim() * kBf16;
}

uint64_t fixed_weight_bytes(const ModelConfig& model, bool embeds, bool has_lm_head) {
  const uint64_t table = static_cast<uint64_t>(model.vocab) * model.hidden * kBf16;
  uint64_t bytes = embeds ? table : 0;
  // A tied head reads the embedding table: a second copy only where this GPU does not hold it already.
  if (has_lm_head) bytes += model.hidden * kBf16 + (model.tied_embeddings && embeds ? 0 : table);
  return bytes;
}

uint64_t workspace_bytes(const ModelConfig& shard, const ShardSizing& s, bool has_lm_head) {
  return cuda_workspace_sizes(shard, s.tokens, s.chunk, s.attention_workspace, s.separate_output,
                              has_lm_head ? s.logit_rows : 0, s.linear)
             .total() +
         cuda_step_workspace_sizes(shard, 1, s.chunk, has_lm_head, s.linear).total();
}

}  // namespace

Result<SplitMode> parse_split_mode(const std::string& text) {
  if (text == "layer") return SplitMode::LAYER;
  if (text == "tensor") return SplitMode::TENSOR;
  return make_error(StatusCode::INVALID_ARGUMENT, "--split '{}': expected layer or tensor", text);
}

const char* split_mode_name(SplitMode mode) {
  return mode == SplitMode::TENSOR ? "tensor" : "layer";
}

Result<std::vector<int>> parse_gpu_list(const std::string& text) {
  std::vector<int> gpus;
  std::set<int> seen;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    char* end = nullptr;
    const long value = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || value < 0 || value > 15)
      return make_error(StatusCode::INVALID_ARGUMENT, "--gpus '{}': '{}' is not a CUDA ordinal 0..15", text,
                        item);
    if (!seen.insert(static_cast<int>(value)).second)
      return make_error(StatusCode::INVALID_ARGUMENT, "--gpus '{}': GPU {} is listed twice", text, value);
    gpus.push_back(static_cast<int>(value));
  }
  if (gpus.empty()) return make_error(StatusCode::INVALID_ARGUMENT, "--gpus lists no GPU");
  return gpus;
}

ShardSpec whole_model_shard(const ModelConfig& model, int device) {
  ShardSpec s;
  s.device = device;
  s.layer_end = model.num_layers;
  s.kv_heads = model.num_kv_heads;
  s.ffn = model.ffn;
  s.embeds = s.has_lm_head = true;
  return s;
}

ModelConfig shard_config(const ModelConfig& model, const ShardSpec& shard) {
  ModelConfig c = model;
  const int group = model.num_heads / model.num_kv_heads;
  c.num_layers = shard.num_layers();
  c.num_kv_heads = shard.kv_heads;
  c.num_heads = shard.kv_heads * group;
  c.ffn = shard.ffn;
  return c;
}

LayerPatterns slice_layer_patterns(const LayerPatterns& layer, const ModelConfig& model, int kv_head_begin,
                                   int kv_heads) {
  // Index heads are KV heads when shared per group, else query heads (g per KV head, consecutive).
  const int per_kv = layer.shared_per_kv_group ? 1 : model.num_heads / model.num_kv_heads;
  LayerPatterns out;
  out.shared_per_kv_group = layer.shared_per_kv_group;
  out.estimation = layer.estimation;
  const auto first = layer.heads.begin() + static_cast<ptrdiff_t>(kv_head_begin) * per_kv;
  out.heads.assign(first, first + static_cast<ptrdiff_t>(kv_heads) * per_kv);
  return out;
}

std::vector<LayerPatterns> shard_patterns(const std::vector<LayerPatterns>& patterns,
                                          const ModelConfig& model, const ShardSpec& shard) {
  std::vector<LayerPatterns> out;
  if (patterns.empty()) return out;
  for (int l = shard.layer_begin; l < shard.layer_end; ++l)
    out.push_back(slice_layer_patterns(patterns[l], model, shard.kv_head_begin, shard.kv_heads));
  return out;
}

ShardMemory shard_memory(const ModelConfig& model, const ShardSpec& shard, const ShardSizing& sizing) {
  const ModelConfig c = shard_config(model, shard);
  ShardMemory m;
  m.device = device_name(shard.device);
  m.fixed_weights = fixed_weight_bytes(model, shard.embeds, shard.has_lm_head);
  m.layer_weights = layer_weight_bytes(c, sizing.linear) * c.num_layers;
  m.kv_cache = kv_bytes_per_layer(c, sizing.tokens) * c.num_layers;
  m.workspace = workspace_bytes(c, sizing, shard.has_lm_head);
  return m;
}

Result<std::vector<ShardSpec>> plan_layer_split(const ModelConfig& model, const std::vector<int>& gpus,
                                                const std::vector<uint64_t>& available,
                                                const ShardSizing& sizing) {
  if (gpus.empty() || available.size() != gpus.size())
    return make_error(StatusCode::INVALID_ARGUMENT, "layer split: {} GPUs but {} memory limits", gpus.size(),
                      available.size());
  const int n = static_cast<int>(gpus.size());
  const int layers = model.num_layers;
  const uint64_t per_layer =
      layer_weight_bytes(model, sizing.linear) + kv_bytes_per_layer(model, sizing.tokens);
  // How many layers each GPU can hold next to its fixed parts (embeddings first, LM head last).
  std::vector<uint64_t> fixed(n);
  std::vector<int> capacity(n);
  bool fixed_fits = true;
  for (int i = 0; i < n; ++i) {
    fixed[i] = workspace_bytes(model, sizing, i == n - 1) + fixed_weight_bytes(model, i == 0, i == n - 1);
    if (!available[i]) {
      capacity[i] = layers;
    } else if (available[i] < fixed[i]) {
      capacity[i] = 0;
      fixed_fits = false;
    } else {
      capacity[i] = static_cast<int>(std::min<uint64_t>((available[i] - fixed[i]) / per_layer, layers));
    }
  }
  int room = 0;
  for (int c : capacity) room += c;
  if (!fixed_fits || room < layers) {
    std::string detail;
    for (int i = 0; i < n; ++i) {
      detail += fmt::format("\n  {}: may use {}; {} for {}workspace leaves room for {} layer(s)",
                            device_name(gpus[i]), format_bytes(available[i]), format_bytes(fixed[i]),
                            i == 0 && i == n - 1 ? "embeddings + LM head + "
                            : i == 0             ? "embeddings + "
                            : i == n - 1         ? "LM head + "
                                                 : "",
                            capacity[i]);
      if (available[i] && available[i] < fixed[i])
        detail += fmt::format(" (short by {} before any layer)", format_bytes(fixed[i] - available[i]));
    }
    const int missing = layers - room;
    return make_error(StatusCode::OUT_OF_MEMORY,
                      "layer split of {} layers ({} each: weights + KV cache for {} tokens) does not fit: {} "
                      "layer(s) short ({}){}\nraise --gpu-mem, add GPUs, shorten the prompt or lower --chunk",
                      layers, format_bytes(per_layer), sizing.tokens, std::max(missing, 0),
                      format_bytes(static_cast<uint64_t>(std::max(missing, 0)) * per_layer), detail);
  }
  // As even as the caps allow: the smallest per-GPU count t with sum(min(capacity, t)) >= layers, then the
  // surplus taken back from the last GPUs.
  int t = 0;
  auto held = [&](int limit) {
    int sum = 0;
    for (int c : capacity) sum += std::min(c, limit);
    return sum;
  };
  while (held(t) < layers) ++t;
  std::vector<int> count(n);
  for (int i = 0; i < n; ++i) count[i] = std::min(capacity[i], t);
  for (int surplus = held(t) - layers, i = n - 1; surplus > 0; i = i > 0 ? i - 1 : n - 1) {
    if (count[i] == t) {
      --count[i];
      --surplus;
    }
  }
  std::vector<ShardSpec> shards;
  int begin = 0;
  for (int i = 0; i < n; ++i) {
    ShardSpec s = whole_model_shard(model, gpus[i]);
    s.layer_begin = begin;
    s.layer_end = begin + count[i];
    s.embeds = i == 0;
    s.has_lm_head = i == n - 1;
    begin = s.layer_end;
    shards.push_back(s);
  }
  return shards;
}

Result<std::vector<ShardSpec>> plan_tensor_parallel(const ModelConfig& model, const std::vector<int>& gpus) {
  const int n = static_cast<int>(gpus.size());
  if (n < 1) return make_error(StatusCode::INVALID_ARGUMENT, "tensor parallel needs at least one GPU");
  if (model.num_kv_heads % n != 0)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "tensor parallel splits KV heads: {} has {} KV heads, which {} GPUs do not divide; use "
                      "a GPU count that divides {} or --split layer",
                      model.name, model.num_kv_heads, n, model.num_kv_heads);
  if (model.ffn % n != 0)
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "tensor parallel splits MLP columns: {} has an MLP width of {}, which {} GPUs do not "
                      "divide; use --split layer",
                      model.name, model.ffn, n);
  std::vector<ShardSpec> shards;
  for (int i = 0; i < n; ++i) {
    ShardSpec s = whole_model_shard(model, gpus[i]);
    s.kv_heads = model.num_kv_heads / n;
    s.kv_head_begin = i * s.kv_heads;
    s.ffn = model.ffn / n;
    s.ffn_begin = i * s.ffn;
    s.has_lm_head = i == 0;
    shards.push_back(s);
  }
  return shards;
}

Status check_shards_fit(const ModelConfig& model, const std::vector<ShardSpec>& shards,
                        const std::vector<uint64_t>& available, const ShardSizing& sizing) {
  if (available.size() != shards.size())
    return make_error(StatusCode::INVALID_ARGUMENT, "{} shards but {} memory limits", shards.size(),
                      available.size());
  std::string shortfalls;
  for (size_t i = 0; i < shards.size(); ++i) {
    const ShardMemory m = shard_memory(model, shards[i], sizing);
    if (!available[i] || m.total() <= available[i]) continue;
    shortfalls += fmt::format(
        "\n  {}: needs {} (weights {} + KV cache {} + workspace {}) but may use {}: short by {}", m.device,
        format_bytes(m.total()), format_bytes(m.fixed_weights + m.layer_weights), format_bytes(m.kv_cache),
        format_bytes(m.workspace), format_bytes(available[i]), format_bytes(m.total() - available[i]));
  }
  if (shortfalls.empty()) return Status::ok();
  return make_error(StatusCode::OUT_OF_MEMORY,
                    "{} tokens do not fit on {} GPU(s):{}\nraise --gpu-mem, add GPUs, shorten the prompt or "
                    "lower --chunk",
                    sizing.tokens, shards.size(), shortfalls);
}

Result<GpuPlacement> plan_gpu_placement(const ModelConfig& model, const BackendOptions& options) {
  GpuPlacement p;
  p.sizing.tokens = options.max_tokens > 0 ? options.max_tokens : model.max_context;
  p.sizing.chunk = linear_chunk_rows(options.chunk, false, model);
  p.sizing.separate_output = attention_needs_separate_output(options.attention);
  p.sizing.logit_rows = options.prefill_logit_rows;
  p.sizing.linear = options.linear;
  if (options.gpus.size() <= 1) {
    p.shards = {whole_model_shard(model, options.gpus.empty() ? options.device.index : options.gpus[0])};
    p.available = {0};
    return p;
  }
  for (int gpu : options.gpus) {
    // Free memory under the DeviceAllocator budget; the cap alone where the GPU cannot be queried (sacc info
    // on a host without it).
    uint64_t bytes = available_memory(Device::cuda(gpu));
    if (options.per_gpu_cap) bytes = bytes ? std::min(bytes, options.per_gpu_cap) : options.per_gpu_cap;
    p.available.push_back(bytes);
  }
  if (options.split == SplitMode::LAYER) {
    SACC_ASSIGN_OR_RETURN(p.sizing.attention_workspace,
                          cuda_attention_workspace_bytes(model, options, p.sizing.tokens));
    SACC_ASSIGN_OR_RETURN(p.shards, plan_layer_split(model, options.gpus, p.available, p.sizing));
    return p;
  }
  SACC_ASSIGN_OR_RETURN(p.shards, plan_tensor_parallel(model, options.gpus));
  // Shards differ only in their heads' patterns: size every one for the largest attention workspace.
  for (const ShardSpec& shard : p.shards) {
    BackendOptions shard_options = options;
    shard_options.patterns = shard_patterns(options.patterns, model, shard);
    SACC_ASSIGN_OR_RETURN(uint64_t bytes, cuda_attention_workspace_bytes(shard_config(model, shard),
                                                                         shard_options, p.sizing.tokens));
    p.sizing.attention_workspace = std::max(p.sizing.attention_workspace, bytes);
  }
  SACC_RETURN_IF_ERROR(check_shards_fit(model, p.shards, p.available, p.sizing));
  return p;
}

void apply_gpu_caps(const BackendOptions& options) {
#if defined(SACC_WITH_CUDA)
  if (!options.per_gpu_cap) return;
  for (int gpu : options.gpus) DeviceAllocator::set_budget(gpu, options.per_gpu_cap);
  if (options.gpus.empty() && !options.device.is_cpu())
    DeviceAllocator::set_budget(options.device.index, options.per_gpu_cap);
#endif
}

std::string describe_shards(const ModelConfig& model, const std::vector<ShardSpec>& shards,
                            const std::vector<uint64_t>& available, const ShardSizing& sizing) {
  std::string out = fmt::format("placement for {} tokens on {} GPU(s)\n", sizing.tokens, shards.size());
  out += fmt::format("  {:<8} {:>7} {:>9} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11}\n", "device", "layers",
                     "KV heads", "MLP cols", "weights", "KV cache", "workspace", "total", "may use");
  uint64_t total = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    const ShardSpec& s = shards[i];
    const ShardMemory m = shard_memory(model, s, sizing);
    total += m.total();
    out += fmt::format("  {:<8} {:>7} {:>9} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11}\n", m.device,
                       fmt::format("{}-{}", s.layer_begin, s.layer_end - 1),
                       fmt::format("{}-{}", s.kv_head_begin, s.kv_head_begin + s.kv_heads - 1), s.ffn,
                       format_bytes(m.fixed_weights + m.layer_weights), format_bytes(m.kv_cache),
                       format_bytes(m.workspace), format_bytes(m.total()),
                       i < available.size() && available[i] ? format_bytes(available[i]) : "-");
  }
  out += fmt::format("  total {}\n", format_bytes(total));
  return out;
}

}  // namespace sacc
