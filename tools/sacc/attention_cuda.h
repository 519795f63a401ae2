// `sacc attention --device cuda[:N]`: the same file run and demo as on the CPU, computed by the attention
// library's GPU path (plan() builds sparse indices on the GPU, attention_run_cuda runs the flash kernels).
// Declared in every build; without CUDA both answer "this sacc was built without CUDA; use --device cpu".
#pragma once

#include "core/status.h"
#include "core/tensor.h"
#include "tools/sacc/attention_options.h"

namespace sacc::cli {

// One pattern over --in's Q/K/V on `device`; prints the summary line, with --compare checks O and LSE against
// the CPU oracle on the same index (an error beyond the bf16 tolerance), writes --out like the CPU path.
Status run_attention_file_cuda(const FileOptions& file, const IndexOptions& options, Device device);

// The demo's patterns on the GPU: density, error against GPU dense, error against the CPU oracle on the same
// index (skipped at lengths where the oracle would take minutes) and GPU times per pattern.
Status run_attention_demo_cuda(const DemoOptions& demo, const IndexOptions& options, Device device);

}  // namespace sacc::cli
