// Which attention a prefill runs: the per-layer patterns for sparse prefill (from a pattern config file, one
// pattern for every head, or the default) and, for --attention auto, the prompt length below which dense is
// cheaper (from the tile cost model), so short prompts pay nothing for sparsity.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention_params.h"
#include "model/model_config.h"
#include "runtime/backend.h"

namespace sacc {

// The default sparse setting, on every head: the union (attention/pattern.h) of an Interval-Slash index (the
// fewest verticals and slashes whose mass for the last queries reaches 0.95, capped at 1000 and 256) and a
// Block-Cluster index (per query block, the fewest key blocks whose pooled mass reaches 0.99, capped at 512).
// The first keeps what a question at the end of the prompt reads (needles), the second what every query block
// reads (the text itself). Measured on the real Qwen2.5-Coder-0.5B at 32K (H200, bench/results/
// real_models_h200.md, 2026-12-03 "union"): perplexity +0.61 % over dense where Interval-Slash alone
// (1000,6096@0.95, the previous default) gave +5.6 % at about the same TTFT (1.34x against 1.40x dense); no
// needle lost at 8K-30K; Block-Cluster alone is faster (1.5-1.8x) but loses 2-8 of 33 needles.
constexpr const char* kDefaultSparsePattern = "interval-slash:1000,256@0.95+block-cluster:512@0.99";
// Below this many tokens AUTO stays dense whatever the cost model says: estimation launches and index
// building cost more than they save on a few key blocks.
constexpr int64_t kMinSparseLength = 4096;

// Prefix of a pattern string that asks for one index per KV group ("group:interval-slash:1000,6096@0.9"):
// the group's query heads' estimates are summed, estimation and index work shrink by the group size, and the
// kernel runs the group's query heads against the same key tiles.
constexpr const char* kGroupPrefix = "group:";

// The same pattern for every head of every layer ([N] layers of Hq heads, or of Hkv index heads with
// kGroupPrefix).
Result<std::vector<LayerPatterns>> uniform_patterns(const ModelConfig& config, const std::string& pattern);

// AUTO goes sparse where the predicted sparse cost, estimation included, is at most this fraction of dense.
// Calibrated on an H200 with MInference's Llama-3.1-8B budget mix (bench/results/ttft_h200.md,
// attention_h200.md): measured sparse attention time equals dense where the prediction is about 0.88 (16K to
// 32K), and sparse prefill is 5 % faster at 32K and 15 % at 64K; 0.85 keeps a margin for the plan step's
// launches and the accuracy given up.
constexpr double kSparseCostRatio = 0.85;

// Smallest length from kMinSparseLength up to the model's context, to a query block (128 tokens), at which
// the predicted sparse cost is at most kSparseCostRatio of dense (a doubling scan, then bisection: the
// predicted ratio falls with length); the context + 1 (never) when none is. The cost model's interval-slash
// prediction assumes slashes at uniformly random offsets, an upper bound for real heads whose slashes crowd
// near the diagonal, so large slash budgets may never qualify: use --attention sparse there.
int64_t sparse_break_even_length(const ModelConfig& config, const std::vector<LayerPatterns>& patterns);

// The name of the sparse setting that `pattern_config` (a file; wins) or `pattern` (a string) select, with
// neither kDefaultSparsePattern: "config:<file name>" or the pattern string. Calibrations are stored under
// it.
std::string sparse_setting_name(const std::string& pattern, const std::string& pattern_config);

// Fills options.attention / patterns / sparse_min_length / auto_basis. `pattern_config` (a file) wins over
// `pattern` (a pattern string); with neither, SPARSE and AUTO use kDefaultSparsePattern. AUTO takes its
// break-even from `sacc calibrate`'s measurement for options.device, this model shape and this setting
// (auto_calibration.h), else from the project's shipped measurement for that key, else from
// sparse_break_even_length().
Status configure_attention(const ModelConfig& config, AttentionMode mode, const std::string& pattern,
                           const std::string& pattern_config, BackendOptions& options);

// What AUTO decided, for logs and reports, from the options configure_attention filled: "sparse prefill from
// N tokens" or "dense prefill at every length up to `max_context` tokens" (a calibration where sparse never
// won stores an unreachable break-even), then where the break-even came from.
std::string describe_auto_choice(const BackendOptions& options, int64_t max_context);

}  // namespace sacc
