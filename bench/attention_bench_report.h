// Results of the attention benchmark as Markdown (what people read) and JSON (what scripts compare).
#pragma once

#include <string>
#include <vector>

#include "attention_bench.h"
#include "core/status.h"

namespace sacc::bench {

// The table for one shape, as printed on the terminal and written into the Markdown file.
std::string markdown_table(const std::vector<Row>& rows, const std::string& shape);

// Writes <stem>.md and <stem>.json (stem without extension, e.g. bench/results/attention_h200).
Status write_results(const std::string& stem, const RunInfo& info, const std::vector<BenchShape>& shapes,
                     const std::vector<Row>& rows);

}  // namespace sacc::bench
