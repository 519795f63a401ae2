// What `sacc attention` reads, prints and writes for one file run, whichever device computes it: the Q/K/V
// input, the summary line and the output safetensors (o, lse and optionally the CSR index), so the CPU and
// CUDA paths cannot drift apart.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention_params.h"
#include "attention/cost_model.h"
#include "attention/pattern.h"
#include "attention/sparse_index.h"
#include "core/status.h"
#include "reference/dense_attention.h"
#include "reference/qkv.h"

namespace sacc::cli {

// The one pattern of a file run: `patterns` holds what --pattern gave (none: dense).
Result<PatternSpec> file_pattern(const std::vector<std::string>& patterns);

// q [L, Hq, d], k and v [L, Hkv, d] (BF16, F16 or F32) from a safetensors file, widened to fp32; errors name
// the file and the offending tensor.
Result<ref::HostQkv> load_qkv_file(const std::string& path);

// One attention call's result as it is written to --out.
struct AttentionOutput {
  AttentionShape shape;
  std::vector<uint16_t> o;  // [L, Hq, d] bf16 bits
  std::vector<float> lse;   // [Hq, L] natural log
};

// The oracle's fp64 result rounded as the file stores it (o to bf16 with RNE, lse to fp32).
AttentionOutput output_from_oracle(const ref::AttentionResult& result);

// Writes o [L, Hq, d] BF16 and lse [Hq, L] F32 to `path` with metadata "pattern" and "producer"; with
// `maybe_index` also the four CSR arrays (I32) and the index geometry in the metadata.
Status write_attention_output(const std::string& path, const AttentionOutput& output, const PatternSpec& spec,
                              const std::string& producer, const SparseIndex* maybe_index);

// "<pattern>: L=.. Hq=.. Hkv=.. d=.., density D (key blocks B, gathered columns C), plan P ms, attention A ms
// (<where>)": B and C are the two parts of D (visited tiles and gathered columns / Bk over causal tiles).
void print_attention_summary(const PatternSpec& spec, const AttentionShape& shape, const AttentionCost& cost,
                             double plan_ms, double attention_ms, const std::string& where);

}  // namespace sacc::cli
