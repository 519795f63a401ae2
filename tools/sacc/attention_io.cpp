#include "tools/sacc/attention_io.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/dtype.h"
#include "core/safetensors.h"

namespace sacc::cli {

Result<PatternSpec> file_pattern(const std::vector<std::string>& patterns) {
  if (patterns.size() > 1) {
    return make_error(StatusCode::INVALID_ARGUMENT, "--pattern given {} times; a file run takes one",
                      patterns.size());
  }
  return parse_pattern(patterns.empty() ? "dense" : patterns[0]);
}

Result<ref::HostQkv> load_qkv_file(const std::string& path) {
  SACC_ASSIGN_OR_RETURN(SafetensorsFile input, SafetensorsFile::open(path));
  SACC_ASSIGN_OR_RETURN(TensorView q, input.tensor("q"));
  SACC_ASSIGN_OR_RETURN(TensorView k, input.tensor("k"));
  SACC_ASSIGN_OR_RETURN(TensorView v, input.tensor("v"));
  Result<ref::HostQkv> host = ref::qkv_from_tensors(q, k, v);
  if (!host.is_ok()) return host.status().with_context(path);
  return host;
}

AttentionOutput output_from_oracle(const ref::AttentionResult& result) {
  AttentionOutput out;
  out.shape = result.shape;
  out.o.resize(result.o.size());
  for (size_t n = 0; n < result.o.size(); ++n) out.o[n] = float_to_bf16(static_cast<float>(result.o[n]));
  out.lse.resize(result.lse.size());
  for (size_t n = 0; n < result.lse.size(); ++n) out.lse[n] = static_cast<float>(result.lse[n]);
  return out;
}

Status write_attention_output(const std::string& path, const AttentionOutput& output, const PatternSpec& spec,
                              const std::string& producer, const SparseIndex* maybe_index) {
  const AttentionShape& shape = output.shape;
  // The writer only reads through the views; the casts drop const for the TensorView constructor.
  const TensorView o(const_cast<uint16_t*>(output.o.data()), DType::BF16,
                     {shape.seq_len, shape.num_q_heads, shape.head_dim});
  const TensorView lse(const_cast<float*>(output.lse.data()), DType::F32, {shape.num_q_heads, shape.seq_len});
  std::vector<NamedTensor> tensors{{"o", o}, {"lse", lse}};
  std::map<std::string, std::string> metadata{{"pattern", to_string(spec)}, {"producer", producer}};
  auto int_view = [](const std::vector<int32_t>& ids) {
    return TensorView(const_cast<int32_t*>(ids.data()), DType::I32, {static_cast<int64_t>(ids.size())});
  };
  if (maybe_index != nullptr) {
    const SparseIndex& index = *maybe_index;
    tensors.push_back({"index.block_offsets", int_view(index.block_offsets)});
    tensors.push_back({"index.block_ids", int_view(index.block_ids)});
    tensors.push_back({"index.column_offsets", int_view(index.column_offsets)});
    tensors.push_back({"index.column_ids", int_view(index.column_ids)});
    metadata["index.seq_len"] = std::to_string(index.geometry.seq_len);
    metadata["index.num_heads"] = std::to_string(index.geometry.num_heads);
    metadata["index.block_q"] = std::to_string(index.geometry.block_q);
    metadata["index.block_k"] = std::to_string(index.geometry.block_k);
    metadata["index.shared_per_kv_group"] = index.geometry.shared_per_kv_group ? "true" : "false";
  }
  return write_safetensors(path, tensors, metadata);
}

void print_attention_summary(const PatternSpec& spec, const AttentionShape& shape, const AttentionCost& cost,
                             double plan_ms, double attention_ms, const std::string& where) {
  const double causal = static_cast<double>(std::max<int64_t>(cost.causal_tiles, 1));
  const double block_part = static_cast<double>(cost.visited_tiles) / causal;
  std::printf(
      "%s: L=%lld Hq=%d Hkv=%d d=%d, density %.4f (key blocks %.4f, gathered columns %.4f), plan %.1f ms, "
      "attention %.1f ms (%s)\n",
      to_string(spec).c_str(), static_cast<long long>(shape.seq_len), shape.num_q_heads, shape.num_kv_heads,
      shape.head_dim, cost.density(), block_part, cost.density() - block_part, plan_ms, attention_ms,
      where.c_str());
}

}  // namespace sacc::cli
